"""Tiny models with SEOFP-rounded weights for the engine tests (shared by several test files)."""

from __future__ import annotations

import torch
from torch import nn

from seofp_lab.compress.seofp import seofp_round
from seofp_lab.models import build_model

FAMILIES = {
    "blstm": {"hidden": 12, "layers": 2, "fc": 10, "target": "lps"},
    "lstm": {"hidden": 10, "layers": 2, "fc": 0, "target": "mask"},
    "fcn": {"layers": 3, "channels": 5, "kernel": 9},
}


def tiny_model(name: str, seed: int = 0, **overrides: object) -> nn.Module:
    """A small model of one family, every parameter SEOFP-rounded, realistic statistics."""
    torch.manual_seed(seed)
    model = build_model(name, **{**FAMILIES[name], **overrides})
    with torch.no_grad():
        if name == "fcn":  # batch-norm statistics from data, so activations stay O(1)
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.momentum = None
            model.train()
            model(torch.randn(4, 2000) * 0.1)
        else:
            model.set_feature_stats(torch.randn(257) - 6.0, torch.rand(257) + 1.0)
        for pname, p in model.named_parameters():
            p.copy_(seofp_round(p.detach(), name=pname))
    return model.eval()
