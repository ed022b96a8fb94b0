"""Figures of the analysis (LISTENING.md §8.10), drawn with matplotlib's Agg backend to PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from seofp_lab.listening.analysis import StudyAnalysis
from seofp_lab.listening.power import detection_power
from seofp_lab.listening.stats import min_correct


def _plt():  # noqa: ANN202 - the pyplot module
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_all(result: StudyAnalysis, out_dir: Path, margin: float) -> list[Path]:
    """Write every figure the data allow; returns the PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plt, paths = _plt(), []
    m = result.metrics
    if "pc" not in m:
        return paths

    # 1. Equivalence: P̄c, upper bound, the [0.5, margin] band; overall and per condition
    cond = result.tables.get("conditions")
    labels = ["overall"] + ([f"{r.factor} {r.level}" for r in cond.itertuples()]
                            if cond is not None else [])
    pcs = [m["pc_gee"]] + (list(cond.pc) if cond is not None else [])
    ups = [m["upper_gee"]] + (list(cond.upper) if cond is not None else [])
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(labels) + 1.5))
    y = np.arange(len(labels))[::-1]
    ax.axvspan(0.5, margin, color="tab:green", alpha=0.15, label="equivalence region")
    ax.hlines(y, 0.5, ups, color="k")
    ax.plot(pcs, y, "o", color="k", label="P̄c (GEE)")
    ax.plot(ups, y, "|", markersize=14, color="tab:red", label="one-sided upper bound")
    ax.axvline(margin, ls="--", color="tab:red")
    ax.set_yticks(y, labels)
    ax.set_xlabel("proportion correct")
    ax.legend(loc="lower right", fontsize=7)
    paths.append(_save(fig, out_dir / "equivalence.png"))

    pl = result.tables.get("listeners")
    if pl is not None and len(pl):
        # 2. Listener forest with Clopper–Pearson intervals
        fig, ax = plt.subplots(figsize=(6, 0.25 * len(pl) + 1.5))
        y = np.arange(len(pl))[::-1]
        colors = ["tab:red" if r else "k" for r in pl.reject_holm]
        ax.hlines(y, pl.ci_low, pl.ci_high, colors=colors)
        ax.scatter(pl.pc, y, c=colors, s=12)
        t = int(pl.n.median())
        for x, style in ((0.5, ":"), (min_correct(t) / t, "--"), (margin, "-.")):
            ax.axvline(x, ls=style, color="grey")
        ax.set_yticks(y, [str(x) for x in pl.listener])
        ax.set_xlabel("proportion correct (95 % CP); red: above chance after Holm")
        paths.append(_save(fig, out_dir / "listeners.png"))

        # 3. Per-listener correct counts over the Binomial(T, 0.5) pmf
        fig, ax = plt.subplots(figsize=(6, 3))
        ks = np.arange(t + 1)
        ax.bar(ks, stats.binom.pmf(ks, t, 0.5) * len(pl), color="lightgrey", label="chance")
        ax.hist(pl.k, bins=np.arange(t + 2) - 0.5, histtype="step", color="k", label="listeners")
        ax.set_xlabel(f"correct of {t}")
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / "counts.png"))

    if result.ladder is not None:
        # 5. Psychometric curve
        from seofp_lab.listening.psychometric import psi  # noqa: PLC0415

        fit, g = result.ladder, result.tables["ladder"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        xs = np.linspace(g.gain_db.min() - 6, g.gain_db.max() + 6, 200)
        ax.plot(xs, psi(xs, fit.alpha, fit.beta, fit.lam), color="k")
        ax.plot(g.gain_db, g.k / g.n, "o")
        ax.axvline(0, color="grey", ls=":")
        ax.axvspan(*fit.x75_ci, color="tab:blue", alpha=0.15)
        ax.axvline(fit.x75, color="tab:blue", label=f"x75 = {fit.x75:.1f} dB")
        ax.set_xlabel("ladder gain G (dB); 0 dB is the real SEOFP output")
        ax.set_ylabel("proportion correct")
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / "psychometric.png"))

    # 10. Power curve of the achieved design (effective N)
    n_eff = max(int(m.get("n_effective", m["n"])), 1)
    fig, ax = plt.subplots(figsize=(6, 3))
    grid = np.linspace(0.5, 0.8, 61)
    ax.plot(grid, [detection_power(n_eff, p) for p in grid], color="k")
    ax.axhline(0.8, color="grey", ls=":")
    ax.set_xlabel("true P̄c")
    ax.set_ylabel(f"detection power (N_eff = {n_eff})")
    paths.append(_save(fig, out_dir / "power.png"))
    return paths


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    _plt().close(fig)
    return path
