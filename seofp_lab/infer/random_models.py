"""Models with random SEOFP-rounded weights and data-like statistics, for tests and benchmarks.

They exercise the exporter and the engine on every family without training anything.
"""

from __future__ import annotations

import torch
from torch import nn

from seofp_lab.compress.seofp import SEOFPFormat, round_to_format, seofp_round
from seofp_lab.models import build_model


def seofp_model(family: str, params: dict[str, object], seed: int = 0,
                exponent_bits: int = 8) -> nn.Module:
    """A model of ``family`` (registry name) with every parameter SEOFP-rounded, in eval mode.

    ``exponent_bits < 8`` also fits each tensor into its own window of that width (``s1e3``:
    7 exponents, the 4-bit format).
    """
    fmt = SEOFPFormat(exponent_bits=exponent_bits, group="per_layer")
    torch.manual_seed(seed)
    model = build_model(family, **params)
    with torch.no_grad():
        if family == "fcn":  # batch-norm statistics from data so activations stay O(1)
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.momentum = None
            model.train()
            model(torch.randn(2, 8000) * 0.1)
        else:
            model.set_feature_stats(torch.randn(257) - 6.0, torch.rand(257) + 1.0)
        for name, p in model.named_parameters():
            p.copy_(round_to_format(p.detach(), fmt, name=name) if exponent_bits < 8
                    else seofp_round(p.detach(), name=name))
    return model.eval()
