"""A thin LightningModule: any model with ``training_pair``; MSE in the model's domain or
negative SI-SDR of the enhanced waveform; one shared step."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as L
import torch
from torch import Tensor, nn


def si_sdr_torch(estimate: Tensor, reference: Tensor) -> Tensor:
    """Scale-invariant SDR in dB per row of ``(batch, time)``: training loss and validation metric.

    The formula of :func:`seofp_lab.evaluate.metrics.si_sdr` (zero-mean, docs/method.md#si-sdr) in
    torch, differentiable; ``tests/test_metrics.py`` checks that the two agree.
    """
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / ref.square().sum(-1, keepdim=True).clamp_min(1e-10)
    target = alpha * ref
    noise = est - target
    return 10 * torch.log10(target.square().sum(-1).clamp_min(1e-10)
                            / noise.square().sum(-1).clamp_min(1e-10))


class EnhanceModule(L.LightningModule):
    """Trains the baseline and both SEOFP modes; projection and pruning are callbacks."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                 loss: Literal["mse", "si_sdr"] = "mse") -> None:
        super().__init__()
        if loss not in ("mse", "si_sdr"):
            raise ValueError(f"Expected loss 'mse' or 'si_sdr' but got {loss!r}")
        self.model, self.lr, self.weight_decay, self.loss_name = model, lr, weight_decay, loss
        self.mse = nn.MSELoss()

    def forward(self, noisy: Tensor) -> Tensor:
        return self.model(noisy)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        noisy, clean = batch  # (batch, time) each
        if self.loss_name == "si_sdr":
            enhanced = self.model(noisy)
            loss = -si_sdr_torch(enhanced, clean).mean()
        else:
            loss = self.mse(*self.model.training_pair(noisy, clean))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Expected a finite {stage} loss but got {loss.item()}")
        # sync_dist: with DDP every value is the mean over all processes' mixtures, the same on
        # every rank (docs/runs.md#several-processes-ddp); a single process is left as it is
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True,
                 batch_size=noisy.shape[0], sync_dist=True)
        if stage == "val":
            enhanced = enhanced if self.loss_name == "si_sdr" else self.model(noisy)
            sdr = si_sdr_torch(enhanced, clean).mean()
            self.log("val_si_sdr", sdr, prog_bar=True, batch_size=noisy.shape[0],
                     sync_dist=True)
            # the divergence guard's reference: the input itself, scored the same way
            self.log("val_noisy_si_sdr", si_sdr_torch(noisy, clean).mean(),
                     batch_size=noisy.shape[0], sync_dist=True)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
