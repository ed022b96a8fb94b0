"""A pre-registered detector of implausible performance (docs/listening_blinding.md#detector).

Three checks per listener, each a one-sided exact binomial test at ``alpha`` (default 0.001,
fixed before data are seen; with 24 listeners and three checks the chance of flagging an honest
listener somewhere is below 0.08):

1. **Too good below threshold.** The JND ladder's psychometric function is fitted to every
   *other* listener's ladder trials (leave-one-out: a cheater's own fit would follow the cheat
   and put the threshold under every level). At the levels at least ``below_db`` dB under that
   fit's 75 % point the function predicts little better than guessing; a listener whose correct
   count there is far above the prediction is flagged.
2. **Above chance on null trials.** A and B are the same clip; no ear can beat 50 %.
3. **Faster than the clips.** More than ``fast_fraction`` of the answers (and at least
   ``min_fast``) came sooner after the trial was shown, by the server clock, than the clip lasts.

Input columns (one row per answered trial): ``listener``, ``trial_type`` (``ladder``, ``null``,
others), ``gain_db`` (ladder level, dB), ``correct`` (0/1), ``rt_ms`` (server clock, trial shown
to answer) and ``clip_ms`` (clip duration; see
:func:`seofp_lab.listening.blinding.serve_timings`) or the ``clip_ms`` argument.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from seofp_lab.listening.psychometric import fit_ladder, psi

ALPHA = 0.001
BELOW_DB = 6.0
FAST_FRACTION = 0.1
MIN_FAST = 2
REQUIRED = ("listener", "trial_type", "correct")


def _greater(k: int, n: int, p: float) -> float:
    return float(stats.binomtest(int(k), int(n), min(max(p, 1e-9), 1 - 1e-9),
                                 alternative="greater").pvalue) if n else 1.0


def _ladder_reasons(trials: pd.DataFrame, alpha: float, below_db: float) -> dict:
    lad = trials[trials["trial_type"] == "ladder"]
    out: dict = {}
    if lad.empty or "gain_db" not in lad:
        return out
    for who in lad["listener"].unique():
        others = lad[lad["listener"] != who]
        if others["listener"].nunique() < 2:
            continue
        g = others.groupby("gain_db")["correct"].agg(["sum", "count"]).reset_index()
        if len(g) < 3:
            continue
        fit = fit_ladder(g["gain_db"].to_numpy(), g["sum"].to_numpy(), g["count"].to_numpy(),
                         boot=0)
        if not np.isfinite(fit.x75):
            continue
        mine = lad[(lad["listener"] == who) & (lad["gain_db"] <= fit.x75 - below_db)]
        if mine.empty:
            continue
        pred = float(np.mean(psi(mine["gain_db"].to_numpy(float), fit.alpha, fit.beta, fit.lam)))
        k, n = int(mine["correct"].sum()), len(mine)
        p = _greater(k, n, pred)
        if p < alpha:
            out[who] = (f"ladder: {k}/{n} correct at levels <= {fit.x75 - below_db:.1f} dB "
                        f"(others' threshold {fit.x75:.1f} dB predicts {pred:.2f}; p={p:.1e})")
    return out


def flag_listeners(trials: pd.DataFrame, *, alpha: float = ALPHA, below_db: float = BELOW_DB,
                   fast_fraction: float = FAST_FRACTION, min_fast: int = MIN_FAST,
                   clip_ms: float | None = None) -> pd.DataFrame:
    """Flag listeners whose performance no honest listener could produce.

    Args:
        trials: one row per answered trial (columns in the module docstring).
        alpha: per-check significance level (pre-registered: 0.001).
        below_db: how far under the others' 75 % threshold a level must be to count.
        fast_fraction: flag when more than this share of answers beat the clip duration.
        min_fast: ... and at least this many.
        clip_ms: clip duration for every trial when ``trials`` has no ``clip_ms`` column.

    Returns:
        one row per listener: ``listener``, ``flagged`` (bool), ``reason`` ("" when not flagged,
        else the failed checks joined by "; ").
    """
    missing = [c for c in REQUIRED if c not in trials.columns]
    if missing:
        raise ValueError(f"Expected trial columns {list(REQUIRED)} but {missing} are missing")
    reasons: dict = {who: [] for who in trials["listener"].unique()}
    for who, why in _ladder_reasons(trials, alpha, below_db).items():
        reasons[who].append(why)
    null = trials[trials["trial_type"] == "null"]
    for who, g in null.groupby("listener"):
        k, n = int(g["correct"].sum()), len(g)
        p = _greater(k, n, 0.5)
        if p < alpha:
            reasons[who].append(f"null trials: {k}/{n} correct where A and B are one clip "
                                f"(p={p:.1e})")
    durations = trials["clip_ms"] if "clip_ms" in trials.columns else (
        pd.Series(clip_ms, index=trials.index) if clip_ms is not None else None)
    if durations is not None and "rt_ms" in trials.columns:
        fast = trials.assign(_fast=trials["rt_ms"].astype(float) < durations.astype(float))
        for who, g in fast.groupby("listener"):
            k, n = int(g["_fast"].sum()), len(g)
            if k >= min_fast and k > fast_fraction * n:
                reasons[who].append(f"speed: {k}/{n} answers sooner than the clip lasts")
    rows = [{"listener": who, "flagged": bool(r), "reason": "; ".join(r)}
            for who, r in reasons.items()]
    return pd.DataFrame(rows, columns=["listener", "flagged", "reason"])
