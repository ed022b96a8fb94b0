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
