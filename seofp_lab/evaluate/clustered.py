"""Inference on clustered paired differences: a cluster bootstrap CI and a mixed model.

The test set's mixtures are not independent: each source utterance is mixed more than once, and
utterances come from a few talkers. Both estimates here treat a cluster (an utterance, or a talker)
as the unit that was sampled; docs/statistics.md explains the choices.

Cluster bootstrap (:func:`cluster_bootstrap_ci`): draw ``G`` clusters with replacement from the
``G`` observed ones and recompute the mean difference over every mixture of the drawn clusters
(each draw of a cluster brings all of its mixtures). The interval is Hesterberg's *expanded
percentile* interval: the percentile interval of the resampled means, with its tail probability
taken from a t distribution with ``G - 1`` degrees of freedom and widened by ``sqrt(G / (G - 1))``.
Why not BCa: with 10 to 40 clusters the main error of a bootstrap interval of a mean is that it is
too narrow (the bootstrap variance divides by ``G``, and uses normal rather than t tails); BCa
corrects skewness and bias, not that, and its acceleration comes from a jackknife over the same
few clusters. The expansion removes the narrowness exactly for normal data, and
``benchmarks/bench_noninferiority.py`` measures its one-sided error rate at the margin.

Mixed model (:func:`mixed_model`): ``d ~ 1`` with a random intercept per talker and one per
utterance nested in its talker (statsmodels ``MixedLM``, REML). Its fixed intercept is the mean
difference; its Wald SE and CI are a second, model-based estimate beside the bootstrap one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHUNK = 2048  # resamples per vectorised batch: (CHUNK, G) indices stay small for any G


def cluster_codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes ``0 .. G-1`` for cluster labels, in order of first appearance, and ``G``.

    >>> cluster_codes(np.array(["b", "a", "b"]))
    (array([0, 1, 0]), 2)
    """
    codes, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
    return codes.astype(np.int64), len(uniques)


def cluster_means(d: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean of ``d`` per cluster, one value per cluster (order of first appearance)."""
    codes, g = cluster_codes(labels)
    return np.bincount(codes, d, g) / np.bincount(codes, minlength=g)


def expanded_tail(g: int, confidence: float) -> float:
    """The one-sided tail probability of the expanded percentile interval for ``g`` clusters.

    ``Phi(-sqrt(g / (g - 1)) * t_{1 - alpha/2, g - 1})``: smaller than ``alpha / 2``, so the
    interval reaches further out; it tends to ``alpha / 2`` as ``g`` grows.

    >>> round(expanded_tail(10, 0.95), 4), round(expanded_tail(1000, 0.95), 4)
    (0.0086, 0.0248)
    """
    from scipy.stats import norm, t  # noqa: PLC0415

    alpha = 1.0 - confidence
    return float(norm.cdf(-math.sqrt(g / (g - 1)) * t.ppf(1 - alpha / 2, g - 1)))


def cluster_bootstrap_ci(
    d: np.ndarray,
    labels: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float]:
    """Expanded percentile cluster-bootstrap CI of ``mean(d)`` (the mean over mixtures).

    Args:
        d: differences, shape (n,).
        labels: the cluster of each difference, shape (n,); a cluster is resampled whole.
        confidence: CI level.
        n_resamples: bootstrap resamples.
        seed: seeds the resampling.

    Returns:
        (low, high); NaN for fewer than 2 clusters.
    """
    d = np.asarray(d, float)
    codes, g = cluster_codes(np.asarray(labels))
    if g < 2:
        return float("nan"), float("nan")
    sums = np.bincount(codes, d, g)
    sizes = np.bincount(codes, minlength=g).astype(float)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for start in range(0, n_resamples, CHUNK):
        idx = rng.integers(g, size=(min(CHUNK, n_resamples - start), g))
        stats[start:start + len(idx)] = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    tail = expanded_tail(g, confidence)
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class MixedEstimate:
    """The mixed model's intercept (the mean difference), its SE and Wald CI, and how it went."""

    delta: float
    se: float
    ci_low: float
    ci_high: float
    model: str  # the random intercepts fitted, e.g. "talker + utterance"; "" when none
    note: str  # why a number is NaN, or what was simplified; "" when the full model fitted


def _nan(delta: float, note: str, model: str = "") -> MixedEstimate:
    nan = float("nan")
    return MixedEstimate(delta, nan, nan, nan, model, note)


def _variances(res: object, model: str) -> dict[str, float]:
    """The fitted variance components, as fractions of the variance of ``d``."""
    out = {}
    if model.startswith("talker"):
        out["talker"] = float(res.cov_re.iloc[0, 0])
    if model == "utterance":
        out["utterance"] = float(res.cov_re.iloc[0, 0])
    elif model.endswith("utterance"):
        out["utterance"] = float(res.vcomp[0])
    return out


def mixed_model(
    d: np.ndarray, utterance: np.ndarray, talker: np.ndarray | None, confidence: float = 0.95
) -> MixedEstimate:
    """Fit ``d ~ 1`` with random intercepts for talker and utterance-in-talker; never raises.

    A level is left out when the data cannot identify it (one talker, or talkers unknown: no talker
    intercept; one mixture per utterance: the utterance intercept is the residual), and ``model``
    and ``note`` say so. A failed or non-converged fit gives NaN with the reason in ``note``.

    Args:
        d: differences, shape (n,).
        utterance: the utterance of each difference, shape (n,).
        talker: the talker of each difference, shape (n,), or None when unknown.
        confidence: level of the Wald CI.
    """
    d = np.asarray(d, float)
    mean = float(np.mean(d)) if len(d) else float("nan")
    n_utt = len(set(np.asarray(utterance).tolist()))
    n_tal = 0 if talker is None else len(set(np.asarray(talker).tolist()))
    if len(d) < 3 or n_utt < 2:
        return _nan(mean, f"too few data for a mixed model ({len(d)} mixtures, {n_utt} utterances)")
    scale = float(np.std(d, ddof=1))
    if not scale > 1e-12 * max(1.0, abs(mean)):  # equal up to the rounding of B - A
        return _nan(mean, "every difference is equal: no variance to model")
    use_talker = n_tal >= 2 and n_tal < n_utt
    use_utt = n_utt < len(d)
    notes = []
    if not use_talker:
        notes.append("talkers unknown" if talker is None else f"{n_tal} talker(s) for {n_utt} "
                     "utterances: no talker intercept")
    if not use_utt:
        notes.append("one mixture per utterance: no utterance intercept")
    df = pd.DataFrame({"d": d / scale,  # unit variance: the optimiser is scale-sensitive
                       "utterance": np.asarray(utterance).astype(str),
                       "talker": (np.zeros(len(d)) if talker is None else np.asarray(talker))
                       .astype(str)})
    if use_talker and use_utt:
        kw = {"groups": "talker", "re_formula": "1",
              "vc_formula": {"utterance": "0 + C(utterance)"}}
        model = "talker + utterance"
    elif use_talker:
        kw, model = {"groups": "talker", "re_formula": "1"}, "talker"
    elif use_utt:
        kw, model = {"groups": "utterance", "re_formula": "1"}, "utterance"
    else:
        return _nan(mean, "; ".join(notes) + ": nothing to model (the units are independent; "
                    "the t-test applies)")
    from statsmodels.regression.mixed_linear_model import MixedLM  # noqa: PLC0415

    try:
        with warnings.catch_warnings():  # boundary/convergence warnings: read from res below
            warnings.simplefilter("ignore")
            res = MixedLM.from_formula("d ~ 1", df, **kw).fit(reml=True, method=["lbfgs", "powell"])
    except Exception as exc:  # noqa: BLE001 - a second estimate must never stop the comparison
        return _nan(mean, f"fit failed: {type(exc).__name__}: {exc}", model)
    if not res.converged:
        return _nan(mean, "fit did not converge", model)
    delta = float(res.fe_params["Intercept"]) * scale
    se = float(res.bse["Intercept"]) * scale
    if not (math.isfinite(delta) and math.isfinite(se)):
        return _nan(mean, "singular fit: the intercept's SE is not finite", model)
    low, high = (float(v) * scale for v in res.conf_int(1.0 - confidence).loc["Intercept"])
    for name, var in _variances(res, model).items():
        if var < 1e-4:  # of the variance of d: the REML optimum is at (or next to) 0
            notes.append(f"{name} variance ≈ 0")
    return MixedEstimate(delta, se, low, high, model, "; ".join(notes))


__all__ = ["MixedEstimate", "cluster_bootstrap_ci", "cluster_codes", "cluster_means",
           "expanded_tail", "mixed_model"]
