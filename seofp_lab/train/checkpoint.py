"""Model checkpoints: the model's plain state_dict plus the config that built it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from seofp_lab.config import ExperimentConfig
from seofp_lab.errors import SeofpError
from seofp_lab.fsutil import atomic_path
from seofp_lab.models import build_model


def model_params(cfg: ExperimentConfig) -> tuple[str, dict[str, Any]]:
    """(registry name, constructor keyword arguments) of an experiment's model."""
    m = cfg.model.model_dump()
    name = m.pop("name")
    stft = m.pop("stft", None)
    if stft is not None:
        m.update(n_fft=stft["n_fft"], hop=stft["hop"])
    return name, m


def make_model(cfg: ExperimentConfig) -> nn.Module:
    name, params = model_params(cfg)
    return build_model(name, **params)


def save_checkpoint(
    model: nn.Module, cfg: ExperimentConfig, path: Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write atomically: a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(
            {
                "config": cfg.model_dump(mode="json"),
                "state_dict": model.state_dict(),
                "extra": extra or {},
            },
            tmp,
        )
    return path


def load_checkpoint(path: Path) -> tuple[nn.Module, ExperimentConfig, dict[str, Any]]:
    """(model in eval mode, its config, extra info) from a checkpoint written by save_checkpoint."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ExperimentConfig.model_validate(blob["config"])
    except Exception as exc:
        raise SeofpError(
            f"Expected a seofp-lab checkpoint at {path} but could not read it: {exc}"
        ) from None
    model = make_model(cfg)
    missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    if missing or unexpected:
        raise SeofpError(
            f"{path}: checkpoint does not fit the model "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model.eval(), cfg, blob.get("extra", {})
