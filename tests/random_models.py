"""Models with random SEOFP-rounded weights and data-like statistics, for tests and benchmarks.

They exercise the exporter and the engine on every family without training anything.
"""

from __future__ import annotations

import torch
from torch import nn

from seofp_lab.compress.pruning import magnitude_masks, prunable
from seofp_lab.compress.seofp import SEOFPFormat, round_to_format, seofp_round
from seofp_lab.models import build_model


def random_model(family: str, params: dict[str, object], seed: int = 0) -> nn.Module:
    """A model of ``family`` (registry name) with its initial fp32 weights, in eval mode.

    FCN batch-norm statistics come from a random signal, LSTM feature statistics are LPS-like
    (mean about -6, standard deviation 1..2 per bin), so activations stay O(1).
    """
    torch.manual_seed(seed)
    model = build_model(family, **params)
    with torch.no_grad():
        if family == "fcn":
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.momentum = None
            model.train()
            model(torch.randn(2, 8000) * 0.1)
        else:
            bins = model.feat_mean.numel()
            model.set_feature_stats(torch.randn(bins) - 6.0, torch.rand(bins) + 1.0)
    return model.eval()


def seofp_model(family: str, params: dict[str, object], seed: int = 0,
                exponent_bits: int = 8, prune: float = 0.0) -> nn.Module:
    """:func:`random_model` with every parameter SEOFP-rounded.

    ``exponent_bits < 8`` also fits each tensor into its own window of that width (``s1e3``:
    7 exponents, the 4-bit format). ``prune > 0`` then zeros that fraction of every weight
    (``dim >= 2``: LSTM, linear and conv weights) by magnitude, per tensor, as the demo's pruned
    variant does.
    """
    fmt = SEOFPFormat(exponent_bits=exponent_bits, group="per_layer")
    model = random_model(family, params, seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(round_to_format(p.detach(), fmt, name=name) if exponent_bits < 8
                    else seofp_round(p.detach(), name=name))
        if prune > 0.0:
            stored = prunable(model)
            masks = magnitude_masks(stored, prune, "per_layer")
            for st in stored:
                st.raw.masked_fill_(~masks[st.name], 0.0)
    return model.eval()
