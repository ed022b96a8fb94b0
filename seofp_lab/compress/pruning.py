"""Pruning masks: unstructured magnitude and structured channel/unit pruning, and their schedule.

Masks are bool tensors (True = kept) keyed by the stored tensor's name (``range.Stored.name``).
They are applied before quantization and re-applied after every optimizer step and every
projection, so pruned values stay exactly +0 (q(0) = 0). Masks only grow sparser: values already
pruned score lowest, so a later, higher target keeps them pruned.

Units for channel pruning: output channels of Conv/Linear layers (a weight row and its bias), and
hidden units of LSTM layers (rows j, H+j, 2H+j, 3H+j of every gate tensor of one layer and
direction; a unit whose four gate rows are zero has c = h = 0 forever). The model's last such
layer (its output) is never channel-pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seofp_lab.compress.range import Stored, stored_tensors

Scope = Literal["global", "per_layer"]
Schedule = Literal["one_shot", "gradual"]
Kind = Literal["magnitude", "channel"]


def prunable(model: nn.Module) -> list[Stored]:
    """Tensors that magnitude pruning may zero: weights with ``dim >= 2``."""
    return [s for s in stored_tensors(model) if s.kind == "param" and s.value.dim() >= 2]


def _select_lowest(score: Tensor, k: int) -> Tensor:
    """Bool mask keeping all but the ``k`` lowest scores (exact count, ties broken by index)."""
    keep = torch.ones(score.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.topk(score.reshape(-1), k, largest=False, sorted=False).indices] = False
    return keep


@torch.no_grad()
def magnitude_masks(targets: list[Stored], sparsity: float, scope: Scope = "per_layer",
                    masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Zero the ``round(sparsity * n)`` smallest |w|, per tensor or over all ``targets``.

    Args:
        targets: the prunable tensors.
        sparsity: fraction to prune, in [0, 1).
        scope: one threshold per tensor, or one for all.
        masks: earlier masks; their pruned values stay pruned.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"Expected sparsity in [0, 1) but got {sparsity}")
    masks = masks or {}
    scores = {}
    for s in targets:
        sc = s.raw.detach().abs().float().clone()
        old = masks.get(s.name)
        if old is not None:
            sc[~old] = -1.0  # already pruned: first to go again
        scores[s.name] = sc
    out: dict[str, Tensor] = {}
    if scope == "global":
        flat = torch.cat([sc.reshape(-1) for sc in scores.values()]) if scores else torch.ones(0)
        keep = _select_lowest(flat, round(sparsity * flat.numel()))
        start = 0
        for name, sc in scores.items():
            out[name] = keep[start : start + sc.numel()].reshape(sc.shape)
            start += sc.numel()
    elif scope == "per_layer":
        for name, sc in scores.items():
            out[name] = _select_lowest(sc, round(sparsity * sc.numel())).reshape(sc.shape)
    else:
        raise ValueError(f"Expected scope 'global' or 'per_layer' but got {scope!r}")
    return {k: v & masks[k] if k in masks else v for k, v in out.items()}


@dataclass(frozen=True)
class UnitLayer:
    """A layer of prunable units: each unit owns ``rows(unit)`` of every tensor in ``tensors``."""

    name: str
    tensors: tuple[Stored, ...]
    units: int
    gates: int  # 1 for Conv/Linear, 4 for LSTM (rows j + g * units)

    def rows(self, unit: int) -> list[int]:
        return [unit + g * self.units for g in range(self.gates)]


def unit_layers(model: nn.Module) -> list[UnitLayer]:
    """Conv/Linear output channels and LSTM hidden units, in registration order, minus the last."""
    by_module: dict[int, dict[str, Stored]] = {}
    for s in stored_tensors(model):
        if s.kind == "param":
            by_module.setdefault(id(s.module), {})[s.attr] = s
    layers: list[UnitLayer] = []
    for mod_name, m in model.named_modules():
        own = by_module.get(id(m), {})
        if isinstance(m, nn.LSTM):
            if m.proj_size:
                raise ValueError(f"Expected an LSTM without proj_size in {mod_name}")
            for names in m._all_weights:  # noqa: SLF001 - per layer and direction, in order
                ts = tuple(own[n] for n in names if n in own)
                sfx = names[0].removeprefix("weight_ih")
                layers.append(UnitLayer(f"{mod_name}{sfx}", ts, m.hidden_size, 4))
        elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and "weight" in own:
            ts = tuple(own[n] for n in ("weight", "bias") if n in own)
            layers.append(UnitLayer(mod_name, ts, own["weight"].value.shape[0], 1))
        elif isinstance(m, (nn.GRU, nn.RNN)):
            raise ValueError(f"Expected Conv, Linear or LSTM layers but {mod_name} is {type(m)}")
    return layers[:-1]  # the output layer keeps all its units


@torch.no_grad()
def channel_masks(model: nn.Module, sparsity: float,
                  masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Prune ``floor(sparsity * units)`` units of every unit layer with the smallest L2 norm."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"Expected sparsity in [0, 1) but got {sparsity}")
    masks = masks or {}
    out: dict[str, Tensor] = {}
    for layer in unit_layers(model):
        weights = [s for s in layer.tensors if s.value.dim() >= 2]
        score = torch.zeros(layer.units)
        dead = torch.ones(layer.units, dtype=torch.bool)
        for s in weights:
            w = s.raw.detach().float().reshape(layer.gates, layer.units, -1)
            score += w.square().sum(dim=(0, 2))
            old = masks.get(s.name)
            if old is not None:
                dead &= ~old.reshape(layer.gates, layer.units, -1).any(dim=2).any(dim=0)
            else:
                dead[:] = False
        score[dead] = -1.0  # already pruned units go first
        keep_unit = _select_lowest(score, int(sparsity * layer.units))
        for s in layer.tensors:
            mask = keep_unit.repeat(layer.gates)  # rows in gate-major order
            shape = (-1,) + (1,) * (s.value.dim() - 1)
            out[s.name] = mask.reshape(shape).expand_as(s.value).clone()
            if s.name in masks:
                out[s.name] &= masks[s.name]
    return out


@torch.no_grad()
def apply_masks_(targets: list[Stored], masks: Mapping[str, Tensor]) -> None:
    """Zero the pruned values of each stored leaf (the shadow θ under STE): +0, never -0."""
    for s in targets:
        mask = masks.get(s.name)
        if mask is not None:
            s.raw.masked_fill_(~mask, 0.0)


def cubic_sparsity(epoch: int, final: float, start: int, end: int) -> float:
    """Zhu & Gupta (2017): s = final * (1 - (1 - t)^3), t = (epoch - start + 1) / (end - start + 1).

    The first step is at ``start`` and the target is reached at ``end``.

    >>> [round(cubic_sparsity(e, 0.5, 0, 3), 4) for e in range(5)]
    [0.2891, 0.4375, 0.4922, 0.5, 0.5]
    """
    if epoch < start:
        return 0.0
    t = min(1.0, (epoch - start + 1) / (end - start + 1))
    return final * (1.0 - (1.0 - t) ** 3)


@dataclass(frozen=True)
class PruningSchedule:
    """When and how much to prune; ``target(epoch)`` is None at epochs without a pruning step."""

    kind: Kind = "magnitude"
    sparsity: float = 0.5
    schedule: Schedule = "gradual"
    start_epoch: int = 0
    end_epoch: int = 0
    scope: Scope = "per_layer"

    def __post_init__(self) -> None:
        if not 0 <= self.start_epoch <= self.end_epoch:
            raise ValueError(
                f"Expected 0 <= start_epoch <= end_epoch but got {self.start_epoch}, "
                f"{self.end_epoch}"
            )

    def target(self, epoch: int) -> float | None:
        if self.schedule == "one_shot":
            return self.sparsity if epoch == self.start_epoch else None
        if self.start_epoch <= epoch <= self.end_epoch:
            return cubic_sparsity(epoch, self.sparsity, self.start_epoch, self.end_epoch)
        return None

    def masks(self, model: nn.Module, sparsity: float,
              masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """New masks at ``sparsity`` for this schedule's kind, keeping ``masks``' pruned values."""
        if self.kind == "channel":
            return channel_masks(model, sparsity, masks)
        return magnitude_masks(prunable(model), sparsity, self.scope, masks)
