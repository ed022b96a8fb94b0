"""Sign-exponent-only formats and rounding (docs/method.md#rounding): the format, q(w), its STE, the
window.

Everything here works on single tensors; which tensors of a model are rounded, and with which
exponent window, is ``range.py``'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Group = Literal["global", "per_layer"]
E_NORMAL_MIN, E_NORMAL_MAX = -126, 127
_NAME = re.compile(r"^s1e([1-8])(?:m(\d+))?$")


class RepresentabilityError(ValueError):
    """A value that should be ±2^e (or 0) inside its format's window is not."""


@dataclass(frozen=True)
class SEOFPFormat:
    """A sign bit + an exponent code; code 0 is zero (docs/method.md#formats).

    ``fraction_bits`` > 0 keeps that many mantissa bits (EOFP-QNN Table 2 only; ``s1e8`` then).
    The stored width after exponent-range reduction is ``1 + len (+ fraction_bits)`` with
    ``len <= exponent_bits``; ``exponent_bits < 8`` also imposes a window anchored at e_max.

    >>> SEOFPFormat.from_name("s1e5").bits
    6
    """

    exponent_bits: int = 8  # s1e8: the paper's 9-bit weights
    group: Group = "global"  # one exponent window per model or per tensor
    fraction_bits: int = 0  # kept mantissa bits; 0 = SEOFP

    def __post_init__(self) -> None:
        if not 1 <= self.exponent_bits <= 8:
            raise ValueError(f"Expected exponent_bits in [1, 8] but got {self.exponent_bits}")
        if self.group not in ("global", "per_layer"):
            raise ValueError(f"Expected group 'global' or 'per_layer' but got {self.group!r}")
        if not 0 <= self.fraction_bits <= 23:
            raise ValueError(f"Expected fraction_bits in [0, 23] but got {self.fraction_bits}")
        if self.fraction_bits and self.exponent_bits != 8:
            raise ValueError(
                f"Expected exponent_bits 8 with fraction_bits > 0 but got s1e{self.exponent_bits}"
            )

    @property
    def name(self) -> str:
        """``s1e5``; ``s1e8m3`` with kept mantissa bits."""
        return f"s1e{self.exponent_bits}" + (f"m{self.fraction_bits}" if self.fraction_bits else "")

    @property
    def bits(self) -> int:
        """Nominal bits per value before exponent-range reduction."""
        return 1 + self.exponent_bits + self.fraction_bits

    @property
    def window(self) -> int:
        """How many exponents fit: 2^exponent_bits - 1 codes (code 0 is zero)."""
        return (1 << self.exponent_bits) - 1

    @classmethod
    def from_name(cls, name: str, group: Group = "global", fraction_bits: int = 0) -> SEOFPFormat:
        """``from_name("s1e5")``; ``"s1e8m3"`` sets fraction_bits=3."""
        m = _NAME.match(name)
        if m is None:
            raise ValueError(f"Expected a format named s1e1 .. s1e8 (e.g. s1e5) but got {name!r}")
        frac = int(m.group(2)) if m.group(2) is not None else fraction_bits
        return cls(int(m.group(1)), group, frac)


def _bits(x: Tensor) -> Tensor:
    return x.detach().contiguous().view(torch.int32)


def seofp_round(x: Tensor, fraction_bits: int = 0, name: str = "weight") -> Tensor:
    """Nearest power of two in the linear domain, ties (1.5 * 2**e) up: docs/method.md#rounding.

    ``fraction_bits`` = m kept mantissa bits: m = 0 is SEOFP (add the first dropped bit, clear
    the mantissa); 0 < m < 23 ORs the first dropped bit into the last kept one; m = 23 keeps
    every finite value. ±0 and subnormals become +0.

    Args:
        x: float32 tensor, any shape.
        fraction_bits: kept mantissa bits, 0..23.
        name: the tensor's name for error messages.

    Raises:
        ValueError: NaN or inf in ``x``, or a value that rounds to inf.

    >>> seofp_round(torch.tensor([0.75, 0.7, -3.0, -0.0]))
    tensor([ 1.0000,  0.5000, -4.0000,  0.0000])
    """
    if x.dtype != torch.float32:
        raise ValueError(f"Expected a float32 {name} but got {x.dtype}")
    if not 0 <= fraction_bits <= 23:
        raise ValueError(f"Expected fraction_bits in [0, 23] but got {fraction_bits}")
    if not bool(x.isfinite().all()):
        raise ValueError(f"Expected finite values in {name} but got NaN or inf")
    u = _bits(x)
    n = 23 - fraction_bits  # dropped bits
    if n == 23:
        q = (u + 0x0040_0000) & -0x0080_0000  # & 0xFF800000 as int32
    elif n > 0:
        q = (u | (((u >> (n - 1)) & 1) << n)) & -(1 << n)  # arithmetic >> keeps bit n-1 right
    else:
        q = u
    if bool(((q & 0x7F80_0000) == 0x7F80_0000).any()):
        raise ValueError(f"Expected |{name}| < 1.5 * 2**127 but a value rounds to inf")
    q = torch.where((u & 0x7F80_0000) == 0, 0, q)  # ±0 and subnormals become +0
    return q.view(torch.float32).reshape(x.shape)


def seofp_ste(x: Tensor, fraction_bits: int = 0, name: str = "weight") -> Tensor:
    """Rounded forward, identity backward (``mode: ste``).

    >>> w = torch.tensor([0.3], requires_grad=True); seofp_ste(w).backward(); w.grad
    tensor([1.])
    """
    return x + (seofp_round(x, fraction_bits, name) - x).detach()


def exponents(q: Tensor) -> Tensor:
    """Unbiased exponents of the non-zeros of a float32 tensor, as a 1-D int64 tensor."""
    u = _bits(q).reshape(-1)
    e = (u >> 23) & 0xFF
    return (e[e != 0] - 127).to(torch.int64)


def exponent_max(q: Tensor) -> int | None:
    """Largest unbiased exponent among the non-zeros; None for an all-zero tensor."""
    e = exponents(q)
    return int(e.max()) if e.numel() else None


def window_low(e_max: int, exponent_bits: int) -> int:
    """Lowest exponent of the fixed-width window anchored at ``e_max``
    (docs/method.md#fixed-width-windows)."""
    return max(e_max - ((1 << exponent_bits) - 2), E_NORMAL_MIN)


def fit_window(w: Tensor, q: Tensor, e_max: int | None, exponent_bits: int) -> Tensor:
    """Clamp rounded values ``q = seofp_round(w)`` to the window ``[e_lo, e_max]``.

    Values that would round below the window take the nearest of {0, ±2^e_lo}, ties up, judged
    on the unrounded ``w``: ``|w| >= 2^(e_lo - 1)`` gives ±2^e_lo, smaller gives +0.

    >>> w = torch.tensor([1.0, 0.3, 0.2, 0.12, -0.125]); q = seofp_round(w)
    >>> fit_window(w, q, 0, 2)  # window {2^-2, 2^-1, 2^0}
    tensor([ 1.0000,  0.2500,  0.2500,  0.0000, -0.2500])
    """
    if e_max is None or exponent_bits >= 8:  # 255 codes cover every normal exponent
        return q
    e_lo = window_low(e_max, exponent_bits)
    low = 2.0**e_lo
    below = q.abs() < low
    if not bool(below.any()):
        return q
    up = torch.copysign(torch.full_like(q, low), w)
    return torch.where(below, torch.where(w.abs() >= low / 2, up, torch.zeros_like(q)), q)


def round_to_format(w: Tensor, fmt: SEOFPFormat, e_max: int | None = None,
                    name: str = "weight") -> Tensor:
    """``seofp_round`` then the window of ``fmt`` at ``e_max`` (None: this tensor's own)."""
    q = seofp_round(w, fmt.fraction_bits, name)
    if fmt.exponent_bits < 8:
        q = fit_window(w, q, exponent_max(q) if e_max is None else e_max, fmt.exponent_bits)
    return q


class WindowState:
    """A model-wide e_max shared by the STE parametrizations of a ``global`` group."""

    def __init__(self) -> None:
        self.e_max: int | None = None


class SEOFPParametrization(nn.Module):
    """``torch.nn.utils.parametrize`` fake quantization: forward q(θ), backward identity.

    The optimizer owns the fp32 shadow θ (``parametrizations.<name>.original``). With a shared
    :class:`WindowState` the window is the group's; otherwise the tensor's own e_max.
    """

    def __init__(self, fmt: SEOFPFormat, name: str, state: WindowState | None = None) -> None:
        super().__init__()
        self.fmt, self.tensor_name, self.state = fmt, name, state

    def forward(self, theta: Tensor) -> Tensor:
        e_max = self.state.e_max if self.state is not None else None
        q = round_to_format(theta, self.fmt, e_max, self.tensor_name)
        return theta + (q - theta).detach()
