"""LSTM, linear, conv1d and norm kernels against numpy references
(docs/engine.md#correctness-tests)."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import PACKINGS, activations, lstm_ref, seofp_weights, sigmoid

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_direction_matches_reference_and_kernels_agree(reverse: bool) -> None:
    rng = np.random.default_rng(11)
    hidden, n_in, frames = 7, 19, 9
    wih = seofp_weights(rng, 4 * hidden, n_in, -6, -1)
    whh = seofp_weights(rng, 4 * hidden, hidden, -6, -1)
    b = seofp_weights(rng, 1, 4 * hidden, -4, 0)[0]
    x = activations(rng, frames, n_in)
    ref = lstm_ref(*(a.astype(np.float64) for a in (wih, whh, b, x)), reverse=reverse)
    outs = []
    for kernel, layout in PACKINGS:
        out = np.zeros((frames, 2 * hidden + 1), np.float32)
        h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
        K.lstm_direction(K.pack_layer(wih, kernel, layout), K.pack_layer(whh, kernel, layout),  # type: ignore[arg-type]
                         b, x, h, c, out, col=hidden, reverse=reverse)
        np.testing.assert_allclose(out[:, hidden:2 * hidden], ref, rtol=0, atol=2e-6)
        assert (out[:, :hidden] == 0).all() and (out[:, -1] == 0).all()  # only its columns
        outs.append(out.tobytes())
    assert len(set(outs)) == 1


VARIANTS = ["portable"] + (["avx2"] if K.lib.seofp_avx2_supported() else [])


# hidden 132: W_hh of both directions over 256 KiB in fp32 and 16-bit addends (one direction
# after the other), under it in 1-byte codes (interleaved); hidden 9: interleaved in every layout
@pytest.mark.parametrize("hidden", [9, 132])
@pytest.mark.parametrize("var", VARIANTS)
def test_blstm_layer_interleaved_equals_two_directions(var: str, hidden: int) -> None:
    rng = np.random.default_rng(5)
    n_in, frames = 21, 11 if hidden < 100 else 4
    mats = [(seofp_weights(rng, 4 * hidden, n_in, -6, -1, zeros),
             seofp_weights(rng, 4 * hidden, hidden, -6, -1, zeros),
             seofp_weights(rng, 1, 4 * hidden, -4, 0)[0]) for zeros in (0.0, 0.1)]
    x = activations(rng, frames, n_in)
    with K.use_variant(var):  # type: ignore[arg-type]
        for kernel, layout in PACKINGS:
            dirs = [(K.pack_layer(wi, kernel, layout), K.pack_layer(wh, kernel, layout), b)  # type: ignore[arg-type]
                    for wi, wh, b in mats]
            got, clamps = K.blstm_layer(dirs[0], dirs[1], x)
            want = np.zeros((frames, 2 * hidden), np.float32)
            for d, (wi, wh, b) in enumerate(dirs):
                h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
                K.lstm_direction(wi, wh, b, x, h, c, want, col=d * hidden, reverse=d == 1)
            assert clamps == 0
            assert got.tobytes() == want.tobytes(), (kernel, layout)


def test_lstm_state_carries_across_calls() -> None:
    rng = np.random.default_rng(2)
    hidden, n_in = 5, 6
    wih, whh = (K.pack_layer(seofp_weights(rng, 20, n, -5, 0), "intadd") for n in (n_in, hidden))
    b = np.zeros(20, np.float32)
    x = activations(rng, 6, n_in)
    whole = np.zeros((6, hidden), np.float32)
    K.lstm_direction(wih, whh, b, x, np.zeros(hidden, np.float32), np.zeros(hidden, np.float32),
                     whole)
    h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
    steps = np.zeros((6, hidden), np.float32)
    for t in range(6):  # streaming: one frame per call, state passed back in
        K.lstm_direction(wih, whh, b, x[t:t + 1], h, c, steps[t:t + 1])
    assert whole.tobytes() == steps.tobytes()


def test_linear_activations() -> None:
    rng = np.random.default_rng(4)
    w = seofp_weights(rng, 10, 23, -5, 2)
    b = activations(rng, 10)
    x = activations(rng, 4, 23)
    pre = x.astype(np.float64) @ w.T.astype(np.float64) + b
    refs = {"none": pre, "relu": np.maximum(pre, 0),
            "leaky_relu": np.where(pre >= 0, pre, 0.2 * pre), "tanh": np.tanh(pre),
            "sigmoid": sigmoid(pre)}
    layer = K.pack_layer(w, "intadd")
    for act, ref in refs.items():
        y, _ = K.linear(layer, b, x, act, slope=0.2)  # type: ignore[arg-type]
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5, err_msg=act)


@pytest.mark.skipif(not K.lib.seofp_avx2_supported(), reason="compares the AVX2 path")
def test_linear_activations_agree_bit_for_bit_across_code_paths() -> None:
    # the AVX2 path applies bias and activation 8 outputs at a time (tanh and sigmoid by the
    # gates' exp formula), the portable path one by one: same bits, 19 rows = 2 vectors + 3
    rng = np.random.default_rng(8)
    w = seofp_weights(rng, 19, 40, -3, 3)
    b = activations(rng, 19) * 4
    x = activations(rng, 7, 40) * 4
    x[0, :] = 0.0  # outputs equal to the bias alone; with b = 0 below, exact zeros
    for bias in (b, None):
        for act in ("none", "relu", "leaky_relu", "tanh", "sigmoid"):
            outs = []
            for var in ("avx2", "portable"):
                with K.use_variant(var):
                    outs.append(K.linear(K.pack_layer(w, "intadd"), bias, x, act,  # type: ignore[arg-type]
                                         slope=0.2)[0].tobytes())
            assert outs[0] == outs[1], (act, bias is None)


def test_conv1d_same_padding_and_norm() -> None:
    rng = np.random.default_rng(6)
    cin, cout, ksize, frames = 3, 5, 7, 150  # frames > one 64-step im2col block
    w = seofp_weights(rng, cout, cin * ksize, -8, 3)
    b = activations(rng, cout)
    x = activations(rng, cin, frames)
    xp = np.pad(x.astype(np.float64), ((0, 0), (ksize // 2, ksize // 2)))
    w3 = w.reshape(cout, cin, ksize).astype(np.float64)
    ref = np.stack([sum(np.convolve(xp[i], w3[o, i, ::-1], "valid") for i in range(cin))
                    for o in range(cout)]) + b[:, None]
    outs = []
    for kernel, layout in PACKINGS:
        y, _ = K.conv1d(K.pack_layer(w, kernel, layout), b, x, ksize)  # type: ignore[arg-type]
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        outs.append(y.tobytes())
    assert len(set(outs)) == 1
    mean, var = activations(rng, cout), np.abs(activations(rng, cout)) + 0.5
    gamma, beta = activations(rng, cout), activations(rng, cout)
    z = K.channel_norm_act_(y.copy(), (mean, var, gamma, beta), 1e-5, "leaky_relu", 0.2)
    pre = (y - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(z, np.where(pre >= 0, pre, 0.2 * pre), rtol=1e-5, atol=1e-5)


def test_conv1d_rejects_even_kernels() -> None:
    layer = K.pack_layer(np.ones((2, 6), np.float32), "fp32")
    with pytest.raises(K.KernelError, match="odd"):
        K.conv1d(layer, None, np.ones((3, 10), np.float32), 2)


def test_conv1d_intadd_masks_zero_and_tiny_activations_inside_the_signal() -> None:
    # zeros and subnormals inside the signal take the masked tile path of the intadd GEMM
    rng = np.random.default_rng(8)
    cin, cout, ksize, frames = 4, 6, 5, 130
    w = seofp_weights(rng, cout, cin * ksize, -8, 3, zeros=0.0)
    x = activations(rng, cin, frames)
    x[1, 40:47] = 0.0
    x[2, 90] = 1e-42
    outs = []
    for kernel, layout in PACKINGS:
        x_in = x.copy()
        if kernel != "intadd":
            x_in[2, 90] = 0.0  # intadd forces products of a subnormal activation to +0
        y, clamps = K.conv1d(K.pack_layer(w, kernel, layout), None, x_in, ksize)  # type: ignore[arg-type]
        assert clamps == 0
        outs.append(y.tobytes())
    assert len(set(outs)) == 1


@pytest.mark.parametrize("var", ["portable", "avx2"])
def test_lstm_gates_agree_across_code_paths(var: str) -> None:
    if var == "avx2" and not K.lib.seofp_avx2_supported():
        pytest.skip("no AVX2 on this CPU")
    rng = np.random.default_rng(9)
    hidden, n_in, frames = 21, 13, 5  # hidden not a multiple of 8: the vector tail
    wih = seofp_weights(rng, 4 * hidden, n_in, -3, 2)
    whh = seofp_weights(rng, 4 * hidden, hidden, -3, 2)
    b = activations(rng, 4 * hidden)
    x = activations(rng, frames, n_in) * 8  # large pre-activations reach the clamped exp range
    outs = {}
    for v in ("portable", var):
        with K.use_variant(v):  # type: ignore[arg-type]
            out = np.zeros((frames, hidden), np.float32)
            h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
            K.lstm_direction(K.pack_layer(wih, "decode"), K.pack_layer(whh, "decode"), b, x, h,
                             c, out)
            outs[v] = out.tobytes()
    assert len(set(outs.values())) == 1
