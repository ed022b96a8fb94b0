"""Figures of a :func:`~seofp_lab.compress.report.compression_report`: exponents and sparsity.

matplotlib is imported inside the functions (Agg backend), so ``import seofp_lab.compress`` stays
torch/numpy only. Each function returns a Figure; the caller saves or logs it and closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pyplot():  # noqa: ANN202 - the pyplot module
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def exponent_histogram_figure(report: Mapping[str, Any], max_layers: int = 24):  # noqa: ANN201
    """One step histogram of rounded exponents per quantized layer, with the window bounds.

    Args:
        report: from ``compression_report``.
        max_layers: the largest layers shown (the legend stays readable).
    """
    plt = _pyplot()
    rows = [r for r in report["layers"] if r["histogram"]]
    rows = sorted(rows, key=lambda r: -r["count"])[:max_layers]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for r in rows:
        xs = sorted(r["histogram"])
        ys = [r["histogram"][x] / max(1, r["count"]) for x in xs]
        ax.step(xs, ys, where="mid", label=r["name"], linewidth=1)
    quantized = [r for r in report["layers"] if r["quantized"] and r["e_min"] is not None]
    if quantized:
        lo = min(r["e_min"] for r in quantized)
        hi = max(r["e_max"] for r in quantized)
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.9", zorder=0, label=f"stored window [{lo}, {hi}]")
    title = report.get("format") or "fp32"
    ax.set(xlabel="exponent e of ±2^e (non-zero values)", ylabel="fraction of the layer's values",
           title=f"Exponents per layer ({title}, {report['bits_per_weight']:.2f} bits/value)")
    if rows:
        ax.legend(fontsize=6, ncol=2)
    return fig


def sparsity_figure(report: Mapping[str, Any]):  # noqa: ANN201
    """Bar chart of the zero fraction per weight tensor (pruned or rounded to 0)."""
    plt = _pyplot()
    rows = [r for r in report["layers"] if len(r["shape"]) >= 2]
    fig, ax = plt.subplots(figsize=(8, 0.3 * max(len(rows), 4) + 1.2), layout="constrained")
    ax.barh([r["name"] for r in rows], [r["sparsity"] for r in rows], color="tab:blue")
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="zero fraction",
           title=f"Sparsity per weight tensor (overall {report['sparsity']:.1%})")
    ax.tick_params(axis="y", labelsize=7)
    return fig
