"""Participant-facing checks without a UI: screening retries, crowd ids, codes, devices, the
bandwidth check, session time limits and bounded free text."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from synthetic_study import make_study, speech_like

from seofp_lab.errors import StudyError
from seofp_lab.listening.auth import add_user, export_salt, login, pseudonym
from seofp_lab.listening.crowd import (
    CrowdSpec,
    bandwidth_pair,
    crowd_identity,
    device_refusal,
    ending,
    enroll_crowd,
    find_crowd_token,
    session_deadline_passed,
)
from seofp_lab.listening.data import export
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.participant import submit_answer, trial_progress
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, CrowdId, Experimenter, LoginAttempt, Participant

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Safari/537.36")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One prepared study for the module (preparing costs seconds); each test enrols its own
    participants, so they do not see each other."""
    tmp_path = tmp_path_factory.mktemp("crowd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
        mp.delenv("SEOFP_STUDY_DB", raising=False)
        yield _make(tmp_path)


def _make(tmp_path: Path) -> Path:
    d = make_study(tmp_path, screening={"headphone_trials": 0, "headphone_pass": 0,
                                        "environment_trials": 4, "environment_pass": 3},
                   crowd={"bandwidth_trials": 2, "bandwidth_pass": 2,
                          "completion_code": "DONE42", "screened_out_code": "OUT7",
                          "completion_url": "https://app.prolific.com/submissions/complete?cc={code}",
                          "max_session_minutes": 30})
    prepare_study(d)
    return d


def _screen(listener, right: bool) -> None:  # noqa: ANN001 - a Listener
    served = listener.screen_trial()
    correct = listener._screen[served.public_id][3]
    answer = correct if right else (correct + 1) % len(served.labels)
    listener.record_screen(served.public_id, answer)


def _at_screening(service: StudyService):  # noqa: ANN202 - a Listener
    listener = service.listener(service.enroll())
    listener.consent("1", True)
    listener.save_metadata({})
    return listener


def test_failed_environment_check_retries_with_progress_inside_the_phase(study: Path) -> None:
    """The bug: after 2 of 4 wrong the next trial was number 5 of 4 ("value 1.25 outside
    [0.0, 1.0]" in the progress bar) and the participant was stuck there."""
    listener = _at_screening(StudyService(study))
    for right in (True, False, True, False):  # 2 of 4: fail, one retry allowed
        _screen(listener, right)
    assert listener.phase() == "environment"
    retry = listener.screen_trial()
    assert (retry.number, retry.total) == (1, 4)
    assert listener._screen[retry.public_id][1] == 2  # the second attempt
    for _ in range(4):
        served = listener.screen_trial()
        assert 1 <= served.number <= served.total
        _screen(listener, True)
    assert listener.phase() == "bandwidth"  # passed on the retry, on to the next check


def test_second_failure_screens_out_with_the_reason(study: Path) -> None:
    listener = _at_screening(StudyService(study))
    for _ in range(8):
        _screen(listener, False)
    assert listener.phase() == "screened_out"
    assert listener.screen_trial() is None
    with listener.service.store.session() as s:
        assert "environment screen 0/4" in s.get(Participant, listener.pid).exclusion


def test_bandwidth_check_passes_to_trials_and_fails_to_screened_out(study: Path) -> None:
    service = StudyService(study)
    good = _at_screening(service)
    for _ in range(4):
        _screen(good, True)
    for _ in range(2):
        _screen(good, True)
    assert good.phase() == "trials"
    bad = _at_screening(service)
    for _ in range(4):
        _screen(bad, True)
    for _ in range(4):  # fail, retry, fail
        _screen(bad, False)
    assert bad.phase() == "screened_out"


def test_bandwidth_pair_differs_only_above_the_cutoff() -> None:
    rate = 16000  # the synthetic speech's rate: content up to 8 kHz
    rng = np.random.default_rng(0)
    speech = speech_like(1.0, rng)
    clips, low = bandwidth_pair(speech, rate, 3500.0, rng)
    full = clips[1 - low]

    def band_db(x: np.ndarray, lo: float, hi: float) -> float:
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / rate)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum())

    assert band_db(full, 5000, 8000) - band_db(clips[low], 5000, 8000) > 40
    assert abs(band_db(full, 100, 3000) - band_db(clips[low], 100, 3000)) < 1.0  # same level
    assert np.isclose(np.sqrt(np.mean(full**2)), np.sqrt(np.mean(clips[low] ** 2)), rtol=1e-6)
    assert max(np.abs(c).max() for c in clips) <= 0.89 + 1e-9


def test_prolific_ids_resume_instead_of_enrolling_again(study: Path) -> None:
    service = StudyService(study)
    who = crowd_identity({"PROLIFIC_PID": "5f1c2d3e4b5a6978", "STUDY_ID": "st1",
                          "SESSION_ID": "se1"})
    first = enroll_crowd(service, who, "x" * 900)  # a 900-character User-Agent is cut, not fatal
    again = enroll_crowd(service, crowd_identity({"PROLIFIC_PID": "5f1c2d3e4b5a6978",
                                                  "STUDY_ID": "st1", "SESSION_ID": "se2"}), None)
    other = enroll_crowd(service, crowd_identity({"workerId": "5f1c2d3e4b5a6978",
                                                  "hitId": "H", "assignmentId": "A"}), None)
    assert first == again != other
    with service.store.session() as s:
        n = s.scalar(select(func.count(Participant.id)).where(Participant.token.in_(
            [first, other])))
        assert n == 2
        row = s.scalar(select(CrowdId).where(CrowdId.platform == "prolific"))
        assert (row.crowd_study, row.crowd_session) == ("st1", "se1")
        assert len(s.scalar(select(Participant.user_agent).where(
            Participant.token == first))) == 400


def test_crowd_ids_are_checked_and_mturk_previews_do_not_enrol(study: Path) -> None:
    assert crowd_identity({"token": "abc"}) is None
    with pytest.raises(StudyError, match="PROLIFIC_PID"):
        crowd_identity({"PROLIFIC_PID": "[x](http://evil/)"})
    preview = crowd_identity({"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H"})
    assert preview.preview
    with pytest.raises(StudyError, match="preview"):
        enroll_crowd(StudyService(study), preview, None)
    assert not find_crowd_token(StudyService(study), preview)


def test_codes_and_redirects_from_the_study_config() -> None:
    spec = CrowdSpec(completion_code="C0DE", completion_url="https://x.org/done?cc={code}",
                     screened_out_code="OUT", screened_out_url="https://x.org/out")
    assert ending(spec, "completed") == ("C0DE", "https://x.org/done?cc=C0DE")
    assert ending(spec, "screened_out") == ("OUT", "https://x.org/out")
    assert ending(CrowdSpec(), "completed") == (None, None)
    for bad in ({"completion_url": "javascript:alert(1)"},
                {"completion_url": "https://x.org/?cc={code}"},  # {code} but no code
                {"completion_code": "has space"},
                {"bandwidth_trials": 2, "bandwidth_pass": 3},
                {"confidence_levels": 3, "confidence_labels": ["a", "b"]}):
        with pytest.raises(ValidationError, match="crowd|confidence|bandwidth"):
            CrowdSpec(**bad)


@pytest.mark.parametrize(("ua", "width", "coarse", "refused"), [
    (DESKTOP, 1920, False, False),
    (IPHONE, None, None, True),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36", None, None, True),
    (DESKTOP, 800, False, True),
    (DESKTOP, 1920, True, True),
    (None, None, None, False),
])
def test_desktop_only_device_check(ua: str | None, width: float | None, coarse: bool | None,
                                   refused: bool) -> None:
    assert (device_refusal(CrowdSpec(), ua, width, coarse) is not None) == refused
    assert device_refusal(CrowdSpec(desktop_only=False), IPHONE, 300, True) is None


def test_session_time_limit_runs_on_the_server_clock(study: Path) -> None:
    service = StudyService(study)
    listener = _at_screening(service)
    assert not session_deadline_passed(service, listener.pid)
    with service.store.session() as s:
        p = s.get(Participant, listener.pid)
        p.consented_at = p.consented_at - timedelta(minutes=31)
    assert session_deadline_passed(service, listener.pid)
    assert listener.phase() == "screened_out"
    with service.store.session() as s:
        assert s.get(Participant, listener.pid).exclusion.startswith("time limit")


def _to_trials(service: StudyService):  # noqa: ANN202 - a Listener in the trial phase
    listener = _at_screening(service)
    for _ in range(6):  # environment 4 + bandwidth 2, all right
        _screen(listener, True)
    assert listener.phase() == "trials"
    return listener


def test_a_repeated_answer_is_acknowledged_once_and_stored_once(study: Path) -> None:
    service = StudyService(study)
    listener = _to_trials(service)
    served = listener.next_trial()
    first = submit_answer(listener, served.public_id, "A", {"ms_heard_x": 900})
    again = submit_answer(listener, served.public_id, "A", {"ms_heard_x": 900})  # a replayed click
    assert (first.trial_number, first.duplicate) == (1, False)
    assert (again.trial_number, again.duplicate, again.correct) == (1, True, first.correct)
    with service.store.session() as s:
        assert s.scalar(select(func.count(Answer.id)).where(
            Answer.participant_id == listener.pid)) == 1
    with pytest.raises(StudyError, match="shown to this participant"):
        submit_answer(listener, "not-a-trial", "A", {})


def test_progress_follows_the_design(study: Path) -> None:
    service = StudyService(study)
    listener = _to_trials(service)
    t = service.study.trials
    n_main = t.blocks * (t.test_per_block + t.catch_per_block + t.null_per_block)
    labels = []
    while (served := listener.next_trial()) is not None:
        where = trial_progress(listener)
        assert 0.0 <= where.fraction <= 1.0
        labels.append(where.label)
        submit_answer(listener, served.public_id, "A", {})
        if listener.phase() == "break":
            with service.store.session() as s:
                s.get(Participant, listener.pid).break_until = None
    assert labels[: t.practice] == [f"Practice {i} of {t.practice}" for i in range(1, 3)]
    main = labels[t.practice:]
    assert main[0] == f"Block 1 of {t.blocks} · trial 1 of {n_main}"
    assert main[-1] == f"Block {t.blocks} of {t.blocks} · trial {n_main} of {n_main}"
    assert all(f"of {t.blocks} ·" in m for m in main)
    assert trial_progress(listener).label == "All trials done"


def test_logins_lock_per_user_and_per_address_with_backoff(study: Path) -> None:
    store = StudyService(study).store
    add_user(store, "ana", "correct horse battery")
    add_user(store, "bo", "another long password")
    assert login(store, "ana", "correct horse battery", "10.0.0.1").ok
    for k in range(5):
        assert not login(store, "ana", f"guess {k}", f"10.0.1.{k}").ok  # five addresses
    locked = login(store, "ana", "correct horse battery", "10.0.0.9")
    assert not locked.ok and 55 < locked.locked_for_s <= 60  # per user, whatever the address
    assert login(store, "bo", "another long password", "10.0.0.9").ok
    for k in range(5):
        login(store, f"nobody{k}", "x", "10.0.0.66")  # five users from one address
    assert login(store, "bo", "another long password", "10.0.0.66").locked_for_s > 0

    def age(seconds: float) -> None:
        with store.session() as s:
            for a in s.scalars(select(LoginAttempt)):
                a.at = a.at - timedelta(seconds=seconds)

    age(61)
    assert login(store, "ana", "still guessing", "10.0.0.2").locked_for_s == 0  # lock over
    for _ in range(4):
        login(store, "ana", "still guessing", "10.0.0.2")
    assert 115 < login(store, "ana", "x", "10.0.0.3").locked_for_s <= 120  # the second: doubled
    with store.session() as s:
        attempts = s.scalars(select(LoginAttempt)).all()
    assert all(a.username and a.address and a.outcome in ("ok", "wrong", "locked")
               for a in attempts)
    with store.session() as s:
        row = s.get(Experimenter, "ana")
    assert "correct horse" not in row.password_hash and len(row.salt) == 32


def test_exports_carry_pseudonyms_not_tokens(study: Path, tmp_path: Path) -> None:
    service = StudyService(study)
    listener = _to_trials(service)
    served = listener.next_trial()
    submit_answer(listener, served.public_id, "B", {})
    paths = export(service.store, service.study.name, tmp_path / "out")
    text = "".join(p.read_text() for p in paths)
    assert listener.token not in text
    trials = pd.read_csv(paths[0])
    parts = pd.read_csv(paths[1])
    assert "token" not in trials and "token" not in parts
    mine = parts.loc[parts.listener == listener.pid, "pseudonym"].item()
    assert set(trials.loc[trials.listener == listener.pid, "pseudonym"]) == {mine}
    assert mine == pseudonym(export_salt(service.store, service.study.name), listener.token)


def test_add_user_command_reads_the_password_from_stdin(study: Path, capsys,  # noqa: ANN001
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from seofp_lab.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["study", "add-user", str(study), "cli.user", "--password-stdin"]) == 0
    store = StudyService(study).store
    assert login(store, "cli.user", "a long enough password", "127.0.0.5").ok
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["study", "add-user", str(study), "cli.user", "--password-stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err


def test_simultaneous_tabs_with_one_crowd_id_enrol_once(study: Path) -> None:
    service = StudyService(study)
    who = crowd_identity({"workerId": "RACE0123", "hitId": "H", "assignmentId": "A"})
    with service.store.session() as s:
        before = s.scalar(select(func.count(Participant.id)))
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(enroll_crowd(service, who, None)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tokens) == 8 and len(set(tokens)) == 1
    with service.store.session() as s:
        assert s.scalar(select(func.count(CrowdId.id)).where(CrowdId.crowd_pid == "RACE0123")) == 1
        assert s.scalar(select(func.count(Participant.id))) == before + 1  # losers removed
