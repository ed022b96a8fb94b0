"""The analysis on simulated trial tables, and `seofp study plan|analyze|export` end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import select
from synthetic_study import make_study

from seofp_lab.cli import main as seofp
from seofp_lab.listening import stats as S
from seofp_lab.listening.analysis import analyze
from seofp_lab.listening.bias import confusion_matrix, per_listener_bias
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.protocol import StudyDefinition
from seofp_lab.listening.store import TrialRow

STUDY = StudyDefinition(name="sim", baseline_dir=Path("b"), compressed_dir=Path("c"))


def _tables(pcs: list[float], seed: int = 0, catch_pc: float = 1.0, null_pc: float = 0.5,
            ladder: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Listeners with the given true Pc: 32 main, 4 catch, 4 null trials each."""
    rng = np.random.default_rng(seed)
    rows = []
    for lst, pc in enumerate(pcs):
        kinds = ["main"] * 32 + ["catch"] * 4 + ["null"] * 4 + (["ladder"] * 42 if ladder else [])
        for i, kind in enumerate(kinds):
            p = {"main": pc, "catch": catch_pc, "null": null_pc}.get(kind, 0.0)
            gain = None
            if kind == "ladder":
                gain = float([-12, -6, 0, 6, 12, 18, 24][i % 7])
                p = 0.5 + 0.47 / (1 + np.exp(-(gain - 8) / 3))
            x = "AB"[rng.integers(2)]
            correct = rng.random() < p
            rows.append({"listener": lst, "trial_index": i, "block": 1 + (i % 40 >= 20),
                         "trial_type": kind, "item": f"it{(i + 7 * lst) % 48}",
                         "snr": [0.0, 5.0, 10.0][i % 3], "noise": ["babble", "white"][i % 2],
                         "x_is": x, "response": x if correct else "AB".replace(x, ""),
                         "correct": int(correct), "rt_ms": 4000.0,
                         "answered_without_x": False, "blur_events": 0, "gain_db": gain})
    parts = pd.DataFrame({"listener": range(len(pcs)), "status": "done",
                          "screen_exclusion": None})
    return pd.DataFrame(rows), parts


def test_listeners_who_hear_nothing_support_the_equivalence_claim() -> None:
    trials, parts = _tables([0.5] * 24, seed=3)
    res = analyze(trials, parts, STUDY, boot=200)
    assert res.decision.verdict == "equivalent", res.text
    assert res.claim.startswith("Equivalent")
    assert res.metrics["upper_gee"] < 0.575 and res.metrics["analysed"] == 24
    assert res.metrics["equivalent"] == 1.0 and res.metrics["valid"] == 1.0
    assert res.metrics["null_leak"] == 0.0


def test_a_clearly_audible_difference_is_called_noticeable() -> None:
    trials, parts = _tables([0.85] * 20 + [0.6] * 4, seed=4)
    res = analyze(trials, parts, STUDY, boot=200)
    assert res.decision.verdict == "noticeable", res.text
    assert res.decision.lower > 0.575 and res.metrics["lower_gee"] == res.decision.lower
    assert res.metrics["listeners_holm"] >= 15 and res.metrics["dprime_differencing"] > 1.5


def test_exclusions_and_the_null_leak_stop() -> None:
    trials, parts = _tables([0.5] * 6, seed=5)
    trials.loc[(trials.listener == 0) & (trials.trial_type == "catch"), "correct"] = 0
    trials.loc[trials.listener == 1, "rt_ms"] = 900.0
    trials.loc[trials.trial_type == "null", "correct"] = 1  # every null right: a leak
    parts.loc[parts.listener == 2, ["status", "screen_exclusion"]] = ["screened_out",
                                                                      "headphone screen 3/6"]
    res = analyze(trials, parts, STUDY, boot=100)
    ex = res.tables["exclusions"].set_index("listener")
    assert ex.excluded.tolist() == [True, True, True, False, False, False]
    assert "catch 0/4" in ex.reasons[0] and "RT" in ex.reasons[1] and "screened" in ex.reasons[2]
    assert res.metrics["null_leak"] == 1.0 and "the blinding leaks" in res.text
    assert res.decision.verdict == "invalid" and res.metrics["valid"] == 0.0
    assert res.decision.label.startswith("invalid: null trials 20/20 correct")  # 5 completed
    assert res.metrics["analysed"] == 3


def test_trap_failures_exclude_listeners_and_flags_invalidate_the_claim() -> None:
    trials, parts = _tables([0.5] * 8, seed=9)
    traps = trials[trials.trial_type == "catch"].assign(trial_type="trap")
    trials = pd.concat([trials, traps.assign(trial_index=traps.trial_index + 100)])
    trials.loc[(trials.listener == 4) & (trials.trial_type == "trap"), "correct"] = 0
    res = analyze(trials, parts, STUDY, boot=20)
    ex = res.tables["exclusions"].set_index("listener")
    assert ex.excluded.tolist() == [i == 4 for i in range(8)] and "trap 0/4" in ex.reasons[4]
    assert res.metrics["trap_failed_listeners"] == 1
    assert res.decision.verdict != "invalid"  # one listener's failure excludes only them
    trials.loc[(trials.listener < 5) & (trials.trial_type == "trap"), "correct"] = 0
    res = analyze(trials, parts, STUDY, boot=20)
    assert res.decision.verdict == "invalid" and "5 of 8 listeners failed the trap" in (
        res.decision.label)
    flags = pd.DataFrame({"listener": [6], "flagged": [True], "reason": ["too fast"]})
    trials.loc[trials.trial_type == "trap", "correct"] = 1
    res = analyze(trials, parts, STUDY, boot=20, flags=flags)
    assert "flagged: too fast" in res.tables["exclusions"].set_index("listener").reasons[6]
    assert res.decision.label == ("invalid: 1 of 8 listeners flagged by the cheating detector "
                                  "(more than 0%)")
    lenient = STUDY.model_copy(update={"analysis": STUDY.analysis.model_copy(
        update={"max_flagged_fraction": 0.2})})
    res = analyze(trials, parts, lenient, boot=20, flags=flags)
    assert res.decision.verdict != "invalid" and res.metrics["analysed"] == 7



def test_ladder_gives_a_threshold_and_audibility_margin() -> None:
    trials, parts = _tables([0.5] * 8, seed=6, ladder=True)
    res = analyze(trials, parts, STUDY, boot=40)
    assert res.ladder is not None
    assert 2.0 < res.metrics["ladder_x75_db"] < 16.0  # the simulated listeners' x75 is ~8 dB
    assert "M = " in res.text


def test_cli_plan_prepare_analyze_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)
    study = make_study(tmp_path, utterances=4, baseline_run="run-b", compressed_run="run-c",
                       trials={"practice": 0, "blocks": 1, "test_per_block": 8,
                               "catch_per_block": 1, "null_per_block": 1, "break_seconds": 0})
    assert seofp(["study", "plan", str(study), "--reps", "0"]) == 0
    assert "169" in capsys.readouterr().out
    assert seofp(["study", "analyze", str(study)]) == 2  # nothing prepared yet: a clear error
    assert "seofp study prepare" in capsys.readouterr().err
    assert seofp(["study", "prepare", str(study)]) == 0
    assert "Manifest SHA-256" in capsys.readouterr().out
    service = StudyService(study)
    rng = np.random.default_rng(0)
    for _ in range(3):
        listener = service.listener(service.enroll())
        listener.consent("1", True)
        listener.save_metadata({})
        while (t := listener.next_trial()) is not None:
            answer = "AB"[rng.integers(2)]
            with service.store.session() as s:  # the served trial hides its type (blinding)
                row = s.scalar(select(TrialRow).where(TrialRow.public_id == t.public_id))
                if row.trial_type == "catch":  # an attentive listener passes the catch screen
                    answer = row.x_is
            listener.record_answer(t.public_id, answer, {"ms_heard_x": 800, "rt_ms": 3500})
        listener.save_debrief({})
    assert seofp(["study", "analyze", str(study), "--boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "Claim (" in out and "Logged to MLflow run" in out
    run_id = out.strip().split()[-1]
    from seofp_lab import tracking

    run = tracking.get_run(run_id)
    assert run.data.tags["seofp.baseline_run"] == "run-b"
    assert run.data.tags["seofp.compressed_run"] == "run-c"
    m = run.data.metrics
    assert m["listening_n"] == 8 * m["listening_analysed"] and m["listening_recruited"] == 3
    arts = {a.path for a in tracking.client().list_artifacts(run_id, "listening")}
    assert "listening/analysis.txt" in arts and "listening/plots" in arts
    # one claim: the printed one, the tag and claim.json are the same decision
    from seofp_lab.listening.decision import CLAIM_ARTIFACT, VERDICT_TAG, Claim

    stored = Claim.from_json(tracking.download_artifact(run_id, CLAIM_ARTIFACT).read_text())
    assert run.data.tags[VERDICT_TAG] == stored.label and stored.text in out
    assert m["listening_upper_gee"] == pytest.approx(stored.upper)
    assert "listening/items.csv" in arts and "listening/trial_log.csv" in arts
    plots = {a.path for a in tracking.client().list_artifacts(run_id, "listening/plots")}
    assert {f"listening/plots/{n}.png" for n in ("items_by_snr", "confusion_bias",
                                                 "rt_plays_switches")} <= plots
    assert seofp(["study", "export", str(study), "--out", str(tmp_path / "export")]) == 0
    exported = pd.read_csv(tmp_path / "export" / "trials.csv")
    assert len(exported) == 30 and set(exported.response) <= {"A", "B"}


def _answers(cells: dict[tuple[int, str, str], int]) -> pd.DataFrame:
    """A main-trial table from counts of (listener, X, response)."""
    rows = [{"listener": lst, "x_is": x, "response": r, "correct": int(x == r)}
            for (lst, x, r), count in cells.items() for _ in range(count)]
    return pd.DataFrame(rows)


def test_item_table_matches_a_hand_computed_clopper_pearson() -> None:
    df = pd.DataFrame({"item": ["i1"] * 4 + ["i2"] * 2 + ["i3"] * 3,
                       "snr": [10.0] * 4 + [0.0] * 5,
                       "correct": [1, 1, 1, 0, 0, 0, 1, 1, 1], "listener": range(9)})
    t = S.per_item(df, 0.05)
    assert t.item.tolist() == ["i2", "i3", "i1"]  # input SNR first, then item
    assert t.k.tolist() == [0, 3, 3] and t.n.tolist() == [2, 3, 4]
    # exact bounds: k = 0 upper 1 - (a/2)^(1/n); k = n lower (a/2)^(1/n); Beta(4, 1) cdf x^4;
    # Beta(3, 2) cdf 4x^3 - 3x^4, solved for 0.025 by its polynomial root in (0, 1)
    roots = np.roots([-3, 4, 0, 0, -0.025])
    lo_31 = float(next(r.real for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < 1))
    assert np.allclose(t.ci_low, [0.0, 0.025 ** (1 / 3), lo_31], atol=1e-9)
    assert np.allclose(t.ci_high, [1 - 0.025 ** 0.5, 1.0, 0.975 ** 0.25], atol=1e-9)


def test_confusion_matrix_counts_the_constructed_answers() -> None:
    df = _answers({(0, "A", "A"): 5, (0, "A", "B"): 2, (1, "B", "A"): 3, (1, "B", "B"): 4})
    conf = confusion_matrix(df)
    assert conf.x_is.tolist() == ["A", "B"]
    assert conf[["answered_A", "answered_B"]].to_numpy().tolist() == [[5, 2], [3, 4]]
    assert conf[["answered_A", "answered_B"]].to_numpy().sum() == len(df) == 14
    only_a = confusion_matrix(_answers({(0, "A", "A"): 3}))  # absent cells are zeros
    assert only_a[["answered_A", "answered_B"]].to_numpy().tolist() == [[3, 0], [0, 0]]


def test_criterion_c_is_negative_for_a_listener_who_leans_to_a() -> None:
    df = _answers({(0, "A", "A"): 10, (0, "B", "A"): 8, (0, "B", "B"): 2,   # says "A"
                   (1, "A", "B"): 9, (1, "A", "A"): 1, (1, "B", "B"): 10,   # says "B"
                   (2, "A", "A"): 8, (2, "A", "B"): 2, (2, "B", "B"): 8, (2, "B", "A"): 2})
    b = per_listener_bias(df).set_index("listener")
    h, f = 10.5 / 11, 8.5 / 11  # Hautus: 0.5 added to each cell
    z = stats.norm.ppf
    assert b.bias_c[0] == pytest.approx(-(z(h) + z(f)) / 2) and b.bias_c[0] < -0.5
    assert b.bias_c[1] > 0.5 and abs(b.bias_c[2]) < 1e-12
    assert b.dprime[2] > b.dprime[0]  # the unbiased listener discriminates best


def test_dprime_bootstrap_interval_is_seeded_and_covers_the_estimate() -> None:
    trials, parts = _tables([0.75] * 8 + [0.6] * 4, seed=7)
    main = trials[trials.trial_type == "main"]
    point = S.abx_sdt(main)["dprime_differencing"]
    lo, hi = S.dprime_bootstrap(main, reps=300, seed=5)
    assert lo < point < hi and hi - lo > 0.1
    assert S.dprime_bootstrap(main, reps=300, seed=5) == (lo, hi)
    assert S.dprime_bootstrap(main, reps=300, seed=6) != (lo, hi)
    # resampling whole listeners (their spread, 0.75 vs 0.6 here) gives another interval
    other = S.dprime_bootstrap(main, reps=300, seed=5, unit="listeners")
    assert other[0] < point < other[1] and other != (lo, hi)
    # one listener resampled as a unit: every resample is that listener, so the grid
    # inversion must equal brentq
    one = S.dprime_bootstrap(main[main.listener == 0], reps=20, seed=0, unit="listeners")
    d0 = S.abx_sdt(main[main.listener == 0])["dprime_differencing"]
    assert one[0] == pytest.approx(d0, abs=1e-3) and one[1] == pytest.approx(d0, abs=1e-3)
    assert np.isnan(S.dprime_bootstrap(main, reps=0)[0])


def test_analysis_reports_the_dprime_interval_and_the_trial_tables() -> None:
    trials, parts = _tables([0.75] * 6, seed=8)
    res = analyze(trials, parts, STUDY, boot=100, seed=2)
    m = res.metrics
    assert m["dprime_ci_low"] <= m["dprime_differencing"] <= m["dprime_ci_high"]
    assert f"[{m['dprime_ci_low']:.2f}, {m['dprime_ci_high']:.2f}]" in res.text
    assert res.tables["items"].n.sum() == m["n"] == len(res.tables["trial_log"])
    assert res.tables["confusion"][["answered_A", "answered_B"]].to_numpy().sum() == m["n"]
    assert len(res.tables["bias"]) == m["listeners"]
    again = analyze(trials, parts, STUDY, boot=100, seed=2).metrics
    assert (again["dprime_ci_low"], again["dprime_ci_high"]) == (m["dprime_ci_low"],
                                                                 m["dprime_ci_high"])
