"""The report's figures as PNG bytes: quality vs SNR, size vs quality (Pareto), speed.

Each function returns None when the runs logged nothing it could draw.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from seofp_lab.report.runs import RunRecord
from seofp_lab.report.table import CONTENDERS, LABELS, Row

MARKERS = {"baseline": "o", "control": "P", "seofp": "s", "pruned": "^", "seofp+pruned": "D"}


def _plt() -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def snr_points(
    metrics: dict[str, float], name: str, noisy: bool = False
) -> list[tuple[float, float]]:
    """``(snr, value)`` pairs of ``name_snr{v}`` (or ``noisy_name_snr{v}``), by SNR.

    >>> snr_points({"stoi_snr5": 0.9, "stoi_snr-5": 0.7, "estoi_snr5": 0.1}, "stoi")
    [(-5.0, 0.7), (5.0, 0.9)]
    """
    pat = re.compile(("noisy_" if noisy else "") + re.escape(name) + r"_snr(-?[0-9.]+)$")
    pts = [(float(m.group(1)), v) for k, v in metrics.items() if (m := pat.match(k))]
    return sorted(pts)


def per_snr(runs: Sequence[RunRecord], names: Sequence[str] = ("pesq_wb", "stoi")) -> bytes | None:
    """One panel per metric: one line per run, the noisy input dashed."""
    if not any(snr_points(r.metrics, n) for r in runs for n in names):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        noisy = next((p for r in runs if (p := snr_points(r.metrics, name, noisy=True))), [])
        if noisy:
            ax.plot(*zip(*noisy, strict=True), "k--", marker=".", label="noisy input")
        for r in runs:
            pts = snr_points(r.metrics, name)
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), marker=MARKERS.get(r.role, "o"), ms=4, label=r.label
                )
        ax.set_title(LABELS.get(name, name))
        ax.set_xlabel("input SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes (smaller x, larger y), by x.

    >>> pareto_front([(1, 1.0), (2, 2.0), (3, 1.5), (4, 3.0)])
    [(1, 1.0), (2, 2.0), (4, 3.0)]
    """
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def _bytes_formatter(minor: bool = False) -> Any:
    """Decimal kB/MB tick labels (log ticks sit at 1, 2, 5 x 10^k); minor ones only at 2 and 5.

    >>> f = _bytes_formatter(); f(5e5, 0), f(2e6, 0), f(950, 0)
    ('500 kB', '2 MB', '950 B')
    """
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    def label(x: float, _pos: int | None = None) -> str:
        if x <= 0:
            return ""
        if minor and round(x / 10 ** math.floor(math.log10(x))) not in (2, 5):
            return ""
        for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if x >= scale:
                return f"{x / scale:.3g} {unit}"
        return f"{x:.3g} B"

    return FuncFormatter(label)


def pareto(rows: Sequence[Row], metric: str = "pesq_wb") -> bytes | None:
    """Size (log scale) vs quality, a marker per role, the front circled and joined."""
    pts = [
        (r, r.values["size_bytes"], r.values[metric])
        for r in rows
        if r.kind == "run" and r.values.get("size_bytes") and r.values.get(metric) is not None
    ]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    for role in dict.fromkeys(r.role for r, _, _ in pts):
        mine = [(x, y) for r, x, y in pts if r.role == role]
        ax.scatter(
            *zip(*mine, strict=True), marker=MARKERS.get(role, "o"), s=46, label=role, zorder=3
        )
    for r, x, y in pts:
        ax.annotate(r.label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    front = pareto_front([(x, y) for _, x, y in pts])
    ax.scatter(
        *zip(*front, strict=True),
        s=170,
        facecolors="none",
        edgecolors="grey",
        zorder=2,
        label="Pareto front",
    )
    if len(front) > 1:
        ax.step(*zip(*front, strict=True), where="post", color="grey", lw=1, ls=":", zorder=2)
    noisy = next((r.values.get(metric) for r in rows if r.kind == "noisy"), None)
    if noisy is not None:
        ax.axhline(noisy, color="k", ls="--", lw=0.8, label="noisy input")
    ax.set_xscale("log")
    ax.margins(x=0.2, y=0.12)
    ax.xaxis.set_major_formatter(_bytes_formatter())
    ax.xaxis.set_minor_formatter(_bytes_formatter(minor=True))
    ax.set_xlabel("model size (log scale)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _latencies(r: RunRecord) -> list[tuple[str, float, float]]:
    """``(contender, p50, p90)`` of a run; the unprefixed metrics name the tagged kernel."""
    items = []
    for c in CONTENDERS:
        p50 = r.metrics.get(f"bench_{c}_latency_ms_p50")
        if p50 is not None:
            items.append((c, p50, r.metrics.get(f"bench_{c}_latency_ms_p90", p50)))
    if not items and "latency_ms_p50" in r.metrics:
        p50 = r.metrics["latency_ms_p50"]
        items.append(
            (f"c_{r.tags.get('seofp.kernel', '?')}", p50, r.metrics.get("latency_ms_p90", p50))
        )
    return items


def speed(runs: Sequence[RunRecord]) -> bytes | None:
    """Median latency per contender and per run (bar p50, whisker to p90)."""
    bars = [(r.label, items) for r in runs if (items := _latencies(r))]
    if not bars:
        return None
    plt = _plt()
    names = list(dict.fromkeys(c for _, items in bars for c, _, _ in items))
    height = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.32 * len(names) * len(bars)))
    for j, c in enumerate(names):
        ys, p50s, errs = [], [], []
        for i, (_, items) in enumerate(bars):
            hit = next((it for it in items if it[0] == c), None)
            if hit is not None:
                ys.append(i + (j - (len(names) - 1) / 2) * height)
                p50s.append(hit[1])
                errs.append(max(hit[2] - hit[1], 0.0))
        ax.barh(ys, p50s, height=height, xerr=[[0] * len(errs), errs], label=c, capsize=2)
    ax.set_yticks(range(len(bars)), [label for label, _ in bars])
    ax.invert_yaxis()
    ax.set_xlabel("latency per utterance (ms): bar p50, whisker p90; one thread")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)
