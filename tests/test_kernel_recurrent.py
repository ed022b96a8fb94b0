"""The LSTM recurrence's own product path (kernels/recurrent.c: AVX2, intadd) on one and on two
threads against the portable path and a float64 reference, bit for bit where the kernels must
agree (docs/engine.md#reduction-order-and-bit-identity)."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import activations, lstm_ref, seofp_weights

pytestmark = pytest.mark.kernel

AVX2 = bool(K.lib.seofp_avx2_supported())
LAYOUTS = ["codes", "addends", "nibbles", "ianet"]


def _run(layers, b, x, h0, c0, variant: str, threads: int):
    """(out, h, c, clamps) of one direction on one code path."""
    wih, whh = layers
    out = np.zeros((x.shape[0], whh.cols), np.float32)
    h, c = h0.copy(), c0.copy()
    with K.use_variant(variant), K.use_threads(threads):  # type: ignore[arg-type]
        clamps = K.lstm_direction(wih, whh, b, x, h, c, out)
    return out, h, c, clamps


def _paths(layers, b, x, h0, c0):
    """The same direction on the portable path and the recurrent path, one and two threads."""
    runs = {"portable": _run(layers, b, x, h0, c0, "portable", 1)}
    if AVX2:
        runs["recurrent"] = _run(layers, b, x, h0, c0, "avx2", 1)
        runs["two threads"] = _run(layers, b, x, h0, c0, "avx2", 2)  # blocks split at 64K weights
    return runs


def _same(runs) -> None:
    base = runs["portable"]
    for name, got in runs.items():
        for a, w in zip(got[:3], base[:3], strict=True):
            assert a.tobytes() == w.tobytes(), name
        assert got[3] == base[3], name


# hidden 1 and odd sizes: padded columns and a last block without a partner (8-row reduction);
# 37: an odd number of 4-row blocks; 130: over 64K weights, two threads split the 130 blocks at
# block 65 (an odd start for the second thread's pairs)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("zeros", [0.0, 0.5])
@pytest.mark.parametrize("hidden,frames", [(1, 3), (7, 1), (37, 5), (130, 3)])
def test_recurrence_equals_generic_and_portable_paths(layout: str, zeros: float, hidden: int,
                                                      frames: int) -> None:
    rng = np.random.default_rng(hidden * 10 + int(zeros * 10))
    n_in = 13
    wih = seofp_weights(rng, 4 * hidden, n_in, -6, 0, zeros)
    whh = seofp_weights(rng, 4 * hidden, hidden, -6, 0, zeros)  # span 6: nibbles fit
    b = activations(rng, 4 * hidden) * 0.1
    x = activations(rng, frames, n_in)
    layers = (K.pack_layer(wih, "intadd", layout), K.pack_layer(whh, "intadd", layout))  # type: ignore[arg-type]
    assert layers[1].zeros == (zeros > 0)
    h0, c0 = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
    runs = _paths(layers, b, x, h0, c0)
    _same(runs)
    ref = lstm_ref(*(a.astype(np.float64) for a in (wih, whh, b, x, h0, c0)))
    np.testing.assert_allclose(runs["portable"][0], ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("zeros", [0.0, 0.3])
def test_recurrence_masks_and_clamps_the_state_like_the_generic_path(layout: str,
                                                                     zeros: float) -> None:
    """A carried state with ±0, a subnormal, a value too small for the smallest weight (masked)
    and one too large for the largest (clamped): every path masks and clamps the same."""
    rng = np.random.default_rng(3)
    hidden, n_in, frames = 21, 9, 4
    # e_max 8: |h| >= 2^119 clamps; e_min -10 (nibbles: 2): |h| < 2^-116 is masked
    lo = 2 if layout == "nibbles" else -10
    wih = seofp_weights(rng, 4 * hidden, n_in, -4, 0, zeros)
    whh = seofp_weights(rng, 4 * hidden, hidden, lo, 8, zeros)
    b = activations(rng, 4 * hidden) * 0.1
    x = activations(rng, frames, n_in)
    h0 = activations(rng, hidden) * 0.5
    h0[:6] = [0.0, -0.0, 1e-40, -1e-40, 1e-37, 3e37]  # zeros, subnormals, tiny, clamped
    c0 = activations(rng, hidden) * 0.5
    layers = (K.pack_layer(wih, "intadd", "auto"), K.pack_layer(whh, "intadd", layout))  # type: ignore[arg-type]
    runs = _paths(layers, b, x, h0, c0)
    _same(runs)
    assert runs["portable"][3] >= 1  # 3e37 * 2^8 >= 2^128: clamped


def test_recurrence_refuses_a_non_finite_state_on_every_path() -> None:
    rng = np.random.default_rng(8)
    hidden = 12
    layers = (K.pack_layer(seofp_weights(rng, 4 * hidden, 5, -4, 0), "intadd", "addends"),
              K.pack_layer(seofp_weights(rng, 4 * hidden, hidden, -4, 0), "intadd", "addends"))
    b = np.zeros(4 * hidden, np.float32)
    x = activations(rng, 2, 5)
    h0 = activations(rng, hidden)
    h0[4] = np.nan
    for variant in ["portable"] + (["avx2"] if AVX2 else []):
        with pytest.raises(K.KernelError):
            _run(layers, b, x, h0, np.zeros(hidden, np.float32), variant, 1)


@pytest.mark.parametrize("layout", ["codes", "addends"])
def test_recurrence_covers_the_whole_code_range(layout: str) -> None:
    """Exponents over 127 codes (e_min -110 .. e_max 16): the largest codes, both signs, where
    the byte-to-addend arithmetic of the codes path has no slack."""
    rng = np.random.default_rng(21)
    hidden, n_in, frames = 24, 8, 3
    wih = seofp_weights(rng, 4 * hidden, n_in, -4, 0)
    whh = seofp_weights(rng, 4 * hidden, hidden, -110, 16, zeros=0.2)
    whh[0, 0], whh[1, 1], whh[2, 2], whh[3, 3] = 2.0**-110, -(2.0**-110), 2.0**16, -(2.0**16)
    b = activations(rng, 4 * hidden) * 0.1
    x = activations(rng, frames, n_in)
    h0, c0 = activations(rng, hidden) * 0.5, activations(rng, hidden) * 0.5
    layers = (K.pack_layer(wih, "intadd", layout), K.pack_layer(whh, "intadd", layout))  # type: ignore[arg-type]
    assert (layers[1].e_min, layers[1].e_max) == (-110, 16)
    _same(_paths(layers, b, x, h0, c0))
