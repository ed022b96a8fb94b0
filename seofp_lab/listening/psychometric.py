"""Psychometric fit of the JND ladder (docs/listening.md#ladder, Wichmann & Hill 2001).

psi(x) = 0.5 + (0.5 - lam) F((x - alpha) / beta), F logistic, guess rate 0.5, lapse
lam in [0, 0.06], by bounded binomial maximum likelihood. x is the ladder gain G in dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

LAPSE_MAX = 0.06


def psi(x: np.ndarray, alpha: float, beta: float, lam: float) -> np.ndarray:
    """Proportion correct at level x (dB)."""
    return 0.5 + (0.5 - lam) / (1.0 + np.exp(-(np.asarray(x, float) - alpha) / beta))


def threshold(p: float, alpha: float, beta: float, lam: float) -> float:
    """x_p = alpha + beta logit((p - 0.5) / (0.5 - lam)); nan where p is out of reach."""
    q = (p - 0.5) / (0.5 - lam)
    if not 0.0 < q < 1.0:
        return float("nan")
    return float(alpha + beta * np.log(q / (1 - q)))


@dataclass(frozen=True)
class PsychometricFit:
    alpha: float
    beta: float
    lam: float
    x75: float
    x75_ci: tuple[float, float]
    x_margin: float  # the level at Pc = the primary margin
    deviance: float
    deviance_df: int
    deviance_p: float

    @property
    def audibility_margin_db(self) -> float:
        """M = x_75 - 0 dB: how much louder SEOFP's artifacts could get before being heard."""
        return self.x75


def _nll(theta: np.ndarray, x: np.ndarray, k: np.ndarray, n: np.ndarray) -> float:
    p = np.clip(psi(x, *theta), 1e-9, 1 - 1e-9)
    return -float(np.sum(k * np.log(p) + (n - k) * np.log1p(-p)))


def _fit(x: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    span = max(float(np.ptp(x)), 1.0)
    best = None
    for a0 in (float(np.median(x)), float(x.min()), float(x.max())):
        res = optimize.minimize(_nll, [a0, span / 6, 0.02], args=(x, k, n), method="L-BFGS-B",
                                bounds=[(x.min() - span, x.max() + span), (span / 100, span * 2),
                                        (0.0, LAPSE_MAX)])
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def fit_ladder(levels: np.ndarray, k: np.ndarray, n: np.ndarray, margin: float = 0.575,
               boot: int = 1000, seed: int = 0) -> PsychometricFit:
    """Fit counts per level; x_75 with a parametric-bootstrap 95 % CI.

    Args:
        levels: ladder gains G in dB, shape (levels,).
        k: correct counts per level, shape (levels,).
        n: trials per level, shape (levels,).
        margin: the primary margin p_U; its level is reported too.
        boot: parametric-bootstrap resamples.
        seed: bootstrap seed.
    """
    x, k, n = (np.asarray(v, float) for v in (levels, k, n))
    if len(x) < 3:
        raise ValueError(f"Expected at least 3 ladder levels but got {len(x)}")
    theta = _fit(x, k, n)
    p_hat = psi(x, *theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        obs = k / n
        dev = 2 * np.sum(np.where(k > 0, k * np.log(obs / p_hat), 0)
                         + np.where(n - k > 0, (n - k) * np.log((1 - obs) / (1 - p_hat)), 0))
    rng = np.random.default_rng(seed)
    xs = []
    for _ in range(boot):
        kb = rng.binomial(n.astype(int), p_hat)
        xs.append(threshold(0.75, *_fit(x, kb, n)))
    xs_arr = np.asarray(xs, float)
    xs_arr = xs_arr[np.isfinite(xs_arr)]
    ci = (float(np.quantile(xs_arr, 0.025)), float(np.quantile(xs_arr, 0.975))) if len(
        xs_arr) else (float("nan"), float("nan"))
    ddf = max(len(x) - 3, 1)
    return PsychometricFit(float(theta[0]), float(theta[1]), float(theta[2]),
                           threshold(0.75, *theta), ci, threshold(margin, *theta), float(dev),
                           ddf, float(stats.chi2.sf(dev, ddf)))
