"""Power and sample size (docs/listening.md#power), exact for pooled trials, simulated for
listeners.

Exact power is saw-toothed in N, so "trials needed" is the N from which every larger N (up to
``n_max``) reaches the power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from seofp_lab.listening.stats import gee_bound, min_correct, t_bound


def detection_power(n: int, pc: float, alpha: float = 0.05) -> float:
    """P(exact one-sided test rejects chance | n trials, true Pc)."""
    return float(stats.binom.sf(min_correct(n, alpha) - 1, n, pc))


def _settled(power: np.ndarray, target: float) -> int:
    below = np.nonzero(power < target)[0]
    return int(below[-1]) + 2 if len(below) else 1  # power[i] is for n = i + 1


def detection_trials(pc: float, power: float = 0.8, alpha: float = 0.05, n_max: int = 2000
                     ) -> int:
    """Pooled trials from which detection power stays >= ``power``.

    >>> detection_trials(0.60), detection_trials(0.65)
    (169, 76)
    """
    n = np.arange(1, n_max + 1)
    k = stats.binom.ppf(1 - alpha, n, 0.5) + 1
    return _settled(stats.binom.sf(k - 1, n, pc), power)


def equivalence_power(n: int | np.ndarray, pc: float, margin: float, alpha: float = 0.05
                      ) -> np.ndarray | float:
    """P(one-sided CP upper bound < margin | n pooled independent trials, true Pc).

    The CP bound of k is below the margin iff P(Bin(n, margin) <= k) < alpha, so the largest
    such k is ``binom.ppf(alpha, n, margin) - 1`` (vectorised over n).
    """
    n_arr = np.atleast_1d(np.asarray(n))
    k_max = stats.binom.ppf(alpha, n_arr, margin) - 1
    k_max = np.where(stats.binom.cdf(k_max + 1, n_arr, margin) < alpha, k_max + 1, k_max)
    out = np.where(k_max >= 0, stats.binom.cdf(k_max, n_arr, pc), 0.0)
    return float(out[0]) if np.ndim(n) == 0 else out


def equivalence_trials(margin: float, power: float = 0.8, pc: float = 0.5, alpha: float = 0.05,
                       n_max: int = 3000) -> int:
    """Pooled trials (homogeneous listeners) from which equivalence power stays >= ``power``.

    >>> [equivalence_trials(m) for m in (0.575, 0.60, 0.65)]
    [292, 164, 77]
    """
    return _settled(equivalence_power(np.arange(1, n_max + 1), pc, margin, alpha), power)


@dataclass(frozen=True)
class Simulated:
    claims: float  # fraction of simulated studies whose bound fell below the margin
    reps: int

    @property
    def se(self) -> float:
        return float(np.sqrt(self.claims * (1 - self.claims) / self.reps))


def simulate_listeners(n_listeners: int, trials: int, pc_mean: float, spread: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Per-listener Pc: 0.5 + a Beta-distributed gain whose mean puts the average at pc_mean.

    ``spread`` in [0, 1): 0 gives identical listeners; larger values make listeners differ
    more (some near chance, some well above), which is what breaks the pooled bound.
    """
    gain = pc_mean - 0.5
    if gain <= 0 or spread <= 0:
        return np.full(n_listeners, pc_mean)
    m = gain / 0.5  # mean of the Beta on [0, 1], scaled to [0.5, 1]
    conc = 1.0 / spread - 1.0
    return 0.5 + 0.5 * rng.beta(m * conc, (1 - m) * conc, n_listeners)


def simulate_equivalence(n_listeners: int, trials: int, pc_mean: float, margin: float,
                         reps: int = 200, spread: float = 0.1, method: str = "gee",
                         alpha: float = 0.05, seed: int = 0) -> Simulated:
    """Fraction of simulated studies that claim equivalence with the listener-level bound."""
    import pandas as pd  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    listener = np.repeat(np.arange(n_listeners), trials)
    hits = 0
    for _ in range(reps):
        p = simulate_listeners(n_listeners, trials, pc_mean, spread, rng)
        correct = (rng.random((n_listeners, trials)) < p[:, None]).astype(float).ravel()
        df = pd.DataFrame({"listener": listener, "correct": correct})
        if method == "pooled":
            upper = stats.beta.ppf(1 - alpha, correct.sum() + 1, len(correct) - correct.sum())
        else:
            upper = (gee_bound if method == "gee" else t_bound)(df, 1 - alpha).upper
        hits += upper < margin
    return Simulated(hits / reps, reps)


def plan_table(margin: float = 0.575, alpha: float = 0.05) -> str:
    """The text ``seofp study plan`` prints."""
    lines = [f"Detection (pooled exact binomial, one-sided alpha = {alpha:.2f}): trials needed",
             "  true Pc    " + "  ".join(f"{p:>5.2f}" for p in (0.60, 0.65, 0.70, 0.75))]
    for pw in (0.8, 0.9):
        lines.append(f"  power {pw:.1f}  " + "  ".join(
            f"{detection_trials(p, pw, alpha):>5d}" for p in (0.60, 0.65, 0.70, 0.75)))
    lines.append("Equivalence at true Pc 0.5, homogeneous listeners (pooled trials, power 0.8):")
    for m in sorted({margin, 0.575, 0.60, 0.65}):
        lines.append(f"  margin {m:.3f}: {equivalence_trials(m, 0.8, 0.5, alpha)} trials")
    return "\n".join(lines)
