"""``mode: ste``: attach and remove straight-through fake quantization on a model's tensors.

Parameters get a ``torch.nn.utils.parametrize`` parametrization (fp32 shadow θ owned by the
optimizer, forward q(θ)); batch-norm running statistics are buffers, so they are projected in
place instead (by the training callback at each epoch end and at the end).
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from seofp_lab.compress.range import Stored
from seofp_lab.compress.seofp import (
    SEOFPFormat,
    SEOFPParametrization,
    WindowState,
    exponent_max,
    seofp_round,
)


def attach_ste_(targets: list[Stored], fmt: SEOFPFormat) -> WindowState | None:
    """Parametrize every quantized parameter; returns the shared window of a ``global`` group.

    >>> from torch import nn
    >>> from seofp_lab.compress.range import quantized_tensors
    >>> lin = nn.Linear(3, 2); _ = attach_ste_(quantized_tensors(lin), SEOFPFormat())
    >>> bool((lin.weight.abs().log2() % 1 == 0).all()), lin.weight.requires_grad
    (True, True)
    """
    state = WindowState() if fmt.group == "global" else None
    for s in targets:
        if s.kind != "param" or parametrize.is_parametrized(s.module, s.attr):
            continue
        parametrize.register_parametrization(
            s.module, s.attr, SEOFPParametrization(fmt, s.name, state), unsafe=True
        )
    if state is not None:
        update_window_(targets, state)
    return state


@torch.no_grad()
def update_window_(targets: list[Stored], state: WindowState) -> None:
    """Set the shared e_max from the current shadow weights (rounding is monotone in |w|)."""
    tops = [exponent_max(seofp_round(s.raw.abs().amax().reshape(1), name=s.name))
            for s in targets if s.raw.numel()]
    seen = [e for e in tops if e is not None]
    state.e_max = max(seen) if seen else None


def remove_ste_(targets: list[Stored]) -> None:
    """Replace each parametrized parameter by its q(θ): a plain model with rounded weights."""
    for s in targets:
        if parametrize.is_parametrized(s.module, s.attr):
            parametrize.remove_parametrizations(s.module, s.attr, leave_parametrized=True)


def is_ste(targets: list[Stored]) -> bool:
    """Whether any target is still parametrized."""
    return any(parametrize.is_parametrized(s.module, s.attr) for s in targets)
