"""The batch > 1 intadd product (kernels/gemm_tiles.c) against the batch-1 blocks, the portable
path and the fp32 control, bit for bit (docs/engine.md#batch-larger-than-one)."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import activations, seofp_weights

pytestmark = pytest.mark.kernel
AVX2 = bool(K.lib.seofp_avx2_supported())
LAYOUTS = ["codes", "addends", "ianet", "nibbles"]
# (rows, cols): rows not a multiple of 4 (6 blocks: panels decoded 4 at a time, then 2, the last
# block of 1 row: the 2-row tile) and a single row; columns within one k slice of the tile
# (<= 384), just over it, and over several slices with a partial chunk, a panel too wide for two
# in L1 (the slices run outermost) and a last block of 2 rows
SHAPES = [(21, 70), (1, 401), (6, 1000)]


def _columns(rng: np.random.Generator, n: int, cols: int) -> np.ndarray:
    """n activation columns; column 1 has exact zeros (masked products, and the same bits as
    fp32's 0 * w), column 4 (if any) a run of them across a chunk boundary, the rest none."""
    x = activations(rng, n, cols)
    x[1, ::7] = 0.0
    if n > 4:
        x[4, 10:40] = 0.0
    return x


@pytest.mark.skipif(not AVX2, reason="the tiled product is the AVX2 path; the CPU lacks AVX2")
@pytest.mark.parametrize("zeros", [0.0, 0.4])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tiles_equal_batch_one_portable_and_fp32(layout: str, shape: tuple[int, int],
                                                  zeros: float) -> None:
    rows, cols = shape
    rng = np.random.default_rng(rows * 7 + cols + int(10 * zeros))
    # a 7-exponent window fits every layout, nibbles included
    w = seofp_weights(rng, rows, cols, -6, 0, zeros)
    layer = K.pack_layer(w, "intadd", layout)  # type: ignore[arg-type]
    fp32 = K.pack_layer(w, "fp32")
    assert layer.zeros == (zeros > 0)
    # 10 columns: tiles of 3, 3, 3 and 1; 5: tiles of 3 and 2 (one of them masked); 29: for the
    # widest layer, k slices outermost over 24 columns, then 5
    for n in (10, 5, 2, 29):
        x = _columns(rng, n, cols)
        with K.use_variant("avx2"):
            y, clamps = K.gemm(layer, x)
            y32, _ = K.gemm(fp32, x)
            one = [K.gemv(layer, x[i])[0] for i in range(n)]
        with K.use_variant("portable"):
            yp, _ = K.gemm(layer, x)
        assert clamps == 0
        assert y.tobytes() == yp.tobytes(), (layout, shape, n)
        assert y.tobytes() == y32.tobytes(), (layout, shape, n)
        for i in range(n):
            assert y[i].tobytes() == one[i].tobytes(), (layout, shape, n, i)
        ref = x.astype(np.float64) @ w.astype(np.float64).T
        bound = cols * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T)
        assert (np.abs(y - ref) <= bound).all()


@pytest.mark.skipif(not AVX2, reason="the tiled product is the AVX2 path; the CPU lacks AVX2")
@pytest.mark.parametrize(("window", "kind", "scaled"),
                         [((-6, 0), "DECODE_F16", False), ((14, 20), "DECODE_F16", True),
                          ((-40, 0), "DECODE_BITS", False)], ids=["f16", "f16-scaled", "bits"])
def test_decode_and_fp32_share_the_tile_wide(window: tuple[int, int], kind: str,
                                             scaled: bool) -> None:
    # the fp32 control and the decode kinds run intadd's tile: 1000 columns run the k slices
    # outermost over a state area; weights 2^14..2^20 need the fp16 top byte's output scale,
    # a 41-exponent window the bit construction
    rng = np.random.default_rng(40 + window[0])
    w = seofp_weights(rng, 13, 1000, *window, 0.1)
    x = _columns(rng, 29, 1000)
    dec, fp32 = K.pack_layer(w, "decode"), K.pack_layer(w, "fp32")
    assert dec.c_kind == getattr(K.lib, f"SEOFP_{kind}") and (dec.scale_exp != 0) == scaled
    outs = []
    for layer in (dec, fp32):
        with K.use_variant("avx2"):
            y, _ = K.gemm(layer, x)
            one = np.stack([K.gemv(layer, x[i])[0] for i in range(x.shape[0])])
        with K.use_variant("portable"):
            yp, _ = K.gemm(layer, x)
        assert y.tobytes() == one.tobytes() == yp.tobytes(), layer.c_kind
        outs.append(y.tobytes())
    assert outs[0] == outs[1]


@pytest.mark.skipif(not AVX2, reason="the tiled product is the AVX2 path; the CPU lacks AVX2")
def test_tiles_force_tiny_and_subnormal_activations_to_zero_in_masked_columns() -> None:
    # products of a subnormal or underflowing activation are +0 in every intadd path; fp32 with
    # those activations set to 0 gives the same bits
    rng = np.random.default_rng(12)
    rows, cols, n = 9, 450, 7
    w = seofp_weights(rng, rows, cols, -6, 0, 0.2)
    x = activations(rng, n, cols)
    x[2, 5] = 1e-42
    x[3, 400:410] = -1e-40
    x[6, 0] = 2.0**-125  # |x| * 2^e_min < 2^-126: underflows for the smallest weights
    for layout in LAYOUTS:
        layer = K.pack_layer(w, "intadd", layout)  # type: ignore[arg-type]
        with K.use_variant("avx2"):
            y, _ = K.gemm(layer, x)
        with K.use_variant("portable"):
            yp, _ = K.gemm(layer, x)
        assert y.tobytes() == yp.tobytes(), layout
        for i in range(n):
            with K.use_variant("avx2"):
                assert y[i].tobytes() == K.gemv(layer, x[i])[0].tobytes(), (layout, i)
    x0 = x.copy()
    x0[2, 5] = 0.0
    x0[3, 400:410] = 0.0
    with K.use_variant("avx2"):
        y32, _ = K.gemm(K.pack_layer(w, "fp32"), x0)
    assert y32[:6].tobytes() == y[:6].tobytes()  # column 6's products underflow only in fp32


@pytest.mark.skipif(not AVX2, reason="the tiled product is the AVX2 path; the CPU lacks AVX2")
@pytest.mark.parametrize("zeros", [0.0, 0.3])
def test_wide_convolution_stores_transposed_outputs_alike(zeros: float) -> None:
    # conv1d writes its output (cout, T) through the tiles' strided stores; 20 channels x 45 taps
    # is wide enough for the k slices to run outermost, 7 output channels end in a partial block
    rng = np.random.default_rng(31)
    cin, cout, ksize, frames = 20, 7, 45, 61
    w = seofp_weights(rng, cout, cin * ksize, -6, 0, zeros)
    x = activations(rng, cin, frames)
    outs = {}
    for var in ("avx2", "portable"):
        with K.use_variant(var):
            for kernel in ("intadd", "fp32"):
                y, clamps = K.conv1d(K.pack_layer(w, kernel), None, x, ksize)  # type: ignore[arg-type]
                assert clamps == 0
                outs[var, kernel] = y.tobytes()
    assert len(set(outs.values())) == 1, sorted(outs)
