"""The rater model (seofp_lab/listening/raters.py) recovers known simulated listener bias and
inconsistency, and the analysis reports listener reliability."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.listening.raters import fit_raters, simulate_raters


def test_known_listener_parameters_are_recovered() -> None:
    df, truth = simulate_raters(80, 150, q=1.2, sd_bias=0.6, sd_log_inconsistency=0.5, seed=0)
    fit = fit_raters(df)
    assert fit.converged
    assert fit.q == pytest.approx(1.2, abs=0.15)
    assert fit.sd_bias == pytest.approx(0.6, abs=0.12)
    assert fit.sd_log_inconsistency == pytest.approx(0.5, abs=0.12)
    est = fit.listeners.set_index("listener").loc[truth.listener]
    assert np.corrcoef(est.bias, truth.bias)[0, 1] > 0.85
    assert np.corrcoef(np.log(est.inconsistency), np.log(truth.inconsistency))[0, 1] > 0.8
    # the most and least consistent simulated listeners are told apart
    order = truth.inconsistency.argsort().to_numpy()
    assert est.inconsistency.iloc[order[:10]].mean() < est.inconsistency.iloc[order[-10:]].mean()
    assert ((est.pc_model > 0.5) & (est.pc_model < 1)).all()


def test_listeners_who_hear_nothing_keep_their_bias_and_a_chance_model() -> None:
    df, truth = simulate_raters(30, 100, q=0.0, sd_bias=0.8, sd_log_inconsistency=0.3, seed=1)
    fit = fit_raters(df)
    assert abs(fit.q) < 0.15 and fit.pc_typical == pytest.approx(0.5, abs=0.04)
    est = fit.listeners.set_index("listener").loc[truth.listener]
    assert np.corrcoef(est.bias, truth.bias)[0, 1] > 0.8  # bias is identified without q
    assert est.pc_model.between(0.45, 0.55).all()


def test_one_listener_is_refused() -> None:
    df, _ = simulate_raters(1, 20, 1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="at least 2 listeners"):
        fit_raters(df)
