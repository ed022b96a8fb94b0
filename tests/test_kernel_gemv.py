"""C kernels against a float64 reference and against each other
(docs/engine.md#correctness-tests)."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import INTADD_LAYOUTS, PACKINGS, activations, seofp_weights

pytestmark = pytest.mark.kernel
VARIANTS = ["portable"] + (["avx2"] if K.lib.seofp_avx2_supported() else [])
# (rows, cols, e_lo, e_hi): odd shapes; windows for fp16 at scale 0, fp16 scaled (BLSTM, 32
# exponents incl. the two fp16 subnormal codes) and bit construction (the FCN's 37 exponents)
SHAPES = [(1, 1, -3, 0), (5, 17, -10, 10), (37, 201, -23, 0), (66, 257, -23, 8),
          (9, 130, -26, 10)]


def _bits(y: np.ndarray) -> bytes:
    return y.tobytes()


# zeros 0.1: zero weights, so intadd masks; 0.0: batch-1 addends take the 16-bit add path
@pytest.mark.parametrize("zeros", [0.1, 0.0])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_kernels_are_bit_identical_and_within_the_float64_bound(shape: tuple[int, ...],
                                                                 zeros: float) -> None:
    rows, cols, lo, hi = shape
    rng = np.random.default_rng(rows * 1000 + cols)
    # 8 columns: GEMM tiles of 3, 3 and 2 columns, each checked against the batch-1 path
    w, x = seofp_weights(rng, rows, cols, lo, hi, zeros), activations(rng, 8, cols)
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    bound = cols * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T)
    outs = {}
    for var in VARIANTS:
        with K.use_variant(var):
            for kernel, layout in PACKINGS:
                layer = K.pack_layer(w, kernel, layout)  # type: ignore[arg-type]
                y, clamps = K.gemm(layer, x)
                assert clamps == 0
                assert (np.abs(y - ref) <= bound).all(), (var, kernel, layout)
                for i in range(x.shape[0]):  # batch 1 and batch > 1 reduce in one order
                    assert _bits(K.gemv(layer, x[i])[0]) == _bits(y[i])
                outs[var, kernel, layout] = _bits(y)
    assert len(set(outs.values())) == 1, sorted(outs)


def test_decode_layout_covers_fp16_subnormal_codes() -> None:
    # a 32-exponent window is decoded with scale 2^(e_max-15): its two lowest codes are the
    # fp16 subnormal bytes 0x01 and 0x02, which must decode exactly
    w = np.ldexp(np.float32(1.0), np.arange(-23, 9)).astype(np.float32)[None, :]
    layer = K.pack_layer(w, "decode")
    assert layer.scale_exp == 8 - 15
    for j in range(w.shape[1]):
        x = np.zeros(w.shape[1], np.float32)
        x[j] = 1.0
        assert K.gemv(layer, x)[0][0] == w[0, j]


@pytest.mark.parametrize("layout", INTADD_LAYOUTS)
@pytest.mark.parametrize("var", VARIANTS)
def test_edge_activations(var: str, layout: str) -> None:
    rng = np.random.default_rng(7)
    w = seofp_weights(rng, 6, 40, -23, -17, zeros=0.0)  # 7 exponents: every layout holds it
    tiny = np.array([0.0, -0.0, 1e-45, -1e-40, np.finfo(np.float32).tiny, 1e-38], np.float32)
    x = activations(rng, 40)
    x[: tiny.size] = tiny
    with K.use_variant(var):
        y_int, clamps = K.gemv(K.pack_layer(w, "intadd", layout), x)  # type: ignore[arg-type]
        # every listed activation gives a product below 2^-126 with 2^e_min: forced to +0
        x_ref = x.copy()
        x_ref[: tiny.size] = 0.0
        y_ref, _ = K.gemv(K.pack_layer(w, "fp32"), x_ref)
    assert clamps == 0
    assert _bits(y_int) == _bits(y_ref)


@pytest.mark.parametrize("layout", INTADD_LAYOUTS)
def test_pre_pass_clamps_masks_and_refuses_alike_in_every_variant(layout: str) -> None:
    # 37 activations: the AVX2 pre-pass takes 8 at a time, the last 5 go through the C one
    rng = np.random.default_rng(4)
    w = seofp_weights(rng, 5, 37, -3, 2, zeros=0.0)  # e_max 2: |x| >= 2^126 is clamped
    x = activations(rng, 37)
    x[[3, 11, 20, 35]] = [3e38, -3e38, 2e38, -1e38]  # clamped, three of them vectorised
    x[[5, 14, 33]] = [0.0, 1e-42, -0.0]  # masked
    outs = set()
    for var in VARIANTS:
        with K.use_variant(var):  # type: ignore[arg-type]
            y, clamps = K.gemv(K.pack_layer(w, "intadd", layout), x)  # type: ignore[arg-type]
            assert clamps == 4  # (sums of several clamped products may still reach inf)
            outs.add(_bits(y))
            bad = x.copy()
            bad[9] = np.nan  # inside a vectorised group
            with pytest.raises(K.KernelError, match="finite"):
                K.gemv(K.pack_layer(w, "intadd", layout), bad)  # type: ignore[arg-type]
    assert len(outs) == 1


@pytest.mark.parametrize("var", VARIANTS)
def test_large_activations_with_the_fcn_range_are_not_clamped(var: str) -> None:
    rng = np.random.default_rng(3)
    w = seofp_weights(rng, 7, 55, 0, 10)  # weights up to 2^10
    x = (activations(rng, 55) * 4096).astype(np.float32)  # |x| > 1024
    with K.use_variant(var):
        outs = [K.gemv(K.pack_layer(w, k, lay), x) for k, lay in PACKINGS]  # type: ignore[arg-type]
    assert all(rc == 0 for _, rc in outs)
    assert len({_bits(y) for y, _ in outs}) == 1


@pytest.mark.parametrize("layout", INTADD_LAYOUTS)
@pytest.mark.parametrize("var", VARIANTS)
def test_overflow_clamp_uses_the_layers_real_e_max(var: str, layout: str) -> None:
    big = np.float32(3e38)
    w_small = np.array([[1.0, 0.5]], np.float32)  # e_max = 0: 3e38 * 1 is finite, no clamp
    w_big = np.array([[4.0, 0.5]], np.float32)  # e_max = 2: 3e38 * 4 would overflow
    x = np.array([big, 0.0], np.float32)
    with K.use_variant(var):
        y, rc = K.gemv(K.pack_layer(w_small, "intadd", layout), x)  # type: ignore[arg-type]
        assert (rc, y[0]) == (0, big)
        y, rc = K.gemv(K.pack_layer(w_big, "intadd", layout), x)  # type: ignore[arg-type]
    assert rc == 1
    assert np.isfinite(y).all() and y[0] == np.float32(np.finfo(np.float32).max)


@pytest.mark.parametrize("var", VARIANTS)
def test_all_zero_rows_give_positive_zero(var: str) -> None:
    rng = np.random.default_rng(5)
    w = seofp_weights(rng, 6, 33, -5, 5)
    w[[0, 4]] = 0.0
    w[2] = -0.0
    x = activations(rng, 33)
    with K.use_variant(var):
        for kernel, layout in PACKINGS:
            y, _ = K.gemv(K.pack_layer(w, kernel, layout), x)  # type: ignore[arg-type]
            assert (y[[0, 2, 4]].view(np.uint32) == 0).all(), (kernel, layout)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected_before_the_kernel(bad: float) -> None:
    layer = K.pack_layer(np.ones((4, 8), np.float32), "intadd")
    x = np.ones(8, np.float32)
    x[3] = bad
    with pytest.raises(K.KernelError, match="finite"):
        K.gemv(layer, x)


def test_wrong_dtype_shape_and_non_seofp_weights_are_refused() -> None:
    layer = K.pack_layer(np.ones((4, 8), np.float32), "decode")
    with pytest.raises(K.KernelError, match=r"float32 \(8,\)"):
        K.gemv(layer, np.ones(8, np.float64))
    with pytest.raises(K.KernelError, match=r"float32 \(8,\)"):
        K.gemv(layer, np.ones(9, np.float32))
    with pytest.raises(K.KernelError, match="SEOFP"):
        K.pack_layer(np.full((2, 2), 0.3, np.float32), "intadd")
    with pytest.raises(K.KernelError, match="layout"):
        K.pack_layer(np.ones((2, 2), np.float32), "intadd", "bytes")  # type: ignore[arg-type]
    with pytest.raises(K.KernelError, match="variant"):
        K.set_variant("sse9")  # type: ignore[arg-type]


def test_variant_reports_the_active_path() -> None:
    with K.use_variant("portable"):
        assert K.variant() == "portable"
    assert K.variant() in ("avx2", "portable")


@pytest.mark.parametrize("layout", INTADD_LAYOUTS)
@pytest.mark.parametrize("var", VARIANTS)
def test_zero_weight_mask_is_applied_when_the_layer_has_zeros(var: str, layout: str) -> None:
    # intadd skips the zero-weight mask for layers without zeros: a layer with one zero weight
    # must take the masked path (else its product would be x * 2^(e_min - 1))
    rng = np.random.default_rng(9)
    w = seofp_weights(rng, 8, 48, -6, 0, zeros=0.0)
    x = activations(rng, 48)
    with K.use_variant(var):
        assert not K.pack_layer(w, "intadd", layout).zeros  # type: ignore[arg-type]
        w[3, 17] = 0.0
        sparse = K.pack_layer(w, "intadd", layout)  # type: ignore[arg-type]
        assert sparse.zeros
        y, _ = K.gemv(sparse, x)
        yf, _ = K.gemv(K.pack_layer(w, "fp32"), x)
    assert _bits(y) == _bits(yf)


def test_auto_layout_picks_addends_for_cache_sized_layers_only() -> None:
    small = np.ones((8, 16), np.float32)
    assert K.pack_layer(small, "intadd").c_kind == K.lib.SEOFP_INTADD16
    rows = K.ADDENDS_MAX_BYTES // (2 * 64) + 4  # just over the budget at 64 columns
    assert K.pack_layer(np.ones((rows, 64), np.float32), "intadd").c_kind == K.lib.SEOFP_INTADD


@pytest.mark.parametrize("shape", [(1, 1), (5, 17), (37, 201), (66, 257)], ids=str)
@pytest.mark.parametrize("var", VARIANTS)
def test_nibble_layout_is_bit_identical_for_s1e3_windows(var: str, shape: tuple[int, int]) -> None:
    # 4-bit codes hold windows of 7 exponents; zero weights, masked activations, GEMM and GEMV
    rows, cols = shape
    rng = np.random.default_rng(rows + cols)
    w = seofp_weights(rng, rows, cols, -9, -3, zeros=0.2)
    x = activations(rng, 7, cols)
    x[3, :: max(cols // 3, 1)] = 0.0  # a masked column in the middle tile
    with K.use_variant(var):
        nib = K.pack_layer(w, "intadd", "nibbles")
        assert nib.c_kind == K.lib.SEOFP_INTADD4
        assert nib.data.nbytes == -(-rows // 4) * 4 * -(-cols // 16) * 16 // 2  # 4 bits each
        outs = {lay: K.gemm(K.pack_layer(w, k, lay), x)[0].tobytes()  # type: ignore[arg-type]
                for k, lay in [*PACKINGS, ("intadd", "nibbles")]}
        for i in range(x.shape[0]):
            assert K.gemv(nib, x[i])[0].tobytes() == K.gemm(nib, x)[0][i].tobytes()
    assert len(set(outs.values())) == 1, outs.keys()


def test_nibble_layout_refuses_wide_windows() -> None:
    w = np.array([[1.0, 2.0**-7]], np.float32)  # span 7: needs code 8
    assert K.exponent_span(w) == 7
    with pytest.raises(K.KernelError, match="span <= 6"):
        K.pack_layer(w, "intadd", "nibbles")


@pytest.mark.parametrize("var", VARIANTS)
def test_ianet_split_stores_the_papers_weight_bits(var: str) -> None:
    # IA-NET Fig. 5: -0.9876 (stored exponent 00111110) x -0.25 (00111110) -> 0.2469 (01111100)
    layer = K.pack_layer(np.array([[-0.25]], np.float32), "intadd", "ianet")
    stored = int(layer.data.reshape(-1)[0])  # the top half of bits(-0.25 * 2^-63)
    assert stored == np.array([-0.25 * 2.0**-63], np.float32).view(np.uint32)[0] >> 16
    assert (stored >> 7) & 0xFF == 0b00111110 and stored >> 15 == 1
    with K.use_variant(var):
        y, _ = K.gemv(layer, np.array([-0.9876], np.float32))
    assert y[0] == np.float32(-0.9876) * np.float32(-0.25)
    assert (int(y.view(np.uint32)[0]) >> 23) & 0xFF == 0b01111100
    with pytest.raises(K.KernelError, match="2\\^-63"):
        K.pack_layer(np.array([[2.0**-70]], np.float32), "intadd", "ianet")
