"""Lightning callback that runs compression during training: pruning, sharing, SEOFP projection.

Hook order in Lightning 2.x: validation at the end of an epoch runs inside the training epoch loop,
*before* ``on_train_epoch_end``. The projection of ``mode: paper`` therefore runs in
``on_train_batch_end`` of the epoch's last batch (after its optimizer step), and again, if weights
changed since, at ``on_validation_start`` (mid-epoch validation, or a loader whose last batch is
not known in advance), ``on_train_epoch_end`` and ``on_fit_end``. Validation, checkpoints and the
exported model thus always see projected weights, and the next epoch starts from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytorch_lightning as L
import torch
from torch import Tensor, nn

from seofp_lab.compress.pruning import PruningSchedule, apply_masks_, prunable
from seofp_lab.compress.range import Quantize, Stored, apply_seofp_, quantized_tensors
from seofp_lab.compress.range import stored_tensors as all_stored
from seofp_lab.compress.seofp import SEOFPFormat, WindowState
from seofp_lab.compress.sharing import share_weights_
from seofp_lab.compress.ste import update_window_

Mode = Literal["paper", "ste"]


@dataclass
class CompressionState:
    """What a compressed training run carries between hooks: masks, centers, the STE window."""

    model: nn.Module
    fmt: SEOFPFormat | None = None
    mode: Mode = "paper"
    quantize: Quantize = "weights"
    schedule: PruningSchedule | None = None
    clusters: int | None = None
    window: WindowState | None = None
    masks: dict[str, Tensor] = field(default_factory=dict)
    centers: dict[str, Tensor] = field(default_factory=dict)
    projections: int = 0  # how many times project() ran (tests, logs)
    prune_steps: list[tuple[int, float]] = field(default_factory=list)  # (epoch, target)

    def __post_init__(self) -> None:
        self.stored: list[Stored] = all_stored(self.model)
        self.targets: list[Stored] = (quantized_tensors(self.model, self.quantize)
                                      if self.fmt is not None else [])
        self.weights: list[Stored] = prunable(self.model)

    def prune(self, epoch: int) -> bool:
        """Tighten the masks if the schedule has a step at ``epoch``; True if it did."""
        target = self.schedule.target(epoch) if self.schedule is not None else None
        if target is None:
            return False
        self.masks = self.schedule.masks(self.model, target, self.masks)
        self.prune_steps.append((epoch, target))
        self.apply_masks()
        return True

    @torch.no_grad()
    def apply_masks(self) -> None:
        if self.masks:
            apply_masks_(self.stored, self.masks)

    def update_window(self) -> None:
        if self.window is not None:
            update_window_(self.targets, self.window)

    @torch.no_grad()
    def project(self) -> None:
        """Masks, then shared values, then q(·) on the stored leaves (BN statistics under STE)."""
        self.apply_masks()
        if self.clusters is not None:
            self.centers = share_weights_(self.weights, self.clusters, self.masks, self.fmt,
                                          self.centers)
        if self.fmt is not None:
            only = "buffer" if self.mode == "ste" else None
            apply_seofp_(self.targets, self.fmt, self.masks, only=only)
            self.update_window()
        self.apply_masks()
        self.projections += 1


class CompressionCallback(L.Callback):
    """Pruning steps at epoch starts, masks after every step, projection at each epoch's end.

    Its state (masks, shared values, the STE window, the pruning steps taken) goes into the
    trainer's checkpoint, so a resumed run goes on with the same masks and format
    (docs/runs.md#resume). It logs and writes nothing itself: under DDP it runs the same on
    every process, on weights DDP keeps equal, so every rank holds the same masks."""

    def __init__(self, state: CompressionState) -> None:
        super().__init__()
        self.state = state
        self._dirty = False  # weights changed since the last projection

    def state_dict(self) -> dict[str, Any]:
        st = self.state
        return {
            "masks": {k: v.detach().clone().cpu() for k, v in st.masks.items()},
            "centers": {k: v.detach().clone().cpu() for k, v in st.centers.items()},
            "e_max": st.window.e_max if st.window is not None else None,
            "mode": st.mode,
            "projections": st.projections,
            "prune_steps": [[int(e), float(t)] for e, t in st.prune_steps],
            "dirty": self._dirty,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        st = self.state
        if state_dict.get("mode", st.mode) != st.mode:
            raise ValueError(f"Expected a checkpoint of compression mode {st.mode!r} but it "
                             f"was written in mode {state_dict['mode']!r}")
        st.masks, st.centers = dict(state_dict["masks"]), dict(state_dict["centers"])
        if st.window is not None:
            st.window.e_max = state_dict["e_max"]
        st.projections = int(state_dict["projections"])
        st.prune_steps = [(int(e), float(t)) for e, t in state_dict["prune_steps"]]
        self._dirty = bool(state_dict["dirty"])

    def _project_if_dirty(self) -> None:
        if self._dirty:
            self.state.project()
            self._dirty = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Restored masks and centers follow their weights onto the training device."""
        st = self.state
        devices = {s.name: s.raw.device for s in st.stored}
        st.masks = {k: v.to(devices.get(k, v.device)) for k, v in st.masks.items()}
        st.centers = {k: v.to(devices.get(k, v.device)) for k, v in st.centers.items()}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.state.prune(trainer.current_epoch):
            self._dirty = True
        self.state.update_window()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: object, batch_idx: int) -> None:
        self.state.update_window()  # global STE window follows the shadow weights

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: object, batch: object, batch_idx: int) -> None:
        self.state.apply_masks()  # after the optimizer step: pruned values back to +0
        self._dirty = True
        if trainer.is_last_batch:
            self._project_if_dirty()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._project_if_dirty()
        self.state.update_window()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._project_if_dirty()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._project_if_dirty()
