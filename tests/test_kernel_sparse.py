"""The zero-skipping product of pruned intadd layers (kernels/sparse.c) against the dense tiles,
the portable path and the fp32 control, bit for bit (docs/engine_sparse.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import activations, seofp_weights

pytestmark = pytest.mark.kernel
AVX2 = bool(K.lib.seofp_avx2_supported())
LAYOUTS = ["codes", "addends", "ianet", "nibbles"]
needs_avx2 = pytest.mark.skipif(not AVX2, reason="the zero-skipping product is the AVX2 path; "
                                                 "the CPU lacks AVX2")


def _columns(rng: np.random.Generator, n: int, cols: int, masked: bool) -> np.ndarray:
    x = activations(rng, n, cols)
    if masked:  # exact zeros: masked products, in one group of 64 columns only
        x[min(1, n - 1), ::5] = 0.0
    return x


def test_pruned_layers_get_the_index_by_share() -> None:
    rng = np.random.default_rng(1)
    half = seofp_weights(rng, 64, 40, -6, 0, 0.5)
    few = seofp_weights(rng, 64, 40, -6, 0, 0.05)
    assert K.pack_layer(half, "intadd").struct.sparse != K.ffi.NULL
    assert K.pack_layer(half[:30], "intadd").struct.sparse == K.ffi.NULL  # too few rows
    assert K.pack_layer(few, "intadd").struct.sparse == K.ffi.NULL
    assert K.pack_layer(few, "intadd", skip_zeros=True).struct.sparse != K.ffi.NULL
    assert K.pack_layer(half, "intadd", skip_zeros=False).struct.sparse == K.ffi.NULL
    assert K.pack_layer(half, "fp32").struct.sparse == K.ffi.NULL


@needs_avx2
@pytest.mark.parametrize("zeros", [0.0, 0.5, 0.97])
@pytest.mark.parametrize("shape", [(21, 70), (1, 401), (13, 1000)], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_skipping_equals_dense_tiles_batch_one_portable_and_fp32(
        layout: str, shape: tuple[int, int], zeros: float) -> None:
    rows, cols = shape
    rng = np.random.default_rng(rows * 3 + cols + int(100 * zeros))
    w = seofp_weights(rng, rows, cols, -6, 0, zeros)
    skip = K.pack_layer(w, "intadd", layout, skip_zeros=True)  # type: ignore[arg-type]
    dense = K.pack_layer(w, "intadd", layout, skip_zeros=False)  # type: ignore[arg-type]
    fp32 = K.pack_layer(w, "fp32")
    # groups of 64 columns: a lone one, a half group (half the vectors), exactly one group,
    # one more column, and two groups with a tail of 2
    # (fewer than 24 columns run the dense tiles whatever the index: kernels/seofp_internal.h)
    for n, masked in ((2, True), (24, True), (31, False), (32, True), (64, False), (65, True),
                      (130, False)):
        x = _columns(rng, n, cols, masked)
        if masked and n > 40:  # masked columns in both groups, several in one
            x[n - 3, ::3] = 0.0
        with K.use_variant("avx2"):
            y, clamps = K.gemm(skip, x)
            yd, _ = K.gemm(dense, x)
            y32, _ = K.gemm(fp32, x)
            first = K.gemv(skip, x[0])[0]
        with K.use_variant("portable"):
            yp, _ = K.gemm(skip, x)
        assert clamps == 0
        assert y.tobytes() == yd.tobytes(), (layout, shape, n)
        assert y.tobytes() == yp.tobytes(), (layout, shape, n)
        assert y.tobytes() == y32.tobytes(), (layout, shape, n)
        assert y[0].tobytes() == first.tobytes()
        ref = x.astype(np.float64) @ w.astype(np.float64).T
        bound = cols * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T)
        assert (np.abs(y - ref) <= bound).all()


@needs_avx2
def test_skipping_forces_tiny_activations_to_zero_like_the_dense_tiles() -> None:
    rng = np.random.default_rng(5)
    w = seofp_weights(rng, 9, 450, -6, 0, 0.5)
    x = activations(rng, 70, 450)
    x[2, 5] = 1e-42
    x[3, 400:410] = -1e-40
    x[66, 0] = 2.0**-125  # underflows for the smallest weights: masked, in the second group
    for layout in LAYOUTS:
        skip = K.pack_layer(w, "intadd", layout, skip_zeros=True)  # type: ignore[arg-type]
        dense = K.pack_layer(w, "intadd", layout, skip_zeros=False)  # type: ignore[arg-type]
        with K.use_variant("avx2"):
            assert K.gemm(skip, x)[0].tobytes() == K.gemm(dense, x)[0].tobytes(), layout


@needs_avx2
@pytest.mark.parametrize("frames", [61, 130])
def test_pruned_convolution_stores_row_major_outputs_alike(frames: int) -> None:
    # conv1d's output (cout, T) goes through the row-major stores; 48-step im2col blocks give
    # groups of 48 columns, and a window past either end is masked
    rng = np.random.default_rng(31)
    cin, cout, ksize = 20, 21, 9  # 21 channels: two 8-row blocks and a partial one
    w = seofp_weights(rng, cout, cin * ksize, -6, 0, 0.6)
    x = activations(rng, cin, frames)
    x[3, 50:55] = 0.0
    outs = {}
    for var in ("avx2", "portable"):
        with K.use_variant(var):
            for name, layer in (("skip", K.pack_layer(w, "intadd", skip_zeros=True)),
                                ("dense", K.pack_layer(w, "intadd", skip_zeros=False)),
                                ("fp32", K.pack_layer(w, "fp32"))):
                y, clamps = K.conv1d(layer, None, x, ksize)
                assert clamps == 0
                outs[var, name] = y.tobytes()
    assert len(set(outs.values())) == 1, sorted(outs)


def test_an_index_of_other_data_is_refused() -> None:
    # the index names the data it was built from: the same shape and window with other weights
    rng = np.random.default_rng(9)
    w = seofp_weights(rng, 8, 40, -6, 0, 0.5)
    a = K.pack_layer(w, "intadd", "codes", skip_zeros=True)
    other = K.pack_layer(w[::-1].copy(), "intadd", "codes", skip_zeros=True)
    a.struct.sparse = other.struct.sparse
    with pytest.raises(K.KernelError, match="status -1"):
        K.gemm(a, activations(rng, 30, 40))


def test_an_index_of_another_layer_is_refused() -> None:
    rng = np.random.default_rng(2)
    a, b, c = (K.pack_layer(seofp_weights(rng, rows, 40, -6, 0, 0.5), "intadd", layout,
                            skip_zeros=True)
               for rows, layout in ((8, "codes"), (12, "codes"), (8, "addends")))
    x = activations(rng, 3, 40)
    for other in (b, c):  # other rows; other layout
        a.struct.sparse = other.struct.sparse
        with pytest.raises(K.KernelError, match="status -1"):
            K.gemm(a, x)
    buf = np.zeros(8, np.uint64)
    assert K.lib.seofp_sparse_build(b.struct, K.ffi.from_buffer(buf), buf.nbytes) == -1
    assert K.lib.seofp_sparse_bytes(K.pack_layer(np.ones((2, 3), np.float32), "fp32").struct) == 0


@needs_avx2
def test_a_pruned_model_enhances_to_the_same_bits_with_and_without_skipping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from random_models import seofp_model

    from seofp_lab.infer import engine, modelfile
    from seofp_lab.infer.export import serialize_model

    mf = modelfile.read(serialize_model(seofp_model(
        "blstm", {"hidden": 32, "layers": 2, "fc": 0, "target": "mask"}, prune=0.5)))  # 128 rows
    wave = (np.random.default_rng(3).standard_normal(8000) * 0.1).astype(np.float32)
    skip = engine.Engine(mf, "intadd")
    assert skip.cells[0][0][0].struct.sparse != K.ffi.NULL
    monkeypatch.setattr(K, "SKIP_ZEROS_MIN_SHARE", 1.1)
    dense = engine.Engine(mf, "intadd")
    assert dense.cells[0][0][0].struct.sparse == K.ffi.NULL
    assert skip.enhance(wave).tobytes() == dense.enhance(wave).tobytes()


@needs_avx2
def test_a_short_block_of_a_pruned_convolution_reads_only_copied_masks() -> None:
    # fewer than 24 im2col columns run the dense tiles even with an index; with zero weights
    # those tiles take 5 columns at a time, so a masked column must bring the masks of all 5
    # (before the fix only its 3-column group's were copied and the others read stale scratch)
    rng = np.random.default_rng(17)
    cin, cout, ksize, frames = 6, 70, 3, 20
    w = seofp_weights(rng, cout, cin * ksize, -6, 0, 0.5)
    x = activations(rng, cin, frames)
    x[2, 15] = 0.0  # windows 14-16 masked; the 5-column tile 10-14 then reads columns 10, 11
    skip = K.pack_layer(w, "intadd", skip_zeros=True)
    dense = K.pack_layer(w, "intadd", skip_zeros=False)
    for layer in (skip, dense):  # scratch full of garbage words, as after other calls
        layer.scratch(K.conv1d_scratch_floats(layer, ksize, frames))
        layer._scratch.view(np.uint32)[:] = 0x5A5A5A5A
    with K.use_variant("avx2"):
        ys = K.conv1d(skip, None, x, ksize)[0]
        yd = K.conv1d(dense, None, x, ksize)[0]
    with K.use_variant("portable"):
        yp = K.conv1d(dense, None, x, ksize)[0]
    assert ys.tobytes() == yp.tobytes() and yd.tobytes() == yp.tobytes()
