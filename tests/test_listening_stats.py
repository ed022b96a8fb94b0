"""Reference values of docs/listening.md#reference-values and the simulation check of the
equivalence claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seofp_lab.listening import power, stats
from seofp_lab.listening.psychometric import fit_ladder, psi, threshold

NS = (10, 16, 20, 30, 32, 50, 96, 100)
K05 = (9, 12, 15, 20, 22, 32, 57, 59)
K01 = (10, 14, 16, 22, 24, 34, 60, 63)


@pytest.mark.parametrize(("n", "k05", "k01"), list(zip(NS, K05, K01, strict=False)))
def test_min_correct_reference_table(n: int, k05: int, k01: int) -> None:
    assert stats.min_correct(n) == k05
    assert stats.min_correct(n, 0.01) == k01
    assert stats.p_value(k05, n) < 0.05 <= stats.p_value(k05 - 1, n)


@pytest.mark.parametrize(("k", "n", "p"), [(8, 10, 0.055), (14, 20, 0.058), (19, 30, 0.100),
                                           (31, 50, 0.060)])
def test_published_off_by_one_counts_are_not_significant(k: int, n: int, p: float) -> None:
    assert stats.p_value(k, n) == pytest.approx(p, abs=0.0015)


def test_dprime_test_value() -> None:
    r = stats.sdt_from_rates(0.75, 0.30)
    assert r["pc_unbiased"] == pytest.approx(0.7256, abs=1e-4)
    assert r["dprime_differencing"] == pytest.approx(1.869, abs=1e-3)
    assert r["dprime_independent"] == pytest.approx(1.661, abs=1e-3)
    assert stats.pc_from_dprime(r["dprime_differencing"]) == pytest.approx(0.7256, abs=1e-4)


@pytest.mark.parametrize(("margin", "d"), [(0.575, 0.95), (0.60, 1.12), (0.65, 1.42)])
def test_margin_table_dprimes(margin: float, d: float) -> None:
    assert stats.dprime_from_pc(margin) == pytest.approx(d, abs=0.006)


def test_power_tables() -> None:
    got = [[power.detection_trials(p, pw) for p in (0.60, 0.65, 0.70, 0.75)] for pw in (0.8, 0.9)]
    assert got == [[169, 76, 42, 28], [224, 102, 58, 35]]
    assert [power.equivalence_trials(m) for m in (0.575, 0.60, 0.65)] == [292, 164, 77]
    assert power.detection_power(32, 0.75) == pytest.approx(0.85, abs=0.005)
    # "settled": every larger N keeps the power
    n = power.detection_trials(0.65)
    assert all(power.detection_power(m, 0.65) >= 0.8 for m in range(n, n + 60))
    assert power.detection_power(n - 1, 0.65) < 0.8


def test_bayes_factor_test_values() -> None:
    assert stats.bayes_factor(9, 10) == pytest.approx(18.5, abs=0.05)
    assert stats.bayes_factor(300, 600) == pytest.approx(0.051, abs=0.001)


def test_clopper_pearson_is_exact_not_normal() -> None:
    lo, hi = stats.clopper_pearson(9, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.555, 0.9975)  # the normal approx. exceeds 1
    # one-sided 95 % bound = upper end of the two-sided 90 % interval
    assert stats.cp_upper(16, 32) == pytest.approx(stats.clopper_pearson(16, 32, 0.10)[1])
    assert stats.cp_upper(16, 32) == pytest.approx(0.6559, abs=1e-4)


def test_holm_not_holm_sidak() -> None:
    df = pd.DataFrame({"listener": np.repeat([1, 2, 3], 32),
                       "correct": np.r_[np.ones(27), np.zeros(5), np.ones(23), np.zeros(9),
                                        np.ones(16), np.zeros(16)]})
    pl = stats.per_listener(df)
    p = pl.p.to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, p[order] * np.array([3, 2, 1])))
    assert np.allclose(pl.p_holm.to_numpy()[order], holm)
    assert list(pl.reject_holm) == [True, True, False]


def test_gee_bound_is_wider_than_the_pooled_one_when_listeners_differ() -> None:
    rng = np.random.default_rng(0)
    p = np.repeat([0.5, 0.5, 0.9, 0.5, 0.6, 0.5, 0.8, 0.5], 32)
    df = pd.DataFrame({"listener": np.repeat(np.arange(8), 32),
                       "correct": (rng.random(len(p)) < p).astype(int)})
    b = stats.gee_bound(df)
    assert b.method == "gee" and b.rho > 0
    k, n = int(df.correct.sum()), len(df)
    assert b.upper > stats.cp_upper(k, n)
    assert stats.effective_n(8, 32, b.rho) < n


def test_gee_falls_back_when_undefined() -> None:
    df = pd.DataFrame({"listener": np.repeat([1, 2], 10), "correct": 1})
    assert stats.gee_bound(df).method == "t"


def test_psychometric_fit_recovers_a_known_threshold() -> None:
    levels = np.array([-12, -6, 0, 6, 12, 18, 24], float)
    n = np.full(7, 400)
    k = np.round(psi(levels, 6.0, 3.0, 0.02) * n).astype(int)
    fit = fit_ladder(levels, k, n, boot=50)
    assert fit.x75 == pytest.approx(threshold(0.75, 6.0, 3.0, 0.02), abs=0.6)
    assert fit.x75_ci[0] < fit.x75 < fit.x75_ci[1]
    assert 0.0 <= fit.lam <= 0.06 and fit.deviance_p > 0.05


def test_equivalence_claim_by_simulation() -> None:
    """24 listeners x 32 trials (the design): listeners who hear nothing give the claim >= 80 %
    of the time; at a true P̄c equal to the margin, false equivalence stays <= 5 % (plus two
    Monte-Carlo standard errors at these modest reps; the benchmark runs more)."""
    null = power.simulate_equivalence(24, 32, 0.5, 0.575, reps=60, seed=1)
    assert null.claims >= 0.8
    at_margin = power.simulate_equivalence(24, 32, 0.575, 0.575, reps=300, spread=0.1, seed=2)
    assert at_margin.claims <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 300)
    pooled = power.simulate_equivalence(24, 32, 0.575, 0.575, reps=300, spread=0.3, seed=3,
                                        method="pooled")
    assert pooled.claims > at_margin.claims  # why the pooled bound is not used
