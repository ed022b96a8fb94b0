"""A rater model for ABX answers: each listener's bias and inconsistency, by maximum likelihood
(docs/listening_analysis.md#rater-model).

In the manner of the subject model of Li and Bampis (Netflix ``sureal``), where an opinion
score is the stimulus' true quality plus a listener bias plus noise of listener-specific size
(the inconsistency), adapted to binary ABX answers. Listener s answers "A" on a trial with
x = +1 (X is A) or x = -1 (X is B) with probability

    P("A") = expit((q x + b_s) / v_s),

where q is the population's discriminability (logit scale), b_s the listener's bias towards
answering "A" (0: none) and v_s > 0 the listener's inconsistency (the size of their decision
noise relative to a typical listener's; 1: typical, larger: answers less tied to what was
played). Listener parameters are random effects, b_s ~ N(0, sd_bias^2) and
log v_s ~ N(0, sd_log_v^2), so that listeners with few trials (or perfect scores) still get
finite estimates. (q, sd_bias, sd_log_v) maximise the marginal likelihood, integrated over both
random effects by a product Gauss–Hermite rule; each listener's bias and inconsistency are then
their posterior means (empirical Bayes). A listener's data enter only through four counts
(X = A or B, answered A or B), so the fit takes milliseconds.

With q near 0 (nobody hears a difference) inconsistency is not identified: every v_s gives
chance performance and the estimates stay at the prior (v_s near 1); the bias still is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

NODES = 24  # Gauss–Hermite nodes per random effect


@dataclass
class RaterFit:
    """The fitted population parameters and one row per listener."""

    q: float  # discriminability (logit) of a typical listener (b = 0, v = 1)
    sd_bias: float
    sd_log_inconsistency: float
    loglik: float
    converged: bool
    listeners: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def pc_typical(self) -> float:
        """Proportion correct of an unbiased, typically consistent listener."""
        return float(special.expit(self.q))


def _counts(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Listener ids and their (X=A said A, X=A said B, X=B said A, X=B said B) counts."""
    xa = (df["x_is"] == "A").to_numpy()
    sa = (df["response"] == "A").to_numpy()
    codes, ids = pd.factorize(df["listener"])
    c = np.stack([np.bincount(codes, w, minlength=len(ids))
                  for w in (xa & sa, xa & ~sa, ~xa & sa, ~xa & ~sa)], axis=1).astype(float)
    return np.asarray(ids), c


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal nodes and weights (probabilists' Hermite)."""
    z, w = np.polynomial.hermite_e.hermegauss(NODES)
    return z, w / w.sum()


def _log_terms(theta: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """log p(counts_s | b, v) + log weight at every node pair: shape (L, NODES, NODES)."""
    q, sd_b, sd_u = theta[0], np.exp(theta[1]), np.exp(theta[2])
    z, w = _grid()
    b = sd_b * z[:, None]  # (nodes, 1)
    v = np.exp(sd_u * z[None, :])  # (1, nodes)
    la1 = -np.logaddexp(0, -(q + b) / v)  # log P("A" | X = A)
    la0 = -np.logaddexp(0, (q + b) / v)
    lb1 = -np.logaddexp(0, -(-q + b) / v)  # log P("A" | X = B)
    lb0 = -np.logaddexp(0, (-q + b) / v)
    c = counts[:, :, None, None]
    ll = c[:, 0] * la1 + c[:, 1] * la0 + c[:, 2] * lb1 + c[:, 3] * lb0
    lw = np.log(w)[:, None] + np.log(w)[None, :]
    return ll + lw, b, v


def _neg_loglik(theta: np.ndarray, counts: np.ndarray) -> float:
    t, _, _ = _log_terms(theta, counts)
    return -float(special.logsumexp(t, axis=(1, 2)).sum())


def fit_raters(df: pd.DataFrame) -> RaterFit:
    """Fit the rater model to ABX trials (columns ``listener``, ``x_is``, ``response``).

    Raises:
        ValueError: fewer than 2 listeners or no trials.
    """
    ids, counts = _counts(df)
    if len(ids) < 2:
        raise ValueError(f"Expected trials of at least 2 listeners but got {len(ids)}")
    n = counts.sum(axis=1)
    pc = (counts[:, 0] + counts[:, 3] + 0.5) / (n + 1)
    start = np.array([float(special.logit(np.clip(pc.mean(), 0.51, 0.99))), np.log(0.3),
                      np.log(0.3)])
    bounds = [(-5.0, 10.0), (np.log(0.01), np.log(5.0)), (np.log(0.01), np.log(3.0))]
    res = optimize.minimize(_neg_loglik, start, args=(counts,), method="L-BFGS-B",
                            bounds=bounds)
    t, b, v = _log_terms(res.x, counts)
    post = np.exp(t - special.logsumexp(t, axis=(1, 2), keepdims=True))  # (L, nodes, nodes)
    bias = np.einsum("lij,i->l", post, b[:, 0])
    bias_sd = np.sqrt(np.maximum(np.einsum("lij,i->l", post, b[:, 0] ** 2) - bias**2, 0))
    log_v = np.einsum("lij,j->l", post, np.log(v[0]))
    log_v_sd = np.sqrt(np.maximum(np.einsum("lij,j->l", post, np.log(v[0]) ** 2) - log_v**2,
                                  0))
    q = res.x[0]
    p_a = special.expit((q + b) / v)  # (nodes, nodes)
    p_b = special.expit((-q + b) / v)
    pc_model = np.einsum("lij,ij->l", post, 0.5 * (p_a + 1 - p_b))
    table = pd.DataFrame({
        "listener": ids, "trials": n.astype(int), "pc": (counts[:, 0] + counts[:, 3]) / n,
        "bias": bias, "bias_sd": bias_sd, "inconsistency": np.exp(log_v),
        "log_inconsistency_sd": log_v_sd, "pc_model": pc_model})
    return RaterFit(float(q), float(np.exp(res.x[1])), float(np.exp(res.x[2])),
                    float(-res.fun), bool(res.success), table)


def simulate_raters(n_listeners: int, trials: int, q: float, sd_bias: float,
                    sd_log_inconsistency: float, seed: int = 0
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ABX answers from the rater model with known parameters (for tests and benchmarks).

    Returns:
        (trials with listener, x_is, response, correct; the true bias and inconsistency per
        listener).
    """
    rng = np.random.default_rng(seed)
    bias = rng.normal(0, sd_bias, n_listeners)
    v = np.exp(rng.normal(0, sd_log_inconsistency, n_listeners))
    listener = np.repeat(np.arange(n_listeners), trials)
    x = np.tile(np.resize([1, -1], trials), n_listeners)
    rng.shuffle(x)
    p_a = special.expit((q * x + bias[listener]) / v[listener])
    said_a = rng.random(len(x)) < p_a
    x_is = np.where(x > 0, "A", "B")
    response = np.where(said_a, "A", "B")
    df = pd.DataFrame({"listener": listener, "x_is": x_is, "response": response,
                       "correct": (x_is == response).astype(int)})
    return df, pd.DataFrame({"listener": np.arange(n_listeners), "bias": bias,
                             "inconsistency": v})
