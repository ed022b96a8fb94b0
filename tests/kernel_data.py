"""Random SEOFP weights and activations for the kernel tests (docs/engine.md#correctness-tests:
never zeros)."""

from __future__ import annotations

import numpy as np

# every weight layout the kernels run on: intadd as 1-byte codes, as 16-bit addends and in IA-NET's
# 2^-63/2^64 split (seofp.h; the 4-bit nibbles need narrow windows and have their own tests),
# decode (fp16 top byte or bit construction) and the fp32 control; all must agree bit for bit
PACKINGS = [("intadd", "codes"), ("intadd", "addends"), ("intadd", "ianet"), ("decode", "auto"),
            ("fp32", "auto")]
INTADD_LAYOUTS = ["codes", "addends", "nibbles"]


def seofp_weights(rng: np.random.Generator, rows: int, cols: int, e_lo: int, e_hi: int,
                  zeros: float = 0.1) -> np.ndarray:
    """(rows, cols) float32 of ±2^e, e uniform in [e_lo, e_hi], a fraction ``zeros`` exact +0."""
    e = rng.integers(e_lo, e_hi + 1, size=(rows, cols))
    w = np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)
    w[rng.random((rows, cols)) < zeros] = 0.0
    return w


def activations(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """N(0, 1) float32 with |x| >= 1e-3 (random signs kept)."""
    x = rng.standard_normal(shape).astype(np.float32)
    small = np.abs(x) < 1e-3
    x[small] = np.copysign(np.float32(1e-3), x[small])
    return x


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def lstm_ref(wih, whh, b, x, h=None, c=None, reverse=False):  # noqa: ANN001, ANN201
    """One LSTM direction in float64 (torch gate order i, f, g, o) from state ``h``, ``c``
    (zeros when None): the reference the kernel tests compare against."""
    hidden = whh.shape[1]
    h = np.zeros(hidden) if h is None else h
    c = np.zeros(hidden) if c is None else c
    out = np.zeros((x.shape[0], hidden))
    for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
        g = wih @ x[t] + b + whh @ h
        i, f = sigmoid(g[:hidden]), sigmoid(g[hidden:2 * hidden])
        gg, o = np.tanh(g[2 * hidden:3 * hidden]), sigmoid(g[3 * hidden:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        out[t] = h
    return out
