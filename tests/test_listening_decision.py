"""The one decision rule (seofp_lab/listening/decision.py): property tests over simulated
studies, every branch reached, and the same claim in analyze, the MLflow record and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seofp_lab.listening.decision import (
    VERDICTS,
    Claim,
    decide,
    validity_failures,
    verdict_of,
)
from seofp_lab.listening.stats import gee_bound, p_value


def simulate(n_listeners: int, trials: int, pc_mean: float, spread: float, seed: int
             ) -> pd.DataFrame:
    """Main trials of listeners whose true Pc scatter around ``pc_mean`` (clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    pcs = np.clip(pc_mean + spread * rng.standard_normal(n_listeners), 0.0, 1.0)
    correct = rng.random((n_listeners, trials)) < pcs[:, None]
    return pd.DataFrame({"listener": np.repeat(np.arange(n_listeners), trials),
                         "correct": correct.ravel().astype(int)})


@st.composite
def studies(draw: st.DrawFn) -> tuple[pd.DataFrame, float, float, list[str]]:
    main = simulate(draw(st.integers(0, 30)), draw(st.integers(1, 60)),
                    draw(st.floats(0.3, 1.0)), draw(st.floats(0.0, 0.3)),
                    draw(st.integers(0, 2**32 - 1)))
    margin = draw(st.floats(0.51, 0.95))
    alpha = draw(st.sampled_from([0.01, 0.05, 0.1]))
    failures = draw(st.lists(st.text("abcdefgh /:0123456789", min_size=1, max_size=30),
                             max_size=3))
    return main, margin, alpha, failures


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_every_claim_follows_the_rule(case: tuple) -> None:
    main, margin, alpha, failures = case
    claim = decide(main, margin, alpha, failures)
    assert claim.verdict in VERDICTS
    listeners = main.listener.nunique()
    assert (claim.listeners, claim.trials, claim.margin, claim.alpha) == (
        listeners, len(main), margin, alpha)
    if listeners >= 2:  # the estimate and both bounds come from one clustered model
        b = gee_bound(main, 1 - alpha)
        assert (claim.estimate, claim.lower, claim.upper, claim.method) == (
            b.pc, b.lower, b.upper, b.method)
        assert claim.lower <= claim.estimate <= claim.upper
    if failures:
        assert claim.verdict == "invalid" and claim.reasons == tuple(failures)
        assert claim.label == "invalid: " + "; ".join(failures)
    elif listeners < 2:
        assert claim.verdict == "inconclusive"
    else:
        lo, up = claim.lower, claim.upper
        assert (claim.verdict == "equivalent") == (up < margin)
        assert (claim.verdict == "noticeable") == (lo > margin)
        assert (claim.verdict == "detectable") == (lo > 0.5 and lo <= margin <= up)
        assert (claim.verdict == "inconclusive") == (lo <= 0.5 and lo <= margin <= up)
        assert claim.label == claim.verdict
    again = Claim.from_json(claim.to_json())
    assert again.label == claim.label and again.text == claim.text


# one simulated study per branch: (listeners, trials, true mean Pc, spread, margin, failures)
BRANCHES = {
    "equivalent": (30, 40, 0.5, 0.02, 0.575, []),
    "noticeable": (24, 40, 0.85, 0.05, 0.575, []),
    "detectable": (24, 40, 0.6, 0.08, 0.6, []),
    "inconclusive": (3, 10, 0.55, 0.1, 0.575, []),
    "invalid": (30, 40, 0.5, 0.02, 0.575, ["null trials 20/20 correct: the blinding leaks"]),
}


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_branch_is_reached_by_a_simulated_study(verdict: str) -> None:
    n, t, pc, spread, margin, failures = BRANCHES[verdict]
    claim = decide(simulate(n, t, pc, spread, seed=1), margin, 0.05, failures)
    assert claim.verdict == verdict, claim.text
    assert claim.text.lower().startswith(claim.label.lower())


def test_too_few_listeners_and_no_trials_are_inconclusive_with_a_reason() -> None:
    one = decide(simulate(1, 50, 0.9, 0.0, 0), 0.575, 0.05)
    assert one.verdict == "inconclusive" and "at least 2" in one.reasons[0]
    assert np.isnan(one.estimate) and "no estimate" in one.text
    empty = decide(pd.DataFrame({"listener": [], "correct": []}), 0.575, 0.05, ["x"])
    assert empty.verdict == "invalid" and empty.trials == 0


def test_a_bound_exactly_at_the_margin_decides_nothing() -> None:
    assert verdict_of(0.45, 0.575, 0.575) == "inconclusive"  # "below" is strict
    assert verdict_of(0.575, 0.7, 0.575) == "detectable"  # "above" is strict
    assert verdict_of(float("nan"), 0.6, 0.575) == "inconclusive"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 30), st.integers(0, 30),
       st.integers(0, 30), st.integers(0, 30), st.floats(0.0, 1.0),
       st.sampled_from([0.01, 0.05]))
def test_validity_checks_fail_exactly_when_their_rule_says(
        null_k: int, extra: int, catch_failed: int, trap_failed: int, flagged: int,
        completed: int, max_flagged: float, alpha: float) -> None:
    null_n = null_k + extra
    catch_failed, trap_failed = min(catch_failed, completed), min(trap_failed, completed)
    flagged = min(flagged, completed)
    out = validity_failures(null_k, null_n, catch_failed, trap_failed, flagged, completed,
                            max_flagged, alpha)
    leak = null_n > 0 and p_value(null_k, null_n) < alpha
    assert any("blinding leaks" in f for f in out) == leak
    assert any("failed the catch" in f for f in out) == (catch_failed > completed / 2)
    assert any("failed the trap" in f for f in out) == (trap_failed > completed / 2)
    assert any("cheating detector" in f for f in out) == (
        completed > 0 and flagged / completed > max_flagged)
