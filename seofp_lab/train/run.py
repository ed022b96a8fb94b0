"""``train(cfg)``: where an experiment config becomes objects, a Trainer and an MLflow run."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as L
import torch
import yaml
from torch import nn

from seofp_lab import tracking
from seofp_lab.config import ExperimentConfig
from seofp_lab.data.datamodule import MixtureDataModule
from seofp_lab.data.loaders import load_corpus
from seofp_lab.models import stored_values
from seofp_lab.models.lstm import LSTMEnhancer
from seofp_lab.train.checkpoint import load_checkpoint, make_model, save_checkpoint
from seofp_lab.train.module import EnhanceModule
from seofp_lab.workspace import workspace_path


@dataclass
class TrainResult:
    run_id: str
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)
    minutes: float = 0.0

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items()))
        return (
            f"run {self.run_id} trained in {self.minutes:.1f} min; checkpoint {self.checkpoint}"
            + (f"\n{shown}" if shown else "")
        )


class MlflowCurves(L.Callback):
    """Per-epoch curves (losses, validation SI-SDR) to the active MLflow run."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        keep = {}
        for k, v in trainer.callback_metrics.items():
            if k.endswith("_step"):
                continue
            value = float(v)
            if np.isfinite(value):
                keep[k.removesuffix("_epoch")] = value
        if keep:
            tracking.log_metrics(keep, step=trainer.current_epoch)


def _feature_stats_(model: nn.Module, dm: MixtureDataModule, batches: int = 8) -> None:
    """Per-bin LPS mean/std of training mixtures for spectral models (a no-op for the FCN)."""
    if not isinstance(model, LSTMEnhancer):
        return
    total, sq, n = None, None, 0
    loader = dm.train_dataloader()
    with torch.no_grad():
        for i, (noisy, _clean) in enumerate(loader):
            if i >= batches:
                break
            _, f = model.noisy_lps(noisy)
            f = f.reshape(-1, f.shape[-1]).double()
            total = f.sum(0) if total is None else total + f.sum(0)
            sq = f.square().sum(0) if sq is None else sq + f.square().sum(0)
            n += f.shape[0]
    mean = total / n
    std = (sq / n - mean.square()).clamp_min(1e-6).sqrt()
    model.set_feature_stats(mean.float(), std.float())


def _initial_weights_(model: nn.Module, source: str) -> str | None:
    """Load a baseline into ``model`` from a checkpoint path or a run id; returns the run id."""
    path = Path(source)
    run_id = None
    if not path.is_file():
        run_id = source
        path = tracking.download_artifact(source, tracking.CHECKPOINT_ARTIFACT)
    base, _, _ = load_checkpoint(path)
    model.load_state_dict(base.state_dict())
    return run_id


def budget_text(cfg: ExperimentConfig, steps_per_epoch: int) -> str:
    """The budget a run is given, in the units that reproduce: ``"40 epochs x 32 steps"``."""
    text = f"{cfg.train.max_epochs} epochs x {steps_per_epoch} steps"
    if cfg.train.max_steps is not None:
        text += f", at most {cfg.train.max_steps} steps"
    return text


def _tags(cfg: ExperimentConfig, baseline_run: str | None, fmt: str | None) -> dict[str, str]:
    tags = {
        tracking.TAG_ROLE: cfg.compression.role,
        tracking.TAG_CORPUS: cfg.corpus.name,
        tracking.TAG_MODEL: cfg.model.name,
        tracking.TAG_FORMAT: fmt or "fp32",
        "seofp.config_digest": cfg.digest(),
        **cfg.tracking.tags,
    }
    if baseline_run:
        tags[tracking.TAG_BASELINE] = baseline_run
    if cfg.tracking.control_run:
        tags[tracking.TAG_CONTROL] = cfg.tracking.control_run
    return tags


def _examples(model: nn.Module, dm: MixtureDataModule, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if count <= 0:
        return out
    model.eval()
    with torch.no_grad():
        for noisy, clean in dm.val_dataloader():
            enhanced = model(noisy)
            for j in range(noisy.shape[0]):
                out.append(
                    {
                        "id": f"val{len(out):02d}",
                        "noisy": noisy[j].numpy(),
                        "enhanced": enhanced[j].numpy(),
                        "clean": clean[j].numpy(),
                    }
                )
                if len(out) >= count:
                    return out
    return out


def _check_budget(cfg: ExperimentConfig, trainer: L.Trainer) -> None:
    """Tag and announce a run that the ``max_minutes`` safety cap ended before its budget."""
    done_epochs = trainer.current_epoch >= cfg.train.max_epochs
    done_steps = cfg.train.max_steps is not None and trainer.global_step >= cfg.train.max_steps
    if done_epochs or done_steps or not cfg.train.max_minutes:
        return
    text = (f"max_minutes={cfg.train.max_minutes:g} ended the run after {trainer.current_epoch} of "
            f"{cfg.train.max_epochs} epochs ({trainer.global_step} steps)")
    tracking.set_tags({tracking.TAG_BUDGET_CUT: text})
    from seofp_lab.console import console as make_console  # noqa: PLC0415

    make_console(stderr=True).print(
        f"[yellow]warning: {text}; its numbers are not those of the budgeted run[/yellow]")


def train(cfg: ExperimentConfig, progress: bool = True) -> TrainResult:
    """Train one experiment, tracked as one MLflow run; returns its id and checkpoint."""
    t0 = time.perf_counter()
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    corpus = load_corpus(cfg.corpus)
    c = cfg.corpus
    dm = MixtureDataModule(
        corpus,
        train_snrs=list(c.train_snrs),
        segment_seconds=c.segment_seconds,
        mixtures_per_epoch=c.mixtures_per_epoch,
        valid_mixtures=c.valid_mixtures,
        batch_size=cfg.train.batch_size,
        num_workers=cfg.train.num_workers,
        seed=c.seed,
        train_noises=c.train_noises,
    )
    dm.setup("fit")
    model = make_model(cfg)
    baseline_run = cfg.tracking.baseline_run
    if cfg.compression.init_from:
        baseline_run = _initial_weights_(model, cfg.compression.init_from) or baseline_run
    else:
        _feature_stats_(model, dm)

    plan = None
    comp = cfg.compression
    if comp.format or comp.pruning or comp.weight_sharing:
        from seofp_lab.train.compression import build_compression  # noqa: PLC0415

        plan = build_compression(comp, model, cfg.train.max_epochs)
    fmt = plan.format_name if plan is not None else None

    module = EnhanceModule(
        model, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, loss=cfg.train.loss
    )
    callbacks: list[L.Callback] = [MlflowCurves(), *(plan.callbacks if plan else [])]
    if cfg.train.max_minutes:
        callbacks.append(
            L.callbacks.Timer(dt.timedelta(minutes=cfg.train.max_minutes), interval="epoch")
        )
    run_name = cfg.tracking.run_name or cfg.name
    steps_per_epoch = len(dm.train_dataloader())
    tags = {**_tags(cfg, baseline_run, fmt), tracking.TAG_BUDGET: budget_text(cfg, steps_per_epoch)}
    with tracking.start_run(cfg.tracking.experiment, run_name, tags, cfg.flat_params()) as run_id:
        tracking.log_text(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), tracking.CONFIG_ARTIFACT
        )
        for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available"/tips chatter
        trainer = L.Trainer(
            max_epochs=cfg.train.max_epochs,
            max_steps=cfg.train.max_steps or -1,
            accelerator=cfg.train.accelerator,
            devices=cfg.train.devices,
            strategy=cfg.train.strategy,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=callbacks,
            gradient_clip_val=cfg.train.gradient_clip,
            enable_progress_bar=progress,
            num_sanity_val_steps=0,
            deterministic=False,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # inside Lightning 2.6
            trainer.fit(module, datamodule=dm)
        model.eval()
        _check_budget(cfg, trainer)
        metrics: dict[str, float] = {
            "stored_values": float(stored_values(model)),
            "epochs": float(trainer.current_epoch),
            "steps": float(trainer.global_step),
        }
        if plan is not None:
            metrics.update(plan.finalize(model))
            with tempfile.TemporaryDirectory() as tmp:
                for path in plan.artifacts(model, Path(tmp)):
                    tracking.log_artifact(path, "compression")
        for k in ("val_loss", "val_si_sdr"):
            if k in trainer.callback_metrics:
                metrics[k] = float(trainer.callback_metrics[k])
        minutes = (time.perf_counter() - t0) / 60
        metrics["train_minutes"] = minutes
        tracking.log_metrics(metrics)
        ckpt = save_checkpoint(
            model,
            cfg,
            workspace_path("runs", run_id, "model.pt"),
            extra={"run_id": run_id, "format": fmt},
        )
        tracking.log_artifact(ckpt, str(Path(tracking.CHECKPOINT_ARTIFACT).parent))
        tracking.log_audio_examples(_examples(model, dm, cfg.evaluation.audio_examples))
    return TrainResult(run_id, ckpt, metrics, minutes)
