"""``train(cfg)``: where an experiment config becomes objects, a Trainer and an MLflow run."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
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
from seofp_lab.config import ConfigError, ExperimentConfig
from seofp_lab.data.datamodule import MixtureDataModule
from seofp_lab.data.loaders import load_corpus
from seofp_lab.errors import SeofpError
from seofp_lab.fsutil import atomic_path
from seofp_lab.models import stored_values
from seofp_lab.models.lstm import LSTMEnhancer
from seofp_lab.signals import raise_pending
from seofp_lab.train.checkpoint import load_checkpoint, make_model, save_checkpoint
from seofp_lab.train.module import EnhanceModule
from seofp_lab.workspace import workspace_path


class TrainingDiverged(SeofpError):
    """The loss went NaN or infinite: the run stops (FAILED, tagged ``seofp.diverged``) and keeps
    the checkpoint of its last good epoch."""


@dataclass
class TrainResult:
    run_id: str
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)
    minutes: float = 0.0
    diverged: str | None = None  # why the divergence guard flagged the run (docs/runs.md)
    rank: int = 0  # a DDP process of global rank > 0 logged and wrote nothing (docs/runs.md)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items()))
        return (
            f"run {self.run_id} trained in {self.minutes:.1f} min; checkpoint {self.checkpoint}"
            + (f"\nDIVERGED: {self.diverged}" if self.diverged else "")
            + (f"\n{shown}" if shown else "")
        )


LAST_CHECKPOINT = "last.ckpt"  # <workspace>/runs/<run id>/last.ckpt: the full trainer state
# Set by global rank zero of a DDP training before ``trainer.fit``: the processes Lightning
# launches for the other ranks inherit it and join that run (docs/runs.md#several-processes-ddp)
ENV_DDP_RUN = "SEOFP_DDP_RUN"


def run_dir(run_id: str) -> Path:
    """Where a run keeps its local files (checkpoints) in the workspace."""
    return workspace_path("runs", run_id, LAST_CHECKPOINT).parent


class EpochCheckpoint(L.Callback):
    """After every epoch whose losses are finite, the whole trainer state (weights, optimizer,
    epoch, callbacks) replaces ``last.ckpt`` atomically: a kill at any moment leaves the last
    good epoch's file, never a partial one (docs/runs.md#checkpoints)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the losses are synchronized over DDP processes, so every rank decides the same way
        losses = [float(v) for k, v in trainer.callback_metrics.items() if "loss" in k]
        if not all(np.isfinite(losses)):
            return  # keep the last good epoch
        if not trainer.is_global_zero:  # a collective call: the strategy writes on rank 0 only
            trainer.save_checkpoint(self.path, weights_only=False)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)  # resume needs the optimizer


class PendingSignal(L.Callback):
    """After every batch, raise a handled SIGINT/SIGTERM whose exception Python swallowed (it
    arrived inside a weakref callback or a ``__del__``; seofp_lab.signals.raise_pending), so
    Ctrl-C always stops the training and marks its run KILLED."""

    def on_train_batch_end(self, *args: object) -> None:
        raise_pending()

    def on_validation_batch_end(self, *args: object) -> None:
        raise_pending()


class JoinRun(L.Callback):
    """A DDP training's run id on every process: global rank zero's, broadcast when the
    processes are connected. The environment variable :data:`ENV_DDP_RUN` already gives it to
    the processes Lightning launches; the broadcast also covers processes started by another
    tool (``torchrun``, ``srun``) and a second training in the same command."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            self.run_id = trainer.strategy.broadcast(self.run_id, src=0)


class SameWeights(L.Callback):
    """DDP only: at the end of fitting, every process must hold rank zero's weights, buffers
    and compression masks (the callbacks run the same on every rank and DDP averages the
    gradients); a process that drifted would have trained another model silently. Each rank
    compares a digest of its state with rank zero's; rank zero raises if any differs."""

    @staticmethod
    def _digest(pl_module: L.LightningModule) -> str:
        import hashlib  # noqa: PLC0415

        h = hashlib.sha256()
        for k, v in sorted(pl_module.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        mine = self._digest(pl_module)
        same = trainer.strategy.reduce_boolean_decision(
            mine == trainer.strategy.broadcast(mine, src=0), all=True)
        if not same and trainer.is_global_zero:
            raise SeofpError("Expected every DDP process to end with the same weights but at "
                             "least one differs from rank zero's; this run's numbers are not "
                             "those of one model (docs/runs.md#several-processes-ddp)")


class MlflowCurves(L.Callback):
    """Per-epoch curves (losses, validation SI-SDR) to the active MLflow run."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
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
    """Load a baseline into ``model`` from a checkpoint path or a run id (or a unique prefix of
    one, as reports print them); returns the full run id."""
    path = Path(source)
    run_id = None
    if not path.is_file():
        run_id = tracking.resolve_run_id(source)  # an id, a prefix, or models:/NAME@ALIAS
        path = tracking.download_artifact(run_id, tracking.CHECKPOINT_ARTIFACT)
    base, _, _ = load_checkpoint(path)
    model.load_state_dict(base.state_dict())
    return run_id


def budget_text(cfg: ExperimentConfig, steps_per_epoch: int, world_size: int = 1) -> str:
    """The budget a run is given, in the units that reproduce: ``"40 epochs x 32 steps"``, and
    for DDP the processes, each with its own batch: ``"..., DDP 2 processes x batch 4"``."""
    text = f"{cfg.train.max_epochs} epochs x {steps_per_epoch} steps"
    if world_size > 1:
        text += f", DDP {world_size} processes x batch {cfg.train.batch_size}"
    if cfg.train.max_steps is not None:
        text += f", at most {cfg.train.max_steps} steps"
    return text


def shard_training_data(dm: MixtureDataModule, trainer: L.Trainer) -> None:
    """Give each DDP process its share of every epoch's mixtures, in order: process ``r`` of
    ``n`` takes mixtures ``r, r + n, r + 2n, ...`` (Lightning's ``DistributedSamplerWrapper``,
    not shuffled). Step ``k`` of the ``n`` processes together then trains on the mixtures of
    step ``k`` of one process with an ``n`` times larger batch, so a DDP run is that run up to
    rounding (docs/runs.md#several-processes-ddp). Lightning's own sampler would shuffle the
    order, which adds nothing here: each mixture is drawn afresh from (seed, epoch, index).
    When the processes do not divide the mixtures, the first few are repeated to even them."""
    from lightning_fabric.utilities.distributed import DistributedSamplerWrapper  # noqa: PLC0415

    dm.sampler = DistributedSamplerWrapper(dm.sampler, num_replicas=trainer.world_size,
                                           rank=trainer.global_rank, shuffle=False)


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


def divergence(metrics: dict[str, float]) -> str | None:
    """Why a finished run counts as diverged, or None: its validation SI-SDR ended below the
    noisy input's (the model makes speech worse than doing nothing)."""
    sdr, noisy = metrics.get("val_si_sdr"), metrics.get("val_noisy_si_sdr")
    if sdr is None or noisy is None:
        return None
    if not np.isfinite(sdr) or sdr < noisy:
        return (f"validation SI-SDR {sdr:.2f} dB ended below the noisy input's {noisy:.2f} dB")
    return None


def check_machine(cfg: ExperimentConfig) -> None:
    """ConfigError naming the field when this machine cannot run ``cfg.train`` (a GPU it does
    not have, a strategy Lightning does not know); called first, before data or runs exist."""
    t = cfg.train
    if t.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("Invalid config: train.accelerator: 'gpu' but this machine has no "
                          "usable CUDA GPU; expected 'cpu' or 'auto' here")
    if t.accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("Invalid config: train.accelerator: 'mps' but this machine has no "
                          "Apple GPU; expected 'cpu' or 'auto' here")
    from pytorch_lightning.strategies import StrategyRegistry  # noqa: PLC0415

    known = ["auto", *StrategyRegistry.available_strategies()]
    if t.strategy not in known:
        raise ConfigError(f"Invalid config: train.strategy: {t.strategy!r} is not a Lightning "
                          f"strategy; expected one of {', '.join(known)}")
    if t.strategy != "auto" and StrategyRegistry[t.strategy]["init_params"].get(
            "start_method") in ("spawn", "fork", "forkserver"):
        raise _worker_processes(t.strategy)


def _worker_processes(strategy: str) -> ConfigError:
    return ConfigError(
        f"Invalid config: train.strategy: {strategy!r} trains in worker processes that this "
        "run's MLflow logging does not reach; expected 'ddp' (Lightning starts the command once "
        "more for each other process; docs/runs.md#several-processes-ddp)")


def _trainer(cfg: ExperimentConfig, callbacks: list[L.Callback], progress: bool) -> L.Trainer:
    """The Trainer, built before any MLflow run exists: what Lightning still refuses is a
    ConfigError naming the fields, and leaves no FAILED run behind."""
    t = cfg.train
    try:
        trainer = L.Trainer(
            max_epochs=t.max_epochs,
            max_steps=t.max_steps or -1,
            accelerator=t.accelerator,
            devices=t.devices,
            strategy=t.strategy,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=callbacks,
            gradient_clip_val=t.gradient_clip,
            enable_progress_bar=progress,
            num_sanity_val_steps=0,
            deterministic=False,
        )
    except Exception as exc:  # MisconfigurationException and ValueError from Lightning
        raise ConfigError(
            f"Invalid config: train.accelerator={t.accelerator!r}, train.devices={t.devices!r}, "
            f"train.strategy={t.strategy!r}: Lightning refused them on this machine ({exc})"
        ) from None
    from pytorch_lightning.strategies.launchers import _SubprocessScriptLauncher  # noqa: PLC0415

    if not isinstance(trainer.strategy.launcher, (_SubprocessScriptLauncher, type(None))):
        raise _worker_processes(t.strategy)  # what check_machine could not tell by name
    return trainer


def _process_gone(run: Any) -> bool | None:
    """Whether the process that opened ``run`` has ended (None: another host, or not said)."""

    alive = tracking.process_alive(run)
    return None if alive is None else not alive


def run_state(run_id: str) -> str:
    """One line on where a training run stands (``seofp train --state``): its status, and for a
    RUNNING run whether the process that holds it still lives (docs/runs.md#statuses)."""
    run = tracking.get_run(tracking.resolve_run_id(run_id))
    rid, tags, status = run.info.run_id, run.data.tags, run.info.status
    pid, host = tags.get(tracking.TAG_PID, "?"), tags.get(tracking.TAG_HOST, "?")
    ckpt = run_dir(rid) / LAST_CHECKPOINT
    epoch = None
    if ckpt.is_file():
        epoch = torch.load(ckpt, map_location="cpu", weights_only=False).get("epoch", 0) + 1
    kept = f"last.ckpt after epoch {epoch}" if epoch else "no epoch checkpoint here"
    text = f"run {rid} ({run.info.run_name}): {status}"
    if status == "RUNNING":
        gone = _process_gone(run)
        if gone:
            return (f"{text}, but its process {pid} on {host} is gone (killed without a chance "
                    f"to say so); {kept}. Continue it with `seofp train --resume {rid[:8]}` or "
                    f"close it as KILLED with `seofp train --abandon {rid[:8]}`")
        where = "still runs" if gone is False else "runs on another host, or did not say"
        return f"{text}; its process {pid} on {host} {where}; {kept}"
    if status in ("KILLED", "FAILED") and epoch:
        return f"{text}; {kept}: `seofp train --resume {rid[:8]}` continues it"
    return text


def abandon_run(run_id: str) -> str:
    """Close a RUNNING run whose process is gone as KILLED (``seofp train --abandon``), with
    the tag ``seofp.killed_reason``; returns its full id.

    Raises:
        SeofpError: the run is not RUNNING, or its process still runs or is on another host.
    """
    rid = tracking.resolve_run_id(run_id)
    run = tracking.get_run(rid)
    if run.info.status != "RUNNING":
        raise SeofpError(f"Expected a RUNNING run to abandon but run {rid} is "
                         f"{run.info.status}")
    pid, host = run.data.tags.get(tracking.TAG_PID), run.data.tags.get(tracking.TAG_HOST)
    gone = _process_gone(run)
    if not gone:
        why = "still runs: stop it first" if gone is False else (
            "ran on another host (or did not say which): close it there")
        raise SeofpError(f"Cannot abandon run {rid}: its process {pid} on {host} {why}")
    c = tracking.client()
    c.set_tag(rid, "seofp.killed_reason", f"process {pid} on {host} ended without finishing "
              "the run; closed by seofp train --abandon")
    c.set_terminated(rid, "KILLED")
    return rid


def resume_training(run_id: str, progress: bool = True) -> TrainResult:
    """Continue a killed or failed training into the same MLflow run from its ``last.ckpt``
    (weights, optimizer, epoch, compression state; the data order follows from the seed and
    the epoch).

    Raises:
        SeofpError: the run finished already, its process still runs, it has no checkpoint in
            this workspace, or its checkpoint lacks the compression state of a compressed run.
    """
    run_id = tracking.resolve_run_id(run_id)
    run = tracking.get_run(run_id)
    if run.info.status == "FINISHED":
        raise SeofpError(f"Expected an unfinished run to resume but run {run_id} is FINISHED")
    from lightning_fabric.utilities.rank_zero import _get_rank  # noqa: PLC0415

    # a DDP process of rank > 0 (launched by rank zero, which holds the run, or by torchrun)
    joining = os.environ.get(ENV_DDP_RUN) == run_id or (_get_rank() or 0) > 0
    if run.info.status == "RUNNING" and not joining and _process_gone(run) is False:
        raise SeofpError(f"Cannot resume run {run_id}: it is RUNNING and its process "
                         f"{run.data.tags.get(tracking.TAG_PID)} still runs; stop it first")
    ckpt = run_dir(run_id) / LAST_CHECKPOINT
    if not ckpt.is_file():
        raise SeofpError(f"Expected the checkpoint of a completed epoch at {ckpt} but there is "
                         f"none: run {run_id} ended before its first epoch, or ran in another "
                         "workspace")
    cfg = ExperimentConfig.model_validate(tracking.run_config_dict(run_id))
    if cfg.compression.compressed:
        from seofp_lab.train.callbacks import CompressionCallback  # noqa: PLC0415

        saved = torch.load(ckpt, map_location="cpu", weights_only=False).get("callbacks", {})
        if CompressionCallback.__qualname__ not in saved:
            raise SeofpError(f"Cannot resume run {run_id}: {ckpt} has no compression state "
                             "(pruning masks, shared values, exponent window); it was written "
                             "by an older seofp-lab; train the run again")
    return train(cfg, progress, resume=run_id)


def _fit(trainer: L.Trainer, module: EnhanceModule, dm: MixtureDataModule,
         ckpt_path: str | None) -> None:
    """``trainer.fit``; when it stops on an error or a signal, the processes it launched for
    the other DDP ranks are ended too: they own nothing, and would otherwise wait for rank zero
    in their next collective or die of a broken connection with a traceback."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # inside Lightning 2.6
            trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    except BaseException:
        from pytorch_lightning.strategies.launchers import (  # noqa: PLC0415
            _SubprocessScriptLauncher,
        )

        launcher = trainer.strategy.launcher
        if isinstance(launcher, _SubprocessScriptLauncher) and launcher.procs:
            launcher.kill(signal.SIGKILL)
        raise


def _train_other_rank(trainer: L.Trainer, module: EnhanceModule, dm: MixtureDataModule,
                      checkpointer: EpochCheckpoint, joiner: JoinRun, resume: str | None,
                      t0: float) -> TrainResult:
    """A DDP process of global rank > 0: it trains in step with rank zero (gradients averaged,
    the same compression callbacks) and joins rank zero's run without touching it: no run
    opened, no status, no metric, no file (docs/runs.md#several-processes-ddp)."""
    ckpt_path = str(run_dir(resume) / LAST_CHECKPOINT) if resume else None
    try:
        _fit(trainer, module, dm, ckpt_path)
    except FloatingPointError as exc:
        raise TrainingDiverged(f"DDP process of rank {trainer.global_rank} of run "
                               f"{joiner.run_id}: {exc} in epoch {trainer.current_epoch}") from None
    run_id = joiner.run_id or ""
    return TrainResult(run_id, checkpointer.path, minutes=(time.perf_counter() - t0) / 60,
                       rank=trainer.global_rank)


def train(cfg: ExperimentConfig, progress: bool = True, resume: str | None = None) -> TrainResult:
    """Train one experiment, tracked as one MLflow run; returns its id and checkpoint.

    ``resume``: the id of this config's unfinished run, continued from its ``last.ckpt``
    (use :func:`resume_training`)."""
    check_machine(cfg)
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
    from seofp_lab.naming import run_name as display_name  # noqa: PLC0415

    run_name = display_name(cfg, fmt)  # role, format, corpus, then the config's own name
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available"/tips chatter
    checkpointer = EpochCheckpoint(Path())  # its path once the run id is known
    joiner = JoinRun(resume or os.environ.get(ENV_DDP_RUN))
    trainer = _trainer(cfg, [*callbacks, checkpointer, joiner, SameWeights(), PendingSignal()],
                       progress)
    zero, world = trainer.is_global_zero, trainer.world_size
    if world > 1 and os.environ.get(tracking.ENV_PARENT_RUN):
        raise ConfigError(f"Invalid config: train.devices={cfg.train.devices!r} with "
                          f"train.strategy={cfg.train.strategy!r}: a sweep point trains in one "
                          "process; train with several processes (DDP) through `seofp train` "
                          "(docs/runs.md#several-processes-ddp)")
    if world > 1:
        shard_training_data(dm, trainer)
    steps = len(dm.train_dataloader())  # optimizer steps per epoch, on every process
    tags = {**_tags(cfg, baseline_run, fmt), tracking.TAG_BUDGET: budget_text(cfg, steps, world)}
    if world > 1 and cfg.train.threads:  # else Lightning sets its own count when it launches
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.train.threads))
    if not zero:  # DDP rank > 0: the same training, no run of its own, no files, no logging
        return _train_other_rank(trainer, module, dm, checkpointer, joiner, resume, t0)
    opened = (tracking.continue_run(resume) if resume else
              tracking.start_run(cfg.tracking.experiment, run_name, tags, cfg.flat_params()))
    with opened as run_id:
        checkpointer.path = run_dir(run_id) / LAST_CHECKPOINT
        joiner.run_id = run_id
        ckpt_path = None
        if resume:
            ckpt_path = str(checkpointer.path)
            done = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("epoch", 0)
            tracking.set_tags({tracking.TAG_RESUMED: f"after epoch {done + 1} of "
                               f"{cfg.train.max_epochs}"})
        else:
            tracking.log_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
                              tracking.CONFIG_ARTIFACT)
            from seofp_lab.datasets import log_training_input  # noqa: PLC0415

            log_training_input(cfg.corpus, corpus)  # the UI's Datasets column (docs/mlflow.md)
        if world > 1:  # the processes trainer.fit launches inherit it (they join this run)
            os.environ[ENV_DDP_RUN] = run_id
        try:
            _fit(trainer, module, dm, ckpt_path)
        except FloatingPointError as exc:  # EnhanceModule refuses a NaN/inf loss
            kept = checkpointer.path if checkpointer.path.is_file() else None
            text = (f"{exc} in epoch {trainer.current_epoch}; the run stopped"
                    + (f", the last good epoch's checkpoint is {kept}" if kept else ""))
            tracking.set_tags({tracking.TAG_DIVERGED: text})
            raise TrainingDiverged(f"run {run_id} diverged: {text}") from None
        finally:
            if world > 1:
                os.environ.pop(ENV_DDP_RUN, None)
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
        minutes = (time.perf_counter() - t0) / 60
        metrics["train_minutes"] = minutes
        tracking.log_metrics(metrics)  # the val_* curves already end at the last epoch's values
        for k in ("val_loss", "val_si_sdr", "val_noisy_si_sdr"):
            if k in trainer.callback_metrics:
                metrics[k] = float(trainer.callback_metrics[k])
        diverged = divergence(metrics)
        if diverged:
            tracking.set_tags({tracking.TAG_DIVERGED: diverged})
            from seofp_lab.console import console as make_console  # noqa: PLC0415

            make_console(stderr=True).print(f"[bold red]run {run_id} DIVERGED: {diverged}; "
                                            "tagged seofp.diverged[/bold red]")
        ckpt = save_checkpoint(
            model,
            cfg,
            workspace_path("runs", run_id, "model.pt"),
            extra={"run_id": run_id, "format": fmt},
        )
        tracking.log_artifact(ckpt, str(Path(tracking.CHECKPOINT_ARTIFACT).parent))
        tracking.log_audio_examples(_examples(model, dm, cfg.evaluation.audio_examples))
    return TrainResult(run_id, ckpt, metrics, minutes, diverged)
