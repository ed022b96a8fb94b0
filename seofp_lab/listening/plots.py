"""Figures of the analysis (docs/listening.md#figures), drawn with matplotlib's Agg backend to
PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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

    # 1. Equivalence: the claim's P̄c and clustered interval (overall), the upper bounds per
    # condition, the [0.5, margin] band
    cond = result.tables.get("conditions")
    labels = ["overall"] + ([f"{r.factor} {r.level}" for r in cond.itertuples()]
                            if cond is not None else [])
    pcs = [m["pc_gee"]] + (list(cond.pc) if cond is not None else [])
    ups = [m["upper_gee"]] + (list(cond.upper) if cond is not None else [])
    lows = [m.get("lower_gee", 0.5)] + [0.5] * (len(labels) - 1)
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(labels) + 1.5))
    y = np.arange(len(labels))[::-1]
    ax.axvspan(0.5, margin, color="tab:green", alpha=0.15, label="equivalence region")
    ax.hlines(y, lows, ups, color="k")
    ax.plot(pcs, y, "o", color="k", label="P̄c (GEE)")
    ax.plot(ups, y, "|", markersize=14, color="tab:red", label="one-sided upper bound")
    ax.plot(lows[:1], y[:1], "|", markersize=14, color="tab:blue",
            label="one-sided lower bound (overall)")
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

    # 4. Item forest by SNR
    paths.append(plot_items(result.tables.get("items"), margin, out_dir / "items_by_snr.png"))

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

    # 7. Confusion matrix and distribution of c; 8. RT, plays, switches by correctness
    paths.append(plot_confusion(result.tables.get("confusion"), result.tables.get("bias"),
                                m.get("bias_c"), out_dir / "confusion_bias.png"))
    paths.append(plot_trial_log(result.tables.get("trial_log"),
                                out_dir / "rt_plays_switches.png",
                                confidence="confidence" in result.tables))

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


def plot_items(items: pd.DataFrame | None, margin: float, path: Path) -> Path:
    """Write :func:`items_figure` to ``path``."""
    return _save(items_figure(items, margin), path)


def items_figure(items: pd.DataFrame | None, margin: float):  # noqa: ANN201 - a Figure
    """Plot 4: per item, k/n correct with its 95 % Clopper–Pearson interval, grouped by input SNR.

    Args:
        items: :func:`seofp_lab.listening.stats.per_item`'s table (already in SNR order), or
            None/empty for an annotated empty figure.
        margin: the equivalence margin p_U, drawn with the chance line 0.5.
    """
    plt = _plt()
    n = 0 if items is None else len(items)
    fig, ax = plt.subplots(figsize=(6, min(0.2 * n, 30) + 1.8))
    ax.axvline(0.5, ls=":", color="grey", label="chance 0.5")
    ax.axvline(margin, ls="-.", color="tab:red", label=f"margin {margin:g}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("proportion correct per item (95 % Clopper–Pearson)")
    if not n:
        _empty(ax, "no main trials: no items to show")
        return fig
    y = np.arange(n)[::-1]
    groups = items.snr.astype(object).where(items.snr.notna(), "unknown").astype(str)
    colors = plt.get_cmap("tab10")
    for j, level in enumerate(dict.fromkeys(groups)):
        sel = (groups == level).to_numpy()
        col = colors(j % 10)
        ax.hlines(y[sel], items.ci_low[sel], items.ci_high[sel], color=col)
        ax.plot(items.pc[sel], y[sel], "o", ms=3, color=col, label=f"SNR {level} dB")
        if j:  # a rule between SNR groups
            ax.axhline(y[sel].max() + 0.5, color="lightgrey", lw=0.8)
    ax.set_yticks(y, [f"{r.item} ({r.k}/{r.n})" for r in items.itertuples()], fontsize=6)
    ax.set_ylim(-1, n)
    ax.legend(fontsize=6, loc="lower right")
    return fig


def plot_confusion(conf: pd.DataFrame | None, bias: pd.DataFrame | None,
                   pooled_c: float | None, path: Path) -> Path:
    """Write :func:`confusion_figure` to ``path``."""
    return _save(confusion_figure(conf, bias, pooled_c), path)


def confusion_figure(conf: pd.DataFrame | None, bias: pd.DataFrame | None,  # noqa: ANN201
                     pooled_c: float | None):
    """Plot 7: the (X was A/B) x (answered A/B) counts and a histogram of listeners' c.

    c = -(z(H) + z(F)) / 2 with H = P("A" | X = A), F = P("A" | X = B)
    (docs/listening.md#sensitivity-d-prime);
    c < 0 leans to "A", c > 0 to "B" (:mod:`seofp_lab.listening.bias`).
    """
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3.2))
    if conf is None or not len(conf):
        _empty(ax, "no main trials")
    else:
        cells = conf[["answered_A", "answered_B"]].to_numpy(int)
        ax.imshow(cells, cmap="Blues", vmin=0, vmax=max(int(cells.max()), 1))
        for (i, j), v in np.ndenumerate(cells):
            share = v / max(int(cells[i].sum()), 1)
            ax.text(j, i, f"{v}\n({share:.0%} of row)", ha="center", va="center", fontsize=8,
                    color="white" if v > cells.max() / 2 else "black")
        ax.set_xticks([0, 1], ["answered A", "answered B"])
        ax.set_yticks([0, 1], [f"X was {x}" for x in conf.x_is])
        ax.set_title(f"{int(cells.sum())} main trials, all listeners", fontsize=8)
    cs = np.asarray([] if bias is None else bias.bias_c, float)
    cs = cs[np.isfinite(cs)]
    if not len(cs):
        _empty(bx, "no listener with main trials")
    else:
        bx.hist(cs, bins=max(5, min(20, len(cs))), color="lightgrey", edgecolor="k")
        bx.axvline(0, color="grey", ls=":", label="unbiased")
        if pooled_c is not None and np.isfinite(pooled_c):
            bx.axvline(pooled_c, color="tab:red", label=f"pooled c = {pooled_c:.2f}")
        bx.legend(fontsize=7)
    bx.set_xlabel("criterion c per listener (< 0: leans to \"A\")")
    bx.set_ylabel("listeners")
    return fig


# (column(s) summed, axis label) per panel of plot 8
_LOG_PANELS = ((("rt_ms",), "response time (s)"), (("plays_a", "plays_b", "plays_x"), "plays"),
               (("switches",), "switches"))


def plot_trial_log(log: pd.DataFrame | None, path: Path, confidence: bool = False) -> Path:
    """Write :func:`trial_log_figure` to ``path``."""
    return _save(trial_log_figure(log, confidence), path)


def trial_log_figure(log: pd.DataFrame | None, confidence: bool = True):  # noqa: ANN201
    """Plot 8: response time, plays (A + B + X) and switches for correct vs incorrect trials,
    and, only when the design asks for a confidence rating (``confidence``), proportion
    correct by confidence; a panel whose field the store lacks says so."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4 if confidence else 3, figsize=(11 if confidence else 8.4, 3.2))
    log = pd.DataFrame() if log is None else log
    ok = log["correct"].astype(bool) if "correct" in log else pd.Series(dtype=bool)
    for ax, (cols, label) in zip(axes, _LOG_PANELS, strict=False):
        ax.set_ylabel(label)
        if "correct" not in log or not all(c in log for c in cols) or log[list(cols)].isna(
                ).all().any():
            _empty(ax, f"{' + '.join(cols)} not recorded")
            continue
        v = log[list(cols)].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=1)
        v = v / 1000 if cols == ("rt_ms",) else v
        groups = [v[ok].dropna().to_numpy(float), v[~ok].dropna().to_numpy(float)]
        names = [f"correct\n(n = {len(groups[0])})", f"incorrect\n(n = {len(groups[1])})"]
        for i, g in enumerate(groups):
            if not len(g):
                ax.text(i + 1, 0.5, "no trials", ha="center", va="center", color="grey",
                        transform=ax.get_xaxis_transform(), fontsize=8)
                continue
            ax.boxplot(g, positions=[i + 1], widths=0.5, showfliers=False)
            jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(g))
            ax.plot(i + 1 + jitter, g, ".", ms=2, alpha=0.4, color="tab:blue")
        ax.set_xticks([1, 2], names)
        ax.set_xlim(0.4, 2.6)
    if not confidence:
        return fig
    ax = axes[3]
    conf = pd.to_numeric(log["confidence"], errors="coerce") if "confidence" in log else None
    if conf is None or "correct" not in log or conf.isna().all():
        _empty(ax, "confidence not recorded")
    else:
        acc = ok.groupby(conf).agg(["mean", "count"])
        ax.bar(acc.index.astype(str), acc["mean"], color="lightgrey", edgecolor="k")
        for x, (pc, k) in enumerate(zip(acc["mean"], acc["count"], strict=False)):
            ax.text(x, pc, f"n={k}", ha="center", va="bottom", fontsize=7)
        ax.axhline(0.5, ls=":", color="grey")
        ax.set_ylim(0, 1.1)
        ax.set_xlabel("confidence")
    axes[3].set_ylabel("proportion correct")
    return fig


def _empty(ax, text: str) -> None:  # noqa: ANN001 - a matplotlib Axes
    """An annotated empty panel (what is missing), instead of a crash or a blank."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey",
            fontsize=8, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    _plt().close(fig)
    return path
