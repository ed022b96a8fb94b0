"""Which values a model stores, which are quantized, and exponent-range reduction
(docs/method.md#exponent-range-reduction).

A model's stored values are its parameters plus batch-norm running statistics (as the papers
count them); other buffers (feature normalization, ``num_batches_tracked``, the single-bias LSTM's
zero ``bias_hh``) are not stored values. ``quantize="weights"`` rounds tensors with ``dim >= 2``;
``"all"`` rounds every stored value. Groups: the whole quantized set (``global``, the paper) or
one per tensor (``per_layer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from seofp_lab.compress import codec
from seofp_lab.compress.seofp import (
    RepresentabilityError,
    SEOFPFormat,
    exponent_max,
    exponents,
    fit_window,
    seofp_round,
)

Quantize = Literal["weights", "all"]
RUNNING_STATS = ("running_mean", "running_var")


@dataclass(frozen=True)
class Stored:
    """One stored tensor: ``module.<attr>`` is its value (parametrized or not)."""

    name: str  # dotted name as in a plain model's state_dict, e.g. "lstm.weight_ih_l0"
    module: nn.Module
    attr: str
    kind: Literal["param", "buffer"]

    @property
    def value(self) -> Tensor:
        """What forward uses: q(θ) under an STE parametrization."""
        return getattr(self.module, self.attr)

    @property
    def raw(self) -> Tensor:
        """The stored leaf: the fp32 shadow θ under a parametrization, else the value itself."""
        if parametrize.is_parametrized(self.module, self.attr):
            return self.module.parametrizations[self.attr].original
        return getattr(self.module, self.attr)


def stored_tensors(model: nn.Module) -> list[Stored]:
    """Every stored value of ``model`` in registration order (parameters, then BN statistics)."""
    out: list[Stored] = []
    for mod_name, module in model.named_modules():
        in_param = ".parametrizations." in f".{mod_name}."
        if in_param or isinstance(module, parametrize.ParametrizationList):
            continue  # the parametrization's own modules; their owner reports the tensor
        prefix = f"{mod_name}." if mod_name else ""
        names = list(module._parameters)  # noqa: SLF001 - local parameters only, in order
        if parametrize.is_parametrized(module):
            names += [n for n in module.parametrizations if n not in names]
        for attr in names:
            if getattr(module, attr, None) is not None:
                out.append(Stored(prefix + attr, module, attr, "param"))
        for attr in RUNNING_STATS:
            if isinstance(module._buffers.get(attr), Tensor):  # noqa: SLF001
                out.append(Stored(prefix + attr, module, attr, "buffer"))
    return out


def quantized_tensors(model: nn.Module, quantize: Quantize = "weights") -> list[Stored]:
    """The stored values a format rounds: weights (``dim >= 2``) or all of them."""
    if quantize not in ("weights", "all"):
        raise ValueError(f"Expected quantize 'weights' or 'all' but got {quantize!r}")
    return [s for s in stored_tensors(model) if quantize == "all" or s.value.dim() >= 2]


def group_e_max(rounded: Mapping[str, Tensor], fmt: SEOFPFormat) -> dict[str, int | None]:
    """e_max of each rounded tensor's group: one for all (``global``) or each tensor's own."""
    own = {k: exponent_max(v) for k, v in rounded.items()}
    if fmt.group == "per_layer":
        return own
    seen = [e for e in own.values() if e is not None]
    return dict.fromkeys(rounded, max(seen) if seen else None)


def _masked(q: Tensor, mask: Tensor | None) -> Tensor:
    return q if mask is None else q.masked_fill(~mask, 0.0)  # +0, never -0


@torch.no_grad()
def apply_seofp_(targets: list[Stored], fmt: SEOFPFormat,
                 masks: Mapping[str, Tensor] | None = None,
                 only: Literal["param", "buffer"] | None = None) -> None:
    """The per-epoch projection of ``mode: paper``: each stored leaf := q(leaf), masked.

    Under an STE parametrization the shadow θ is projected, so q(θ) = θ afterwards. ``only``
    writes one kind (``"buffer"``: BN statistics under STE) while the group's e_max still comes
    from every target.
    """
    masks = masks or {}
    raws = {s.name: _masked(s.raw, masks.get(s.name)) for s in targets}
    rounded = {k: seofp_round(v, fmt.fraction_bits, k) for k, v in raws.items()}
    e_top = group_e_max(rounded, fmt)
    for s in targets:
        if only is not None and s.kind != only:
            continue
        q = rounded[s.name]
        if fmt.exponent_bits < 8:
            q = fit_window(raws[s.name], q, e_top[s.name], fmt.exponent_bits)
        s.raw.copy_(_masked(q, masks.get(s.name)))


@dataclass(frozen=True)
class GroupRange:
    """Exponent window of one group after reduction: bits per value = 1 + length + fraction."""

    e_min: int | None  # None: every value is zero
    e_max: int | None
    length: int  # code bits; 1 for an all-zero group (one code, zero, plus its sign bit)
    count: int  # values in the group


def exponent_ranges(values: Mapping[str, Tensor], fmt: SEOFPFormat) -> dict[str, GroupRange]:
    """Each tensor's group range (``global``: the same for all, counted over all)."""
    per = {}
    for k, v in values.items():
        e = exponents(v)
        per[k] = (int(e.min()), int(e.max())) if e.numel() else None
    if fmt.group == "global":
        seen = [r for r in per.values() if r is not None]
        lo = min(r[0] for r in seen) if seen else None
        hi = max(r[1] for r in seen) if seen else None
        total = sum(v.numel() for v in values.values())
        length = codec.code_length(lo, hi) if seen else 1
        return {k: GroupRange(lo, hi, length, total) for k in values}
    return {k: GroupRange(r[0] if r else None, r[1] if r else None,
                          codec.code_length(*r) if r else 1, values[k].numel())
            for k, r in per.items()}


@torch.no_grad()
def check_representable(targets: list[Stored], fmt: SEOFPFormat,
                        masks: Mapping[str, Tensor] | None = None) -> dict[str, GroupRange]:
    """Prove every quantized value is ±2^e (fraction bits allowed) or +0 inside the window.

    Returns:
        The reduced exponent range of each tensor's group.

    Raises:
        RepresentabilityError: naming the first tensor that breaks the format.
    """
    masks = masks or {}
    values = {s.name: s.value.detach() for s in targets}
    low_bits = (1 << (23 - fmt.fraction_bits)) - 1
    for name, v in values.items():
        if not bool(v.isfinite().all()):
            raise RepresentabilityError(f"Expected finite values in {name} but got NaN or inf")
        u = v.contiguous().view(torch.int32)
        extra = (u & low_bits) != 0
        if bool(extra.any()):
            raise RepresentabilityError(
                f"Expected {name} to be ±2^e or 0 ({fmt.name}) but {int(extra.sum())} values keep"
                " dropped mantissa bits"
            )
        if bool(((u & 0x7F80_0000) == 0).logical_and(u != 0).any()):
            raise RepresentabilityError(f"Expected {name} to hold +0, never -0 or subnormals")
        mask = masks.get(name)
        if mask is not None and bool((v[~mask] != 0).any()):
            raise RepresentabilityError(f"Expected the pruned values of {name} to be 0")
    ranges = exponent_ranges(values, fmt)
    for name, r in ranges.items():
        if r.length > fmt.exponent_bits:
            raise RepresentabilityError(
                f"Expected the exponents of {name} within {fmt.window} codes ({fmt.name}, "
                f"{fmt.group}) but got [{r.e_min}, {r.e_max}] (len {r.length})"
            )
    return ranges
