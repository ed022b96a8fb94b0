"""The statistics of an ABX study (docs/listening.md#analysis-overview): exact tests, intervals, d',
GEE bound.

Pure functions of counts or of a trial table with columns ``listener``, ``correct`` (0/1) and,
where needed, ``response``, ``x_is``, ``item``, ``snr``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import integrate, optimize, stats

Z95 = float(stats.norm.ppf(0.95))


def min_correct(n: int, alpha: float = 0.05) -> int:
    """The smallest k with one-sided exact p = P(K >= k | n, 0.5) < alpha.

    >>> [min_correct(n) for n in (10, 16, 20, 30, 50)]
    [9, 12, 15, 20, 32]
    """
    if n < 1:
        raise ValueError(f"Expected n >= 1 trials but got {n}")
    return int(stats.binom.ppf(1 - alpha, n, 0.5)) + 1


def p_value(k: int, n: int) -> float:
    """One-sided exact p-value of k correct out of n against chance 0.5."""
    return float(stats.binom.sf(k - 1, n, 0.5))


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) interval; statsmodels' ``method='beta'``."""
    from statsmodels.stats.proportion import proportion_confint  # noqa: PLC0415

    lo, hi = proportion_confint(k, n, alpha=alpha, method="beta")
    return float(lo), float(hi)


def cp_upper(k: int, n: int, alpha: float = 0.05) -> float:
    """One-sided (1 - alpha) Clopper–Pearson upper bound."""
    return 1.0 if k >= n else float(stats.beta.ppf(1 - alpha, k + 1, n - k))


def per_listener(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Exact one-sided test per listener, Holm-corrected (not statsmodels' Holm–Šidák default)."""
    from statsmodels.stats.multitest import multipletests  # noqa: PLC0415

    g = df.groupby("listener")["correct"].agg(k="sum", n="count").reset_index()
    g["pc"] = g.k / g.n
    g["p"] = [p_value(int(k), int(n)) for k, n in zip(g.k, g.n, strict=False)]
    g["reject_holm"], g["p_holm"], _, _ = multipletests(g.p, alpha=alpha, method="holm")
    ci = [clopper_pearson(int(k), int(n), alpha) for k, n in zip(g.k, g.n, strict=False)]
    g["ci_low"], g["ci_high"] = [c[0] for c in ci], [c[1] for c in ci]
    return g


def overdispersion(k: np.ndarray, n: np.ndarray) -> tuple[float, int, float]:
    """chi2 = sum (k_i - n_i p)^2 / (n_i p (1 - p)) on L - 1 df: do listeners differ?"""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k.sum() / n.sum()
    if p in (0.0, 1.0):
        return 0.0, len(k) - 1, 1.0
    chi2 = float(np.sum((k - n * p) ** 2 / (n * p * (1 - p))))
    return chi2, len(k) - 1, float(stats.chi2.sf(chi2, len(k) - 1))


def pc_from_dprime(d: float, model: Literal["differencing", "independent"] = "differencing"
                   ) -> float:
    """ABX proportion correct for an unbiased observer (Macmillan & Creelman 2005)."""
    c = np.sqrt(6) if model == "differencing" else 2.0
    phi = stats.norm.cdf
    return float(phi(d / np.sqrt(2)) * phi(d / c) + phi(-d / np.sqrt(2)) * phi(-d / c))


def dprime_from_pc(pc: float, model: Literal["differencing", "independent"] = "differencing"
                   ) -> float:
    """Invert :func:`pc_from_dprime`; 0 at or below chance.

    >>> round(dprime_from_pc(0.7256), 2)
    1.87
    """
    if pc <= 0.5:
        return 0.0
    pc = min(pc, 0.99999)
    return float(optimize.brentq(lambda d: pc_from_dprime(d, model) - pc, 0.0, 20.0))


def abx_sdt(df: pd.DataFrame) -> dict[str, float]:
    """H = P("A" | X = A), F = P("A" | X = B) with 0.5 added to each cell (Hautus 1995); d'."""
    xa, xb = df[df.x_is == "A"], df[df.x_is == "B"]
    h = ((xa.response == "A").sum() + 0.5) / (len(xa) + 1)
    f = ((xb.response == "A").sum() + 0.5) / (len(xb) + 1)
    return sdt_from_rates(float(h), float(f))


def sdt_from_rates(h: float, f: float) -> dict[str, float]:
    """Pc_unb = Phi((z(H) - z(F)) / 2), c = -(z(H) + z(F)) / 2, d' under both models."""
    zh, zf = stats.norm.ppf(h), stats.norm.ppf(f)
    pc = float(stats.norm.cdf((zh - zf) / 2))
    return {"hit_rate": h, "false_alarm_rate": f, "pc_unbiased": pc,
            "bias_c": float(-(zh + zf) / 2),
            "dprime_differencing": dprime_from_pc(pc), "dprime_independent":
            dprime_from_pc(pc, "independent")}


def per_item(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per stimulus item: k of n correct with a two-sided (1 - alpha) Clopper–Pearson interval.

    Args:
        df: trial table with ``item``, ``correct`` and, if known, ``snr`` (the input SNR).

    Returns:
        One row per item (columns item, snr, k, n, pc, ci_low, ci_high), sorted by input SNR
        (unknown last) and then by item, the order of the item forest (docs/listening.md#figures,
        4).
    """
    d = df.assign(snr=df["snr"] if "snr" in df else np.nan)
    g = d.groupby("item", sort=False).agg(snr=("snr", "first"), k=("correct", "sum"),
                                          n=("correct", "count")).reset_index()
    g["k"], g["n"] = g.k.astype(int), g.n.astype(int)
    g["pc"] = g.k / g.n
    ci = [clopper_pearson(int(k), int(n), alpha) for k, n in zip(g.k, g.n, strict=False)]
    g["ci_low"] = [c[0] for c in ci]
    g["ci_high"] = [c[1] for c in ci]
    key = pd.to_numeric(g.snr, errors="coerce")
    order = np.lexsort((g.item.astype(str).to_numpy(), key.fillna(np.inf).to_numpy()))
    return g.iloc[order].reset_index(drop=True)


def dprime_bootstrap(df: pd.DataFrame, reps: int = 1000, level: float = 0.95, seed: int = 0,
                     model: Literal["differencing", "independent"] = "differencing",
                     unit: Literal["trials", "listeners"] = "trials") -> tuple[float, float]:
    """Two-sided percentile interval of the pooled ABX d′.

    ``unit="trials"`` (docs/listening.md#sensitivity-d-prime): each resample redraws every
    listener's own trials
    with replacement (the listener keeps their trial count), then pools. ``unit="listeners"``
    draws L listeners with replacement instead: the between-listener spread rather than the
    within-listener binomial noise (which of the two is wider depends on the data). Each
    resample recomputes :func:`abx_sdt` on the pooled cells (Hautus' 0.5 per cell, Pc_unb, d′
    by inverting :func:`pc_from_dprime`); the inversion uses a 0.001-step grid of d′
    (error < 1e-3), not a root finder per resample.

    Args:
        df: trial table with ``listener``, ``x_is`` and ``response`` ("A"/"B").
        reps: resamples; fewer than 1 gives (nan, nan).
        level: two-sided coverage.
        seed: the generator seed (same seed, same interval).
        model: the ABX observer model of the inversion.
        unit: what is resampled.

    Returns:
        (low, high).
    """
    if reps < 1 or df.empty:
        return float("nan"), float("nan")
    said_a = (df["response"] == "A").to_numpy()
    xa = (df["x_is"] == "A").to_numpy()
    codes, _ = pd.factorize(df["listener"])
    # per listener: the four trial types (X = A, "A"), (X = A, "B"), (X = B, "A"), (X = B, "B")
    kinds = np.stack([np.bincount(codes, w, minlength=codes.max() + 1)
                      for w in (xa & said_a, xa & ~said_a, ~xa & said_a, ~xa & ~said_a)],
                     axis=1).astype(float)
    rng = np.random.default_rng(seed)
    if unit == "listeners":
        pooled = kinds[rng.integers(0, len(kinds), (reps, len(kinds)))].sum(axis=1)
    else:  # multinomial redraw of each listener's n trials from their own trial types
        n = kinds.sum(axis=1).astype(np.int64)
        pooled = sum(rng.multinomial(n[i], kinds[i] / n[i], size=reps)
                     for i in range(len(kinds)) if n[i] > 0).astype(float)
    ha, na = pooled[:, 0], pooled[:, 0] + pooled[:, 1]
    fb, nb = pooled[:, 2], pooled[:, 2] + pooled[:, 3]
    zh = stats.norm.ppf((ha + 0.5) / (na + 1))
    zf = stats.norm.ppf((fb + 0.5) / (nb + 1))
    pc = np.minimum(stats.norm.cdf((zh - zf) / 2), 0.99999)
    grid = np.linspace(0.0, 20.0, 20001)
    c = np.sqrt(6) if model == "differencing" else 2.0
    phi = stats.norm.cdf
    pcs = phi(grid / np.sqrt(2)) * phi(grid / c) + phi(-grid / np.sqrt(2)) * phi(-grid / c)
    d = np.where(pc <= 0.5, 0.0, np.interp(pc, pcs, grid))
    tail = (1 - level) / 2
    return float(np.quantile(d, tail)), float(np.quantile(d, 1 - tail))


@dataclass(frozen=True)
class Bound:
    """A population-average Pc with its one-sided (``level``) lower and upper bounds, both
    from the same fitted model: together a two-sided ``2 level - 1`` interval."""

    pc: float
    upper: float
    method: str
    rho: float | None = None
    se: float | None = None
    lower: float = float("nan")


def gee_bound(df: pd.DataFrame, level: float = 0.95) -> Bound:
    """GEE (binomial, exchangeable, bias-reduced sandwich): expit(b -/+ q se)
    (docs/listening.md#equivalence).

    q is the t quantile on L - 1 df rather than the normal 1.645: with 24 listeners the normal
    quantile claimed equivalence in 6.0 % of simulated studies at the margin, the t quantile in
    5.2 % (1000 reps, benchmarks/listening_simulation.py). Falls back to the t bound where the
    GEE is undefined (every answer right or every one wrong); either way the estimate and both
    bounds come from one model.
    """
    import statsmodels.api as sm  # noqa: PLC0415

    y = df["correct"].to_numpy(float)
    if y.min() == y.max() or df["listener"].nunique() < 2:
        return t_bound(df, level)
    model = sm.GEE(y, np.ones((len(y), 1)), groups=pd.factorize(df["listener"])[0],
                   family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate fits are caught below
        res = model.fit(cov_type="bias_reduced")
    b, se = float(res.params[0]), float(res.bse[0])
    if not (np.isfinite(b) and np.isfinite(se) and se > 0):
        return t_bound(df, level)  # e.g. identical listeners: exchangeable rho at its limit
    z = float(stats.t.ppf(level, df["listener"].nunique() - 1))
    rho = float(np.atleast_1d(res.model.cov_struct.dep_params)[0])
    return Bound(float(_expit(b)), float(_expit(b + z * se)), "gee", rho, se,
                 float(_expit(b - z * se)))


def t_bound(df: pd.DataFrame, level: float = 0.95) -> Bound:
    """One-sided t bounds on per-listener proportions (the cross-check), clipped to [0, 1].

    The standard error is never below the binomial one of the pooled trials (with a half
    success added, so that it is not 0 when every answer is right): listeners that happen to
    score alike do not make the interval narrower than independent trials would.
    """
    p = df.groupby("listener")["correct"].mean().to_numpy(float)
    se = float(p.std(ddof=1) / np.sqrt(len(p))) if len(p) > 1 else float("nan")
    n, k = len(df), float(df["correct"].sum())
    pj = (k + 0.5) / (n + 1)
    se = max(se, float(np.sqrt(pj * (1 - pj) / n))) if np.isfinite(se) and n else se
    t = float(stats.t.ppf(level, max(len(p) - 1, 1)))
    return Bound(float(p.mean()), float(min(p.mean() + t * se, 1.0)), "t", None, se,
                 float(max(p.mean() - t * se, 0.0)))


def bootstrap_bound(df: pd.DataFrame, reps: int = 1000, level: float = 0.95, seed: int = 0
                    ) -> Bound:
    """Listener x item cluster bootstrap: resample listeners, then items within the study."""
    rng = np.random.default_rng(seed)
    listeners = df["listener"].unique()
    items = df["item"].unique() if "item" in df else None
    by_l = {lst: g for lst, g in df.groupby("listener")}
    out = np.empty(reps)
    for r in range(reps):
        pick = rng.choice(listeners, len(listeners))
        d = pd.concat([by_l[x] for x in pick])
        if items is not None:
            w = pd.Series(np.bincount(rng.integers(0, len(items), len(items)),
                                      minlength=len(items)), index=items)
            wt = d["item"].map(w).to_numpy(float)
            out[r] = np.sum(wt * d["correct"]) / max(wt.sum(), 1.0)
        else:
            out[r] = d["correct"].mean()
    return Bound(float(df["correct"].mean()), float(np.quantile(out, level)), "bootstrap")


def effective_n(n_listeners: int, trials: int, rho: float) -> float:
    """L T / (1 + (T - 1) rho): what the pooled binomial wrongly takes to be L T."""
    return n_listeners * trials / (1 + (trials - 1) * max(rho, 0.0))


def mixed_model(df: pd.DataFrame) -> dict[str, float]:
    """Crossed random intercepts for listener and item (variational Bayes,
    docs/listening.md#listener-and-item-effects)."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM  # noqa: PLC0415

    formula = "correct ~ C(snr)" if df["snr"].nunique() > 1 else "correct ~ 1"
    model = BinomialBayesMixedGLM.from_formula(
        formula, {"listener": "0 + C(listener)", "item": "0 + C(item)"}, df)
    res = model.fit_vb()
    out = {f"fe_{n}": float(v) for n, v in zip(model.exog_names, res.fe_mean, strict=False)}
    sd = np.exp(res.vcp_mean)  # vcp_mean is the log SD of each random effect
    out.update(sd_listener=float(sd[0]), sd_item=float(sd[1]),
               pc_typical=float(_expit(res.fe_mean[0])))
    return out


def bayes_factor(k: int, n: int) -> float:
    """One-sided BF10 (H1: p ~ U(0.5, 1)) against p = 0.5.

    >>> round(bayes_factor(9, 10), 1)
    18.5
    """
    f = lambda p: np.exp(k * np.log(p) + (n - k) * np.log1p(-p) - n * np.log(0.5))  # noqa: E731
    return float(2 * integrate.quad(f, 0.5, 1.0, limit=200)[0])


def _expit(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))
