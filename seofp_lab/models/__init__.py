"""Speech-enhancement models, built by name. Every model maps ``(batch, time)`` to ``(batch, time)``
and has ``training_pair(noisy, clean) -> (prediction, target)`` in its own loss domain."""

from __future__ import annotations

from typing import Any

from torch import nn

from seofp_lab.models.fcn import FCNEnhancer
from seofp_lab.models.lstm import LSTMEnhancer, SingleBiasLSTM

REGISTRY: dict[str, type[nn.Module]] = {
    "blstm": LSTMEnhancer,
    "lstm": LSTMEnhancer,
    "fcn": FCNEnhancer,
}


def build_model(name: str, **params: Any) -> nn.Module:
    """``build_model("blstm", hidden=257)``; "lstm" is the unidirectional (streamable) variant."""
    if name not in REGISTRY:
        raise ValueError(f"Expected a model name in {sorted(REGISTRY)} but got {name!r}")
    if name in ("blstm", "lstm"):
        params = {**params, "bidirectional": name == "blstm"}
    return REGISTRY[name](**params)


def stored_values(model: nn.Module) -> int:
    """Parameters plus BatchNorm running statistics: the stored values, as the papers count."""
    n = sum(p.numel() for p in model.parameters())
    for name, b in model.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            n += b.numel()
    return n


__all__ = [
    "FCNEnhancer",
    "LSTMEnhancer",
    "REGISTRY",
    "SingleBiasLSTM",
    "build_model",
    "stored_values",
]
