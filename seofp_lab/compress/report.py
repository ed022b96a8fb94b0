"""Analytic sizes, bits per weight and per-layer exponent statistics (docs/method.md#sizes).

``P`` counts every stored value (parameters and batch-norm running statistics). Two sizes:

- ``size_bytes_paper``: the papers' Σ_g P_g (1 + len_g) / 8 over quantized values, plus 4 bytes per
  value kept fp32 (and, with weight sharing and no format, ceil(log2 k)-bit indices plus fp32
  centers). Dense: pruning does not shrink it.
- ``size_bytes_analytic``: per tensor, a 1-bit-per-value pruning bitmap plus the kept values only
  when the tensor has a mask, each tensor padded to a whole byte; no file header. The exact
  ``size_bytes`` is the length of the exported ``.seofp`` file (``seofp_lab.infer.modelfile``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seofp_lab.compress import codec
from seofp_lab.compress.range import exponent_ranges, stored_tensors
from seofp_lab.compress.seofp import SEOFPFormat, exponents

Quantize = Literal["weights", "all"]


def _index_bits(clusters: int) -> int:
    return max(1, math.ceil(math.log2(clusters)))


def compression_report(model: nn.Module, fmt: SEOFPFormat | None,
                       masks: Mapping[str, Tensor] | None = None, *,
                       quantize: Quantize = "weights",
                       clusters: int | None = None) -> dict[str, Any]:
    """Sizes and per-layer statistics of a (compressed) model as it is now.

    Args:
        model: the model, with rounded values if ``fmt`` is given.
        fmt: the SEOFP format, or None (fp32 values).
        masks: pruning masks by stored-tensor name.
        quantize: which values ``fmt`` covers: weights (``dim >= 2``) or all stored values.
        clusters: k of k-means weight sharing on the weights, if any.

    Returns:
        ``stored_values`` (P), ``fp32_bytes``, ``bits_per_weight``, ``sparsity`` (zeros among
        weights), ``size_bytes_paper``, ``size_bytes_analytic``, ``compression_pct`` (from the
        analytic size), ``compression_pct_paper``, ``format``, ``group`` and ``layers``: one dict
        per stored tensor (name, shape, count, kind, quantized, e_min, e_max, length, bits,
        zeros, sparsity, pruned, unique, histogram {exponent: count}).
    """
    masks = masks or {}
    stored = stored_tensors(model)
    quantized = {s.name for s in stored if fmt is not None and (quantize == "all"
                                                                or s.value.dim() >= 2)}
    values = {s.name: s.value.detach().float() for s in stored}
    ranges = exponent_ranges({k: values[k] for k in values if k in quantized}, fmt) if fmt else {}
    layers: list[dict[str, Any]] = []
    dense_bits = 0
    analytic = 0
    weight_zeros = weight_count = 0
    for s in stored:
        v = values[s.name]
        n = v.numel()
        is_weight = s.value.dim() >= 2
        shared = clusters is not None and is_weight and s.kind == "param"
        row: dict[str, Any] = {"name": s.name, "shape": list(v.shape), "count": n,
                               "kind": s.kind, "quantized": s.name in quantized,
                               "e_min": None, "e_max": None, "length": None}
        if s.name in quantized:
            r = ranges[s.name]
            bits = 1 + r.length + fmt.fraction_bits
            row.update(e_min=r.e_min, e_max=r.e_max, length=r.length)
            extra = 0
        elif shared and fmt is None:
            bits, extra = _index_bits(clusters), 32 * clusters  # indices + an fp32 codebook
        else:
            bits, extra = 32, 0
        mask = masks.get(s.name)
        pruned = int((~mask).sum()) if mask is not None else 0
        zeros = int((v == 0).sum())
        dense_bits += n * bits + extra
        if mask is not None:
            analytic += codec.packed_size_bytes(n, 1) + codec.packed_size_bytes(n - pruned, bits)
        else:
            analytic += codec.packed_size_bytes(n, bits)
        analytic += codec.packed_size_bytes(extra, 1)
        if is_weight:
            weight_zeros, weight_count = weight_zeros + zeros, weight_count + n
        exps, counts = torch.unique(exponents(v), return_counts=True)  # sorted
        row.update(bits=bits, zeros=zeros, sparsity=zeros / n if n else 0.0, pruned=pruned,
                   unique=int(torch.unique(v).numel()),
                   histogram=dict(zip(exps.tolist(), counts.tolist(), strict=True)))
        layers.append(row)
    total = sum(values[k].numel() for k in values)
    fp32 = 4 * total
    paper = math.ceil(dense_bits / 8)
    return {
        "stored_values": total,
        "fp32_bytes": fp32,
        "bits_per_weight": dense_bits / total if total else 0.0,
        "sparsity": weight_zeros / weight_count if weight_count else 0.0,
        "size_bytes_paper": paper,
        "size_bytes_analytic": analytic,
        "compression_pct": 100.0 * (1.0 - analytic / fp32) if fp32 else 0.0,
        "compression_pct_paper": 100.0 * (1.0 - paper / fp32) if fp32 else 0.0,
        "format": fmt.name if fmt else None,
        "group": fmt.group if fmt else None,
        "layers": layers,
    }


LAYER_COLUMNS = ("name", "shape", "count", "kind", "quantized", "e_min", "e_max", "length", "bits",
                 "zeros", "sparsity", "pruned", "unique")


def layer_table_csv(report: Mapping[str, Any]) -> str:
    """The per-layer rows of :func:`compression_report` as CSV text (no histograms)."""
    lines = [",".join(LAYER_COLUMNS)]
    for row in report["layers"]:
        cells = []
        for c in LAYER_COLUMNS:
            x = row[c]
            cells.append("x".join(map(str, x)) if c == "shape" else
                         f"{x:.6f}" if isinstance(x, float) else "" if x is None else str(x))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
