"""Equal-budget fp32 controls of compressed variants (docs/controls.md).

A compressed variant fine-tuned from a baseline (``compression.init_from``) gets more training than
the baseline did; a difference between the two mixes the cost of compression with the gain of the
extra epochs. Its *control* is the same fine-tuning without compression: the same start
(``init_from``), corpus and data order (``corpus.seed``, ``train.seed``), model and ``train``
section (epochs, steps, learning rate, batch size). The variant's delta against its control is the
cost of compression alone.

Variants that share a fine-tuning recipe share one control: :func:`control_key` hashes only what
the control depends on, and :func:`ensure_control` reuses a finished control run with that key
from the tracking store before training a new one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from seofp_lab import tracking
from seofp_lab.config import CompressionConfig, ConfigError, ExperimentConfig

TAG_CONTROL_KEY = "seofp.control_key"


def needs_control(cfg: ExperimentConfig) -> bool:
    """A compressed variant fine-tuned from a baseline, without a control named yet."""
    c = cfg.compression
    return bool(c.compressed and c.init_from and not cfg.tracking.control_run)


def control_key(cfg: ExperimentConfig) -> str:
    """16 hex digits over what the control depends on: start, corpus, model, train section."""
    data = cfg.model_dump(mode="json")
    blob = {k: data[k] for k in ("corpus", "model", "train")}
    blob["init_from"] = cfg.compression.init_from
    raw = json.dumps(blob, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def control_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The fp32 control of a compressed variant: its config with the compression removed.

    Raises:
        ConfigError: ``cfg`` is not a compressed variant fine-tuned from a baseline.
    """
    comp = cfg.compression
    if not comp.compressed or not comp.init_from:
        raise ConfigError(
            f"{cfg.name}: an equal-budget control needs a compressed variant fine-tuned from a "
            f"baseline (compression.format/pruning and compression.init_from) but got role "
            f"{comp.role!r} with init_from={comp.init_from!r}"
        )
    key = control_key(cfg)
    track = cfg.tracking.model_copy(update={
        "control_run": None,
        "run_name": f"{cfg.name}_control",
        "tags": {**cfg.tracking.tags, TAG_CONTROL_KEY: key},
    })
    data: dict[str, Any] = cfg.model_dump(mode="json")
    data.update(
        name=f"{cfg.name}_control",
        compression=CompressionConfig(init_from=comp.init_from).model_dump(mode="json"),
        tracking=track.model_dump(mode="json"),
    )
    return ExperimentConfig.model_validate(data)


def find_control(cfg: ExperimentConfig) -> str | None:
    """The newest finished control run for ``cfg`` in its experiment, or None.

    A control that the ``max_minutes`` safety cap ended early (tag ``seofp.budget_cut``) did not
    get the variant's budget, so it is never reused: a new one is trained instead."""
    key = control_key(cfg)
    runs = tracking.find_runs(
        cfg.tracking.experiment,
        f"tags.`{TAG_CONTROL_KEY}` = '{key}' and attributes.status = 'FINISHED'",
    )
    whole = [r for r in runs if tracking.TAG_BUDGET_CUT not in r.data.tags]
    return whole[0].info.run_id if whole else None


def with_control(cfg: ExperimentConfig, control_run: str) -> ExperimentConfig:
    """``cfg`` tagged with its control run (``seofp.control_run``)."""
    data = cfg.model_dump(mode="json")
    data["tracking"]["control_run"] = control_run
    return ExperimentConfig.model_validate(data)


def ensure_control(
    cfg: ExperimentConfig, progress: bool = True, evaluate: bool = False
) -> tuple[str, bool]:
    """The control run of ``cfg``: an existing one with the same key, else newly trained.

    Returns:
        (run id, whether it was trained now).
    """
    from seofp_lab.train.run import train  # noqa: PLC0415

    found = find_control(cfg)
    if found is not None:
        return found, False
    result = train(control_config(cfg), progress=progress)
    if evaluate:
        from seofp_lab.evaluate.run import evaluate as run_evaluation  # noqa: PLC0415

        run_evaluation(result.run_id)
    return result.run_id, True


__all__ = ["TAG_CONTROL_KEY", "control_config", "control_key", "ensure_control", "find_control",
           "needs_control", "with_control"]
