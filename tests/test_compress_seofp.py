"""Rounding q(w) (docs/method.md#rounding): the IEEE edge table, properties against a bit-level
reference."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seofp_lab.compress import seofp
from seofp_lab.compress.seofp import SEOFPFormat, fit_window, seofp_round, seofp_ste

F32_MAX = float(np.finfo(np.float32).max)
FINITE_CASES = [
    (0.75, 1.0), (0.7, 0.5), (-3.0, -4.0), (-0.0, 0.0), (0.0, 0.0), (1.5, 2.0),
    (1.4999999, 1.0), (-1.5, -2.0), (2.0**-126, 2.0**-126), (1.5 * 2.0**-126, 2.0**-125),
    (2.0**-149, 0.0), (-(2.0**-130), 0.0), (2.0**127, 2.0**127), (1.4 * 2.0**127, 2.0**127),
    (1.0, 1.0), (0.046370257, 0.03125), (0.08883426, 0.0625), (0.05222963, 0.0625),  # IA-NET Fig. 3
]


def ref_round(x: float, kept: int = 0) -> float:
    """docs/method.md#rounding literally, on Python ints of the float32 bits (independent of
    torch)."""
    u = int(np.array([x], np.float32).view(np.uint32)[0])
    if (u >> 23) & 0xFF == 0:
        return 0.0
    n = 23 - kept
    if n == 23:
        q = (u + 0x0040_0000) & 0xFF80_0000
    elif n > 0:
        q = (u | ((u << 1) & (1 << n))) & ~((1 << n) - 1) & 0xFFFF_FFFF
    else:
        q = u
    return float(np.array([q], np.uint32).view(np.float32)[0])


def bits(t: torch.Tensor) -> list[int]:
    return t.view(torch.int32).tolist()


@pytest.mark.parametrize(("x", "want"), FINITE_CASES, ids=str)
def test_rounding_table(x: float, want: float) -> None:
    got = seofp_round(torch.tensor([x]))
    assert bits(got) == bits(torch.tensor([want]))  # +0, never -0


@pytest.mark.parametrize("x", [F32_MAX, -F32_MAX, 1.5 * 2.0**127, math.inf, -math.inf, math.nan])
def test_inf_nan_and_overflow_are_errors_naming_the_tensor(x: float) -> None:
    with pytest.raises(ValueError, match="lstm.weight_ih_l0"):
        seofp_round(torch.tensor([1.0, x]), name="lstm.weight_ih_l0")


def test_fraction_bits_or_rule_and_identity() -> None:
    x = torch.tensor([1.0 + 2**-23, 1.75, 1.8125, 1.0625])
    assert seofp_round(x, 23).tolist() == x.tolist()
    # kept 2 bits: 1.8125 = 1.1101b -> first dropped bit 0 -> 1.11b; 1.0625 = 1.0001b -> 1.00b
    assert seofp_round(x, 2).tolist() == [1.0, 1.75, 1.75, 1.0]
    # kept 1 bit: 1.75 = 1.11b -> OR first dropped 1 into kept 1 -> 1.1b = 1.5 (no carry)
    assert seofp_round(x, 1).tolist() == [1.0, 1.5, 1.5, 1.0]
    assert seofp_round(torch.tensor([F32_MAX]), 3).isfinite().all()  # OR never carries
    with pytest.raises(ValueError, match="float32"):
        seofp_round(torch.tensor([1.0], dtype=torch.float64))


finite32 = st.floats(-1.4375 * 2.0**127, 1.4375 * 2.0**127, width=32, allow_nan=False)  # < inf


@settings(max_examples=300, deadline=None)
@given(finite32)
def test_round_is_an_idempotent_power_of_two(x: float) -> None:
    q = seofp_round(torch.tensor([x]))
    assert torch.equal(seofp_round(q), q)
    assert q.item() == 0 or math.frexp(abs(q.item()))[0] == 0.5
    assert bits(q)[0] != bits(torch.tensor([-0.0]))[0]


@settings(max_examples=300, deadline=None)
@given(finite32, st.integers(0, 23))
def test_round_matches_the_bit_level_reference(x: float, kept: int) -> None:
    got = seofp_round(torch.tensor([x]), kept)
    assert bits(got) == bits(torch.tensor([ref_round(x, kept)]))


@settings(max_examples=300, deadline=None)
@given(finite32)
def test_round_is_nearest_power_of_two_in_the_linear_domain_ties_up(x: float) -> None:
    a = abs(float(np.float32(x)))
    q = abs(seofp_round(torch.tensor([x])).item())
    if a < 2.0**-126:
        assert q == 0.0
        return
    lo = 2.0 ** (math.frexp(a)[1] - 1)  # a in [lo, 2 lo), exactly
    assert q == (2 * lo if a >= 1.5 * lo else lo)


@settings(max_examples=200, deadline=None)
@given(finite32, finite32)
def test_round_is_sign_symmetric_and_monotone(x: float, y: float) -> None:
    qx, qy = seofp_round(torch.tensor([x, -x])), seofp_round(torch.tensor([min(x, y), max(x, y)]))
    assert qx[0].item() == -qx[1].item()
    assert qy[0].item() <= qy[1].item()


def test_ste_gradient_is_identity_and_doctests_pass() -> None:
    w = torch.tensor([0.3, -5.0, 0.0], requires_grad=True)
    y = seofp_ste(w)
    assert y.tolist() == [0.25, -4.0, 0.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert w.grad.tolist() == [1.0, 2.0, 3.0]
    assert doctest.testmod(seofp, verbose=False).failed == 0


def test_format_names_and_checks() -> None:
    for name, bits_ in (("s1e8", 9), ("s1e5", 6), ("s1e4", 5), ("s1e3", 4)):
        fmt = SEOFPFormat.from_name(name, "per_layer")
        assert (fmt.name, fmt.bits, fmt.group) == (name, bits_, "per_layer")
    assert SEOFPFormat.from_name("s1e8m3").fraction_bits == 3
    assert SEOFPFormat.from_name("s1e8", fraction_bits=3).name == "s1e8m3"
    assert SEOFPFormat(3).window == 7
    for bad in ("s1e9", "e5", "s1e0", "s1e5x"):
        with pytest.raises(ValueError, match="Expected a format named"):
            SEOFPFormat.from_name(bad)
    with pytest.raises(ValueError, match="exponent_bits 8"):
        SEOFPFormat(5, fraction_bits=2)
    with pytest.raises(ValueError, match="group"):
        SEOFPFormat(5, "layer")  # type: ignore[arg-type]


def test_fixed_width_window_is_anchored_at_e_max() -> None:
    # s1e3: 7 exponents [e_max - 6, e_max]; e_max = 3 -> [-3, 3]; 2^-4 = 0.0625 is the tie point
    w = torch.tensor([10.0, -0.1, 0.0625, 0.0624, -0.09, 0.2, 2.0**-20])
    q = fit_window(w, seofp_round(w), 3, 3)
    assert q.tolist() == [8.0, -0.125, 0.125, 0.0, -0.125, 0.25, 0.0]
    assert torch.equal(fit_window(q, seofp_round(q), 3, 3), q)  # idempotent
    assert torch.equal(fit_window(w, seofp_round(w), 3, 8), seofp_round(w))  # s1e8: no window


@pytest.mark.parametrize("module", ["codec", "pruning", "sharing", "ste"])
def test_module_doctests(module: str) -> None:
    import importlib  # noqa: PLC0415

    result = doctest.testmod(importlib.import_module(f"seofp_lab.compress.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_compress_imports_without_lightning_or_mlflow() -> None:
    code = ("import sys, seofp_lab.compress; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('lightning', 'pytorch_lightning', 'mlflow', 'matplotlib')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
