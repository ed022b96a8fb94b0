"""Tiny models with SEOFP-rounded weights for the engine tests (shared by several test files)."""

from __future__ import annotations

from random_models import seofp_model
from torch import nn

FAMILIES = {
    "blstm": {"hidden": 12, "layers": 2, "fc": 10, "target": "lps"},
    "lstm": {"hidden": 10, "layers": 2, "fc": 0, "target": "mask"},
    "fcn": {"layers": 3, "channels": 5, "kernel": 9},
}


def tiny_model(name: str, seed: int = 0, **overrides: object) -> nn.Module:
    """A small model of one family, every parameter SEOFP-rounded, realistic statistics."""
    return seofp_model(name, {**FAMILIES[name], **overrides}, seed)
