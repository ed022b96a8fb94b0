"""Kernel calls on exactly-sized buffers with scratch and outputs pre-filled with different bit
patterns (kernels/sanitize_check.py, docs/engine.md#sanitizers), and the LSTM gates on NaN
pre-activations on both code paths."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seofp_lab.infer import kernels as K

pytestmark = pytest.mark.kernel
VARIANTS = ["portable"] + (["avx2"] if K.lib.seofp_avx2_supported() else [])


def _driver():
    path = Path(__file__).resolve().parent.parent / "kernels" / "sanitize_check.py"
    spec = importlib.util.spec_from_file_location("sanitize_check", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_entry_point_ignores_scratch_and_output_contents() -> None:
    """No kernel result depends on what the scratch or the outputs held before the call, none
    writes outside its outputs' elements, and every path and thread count agree."""
    drv = _driver()
    assert drv.main(["--quick"]) == 0, drv.FAILS[:10]
    assert drv.CALLS > 10000


@pytest.mark.parametrize("kernel", ["decode", "fp32"])
def test_lstm_gates_keep_a_nan_pre_activation_on_both_paths(kernel: str) -> None:
    """A product that overflows (decode and fp32 have no clamp) gives inf - inf = NaN gate
    pre-activations: both paths keep NaN in h (the AVX2 gates once turned it into a finite
    value in their 8-unit vectors), and the next step reports the non-finite state."""
    rng = np.random.default_rng(3)
    hidden, n_in = 17, 6  # units 0-15 in the AVX2 vectors, 16 in the C tail
    sign = np.where(rng.random((4 * hidden, n_in)) < 0.5, -4.0, 4.0).astype(np.float32)
    wih = K.pack_layer(sign, kernel)  # type: ignore[arg-type]
    whh = K.pack_layer(np.full((4 * hidden, hidden), 0.5, np.float32), kernel)  # type: ignore[arg-type]
    bias = np.zeros(4 * hidden, np.float32)
    x = np.ones((2, n_in), np.float32)
    x[0] = 3e38  # every product of frame 0 overflows, with both signs in each row
    for var in VARIANTS:
        with K.use_variant(var):  # type: ignore[arg-type]
            h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
            out = np.zeros((1, hidden), np.float32)
            assert K.lstm_direction(wih, whh, bias, x[:1], h, c, out) == 0
            assert np.isnan(out).all() and np.isnan(h).all() and np.isnan(c).all(), var
            h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
            with pytest.raises(K.NonFiniteInput):
                K.lstm_direction(wih, whh, bias, x, h, c, np.zeros((2, hidden), np.float32))
