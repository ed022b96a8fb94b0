"""The Streamlit app under AppTest: consent to thank-you, answer gating, resume, bad tokens.

AppTest runs no JavaScript, so listening is simulated on the server's side: ``_play`` spends
the trial's audio tickets as the player's fetches would and moves the server clock on
(docs/listening_blinding.md#played); client play counts alone unlock nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from synthetic_study import make_study

from seofp_lab.listening import blinding
from seofp_lab.listening.auth import add_user
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, Incident, LoginAttempt, Participant, utcnow

APP = str(Path(__file__).resolve().parents[1] / "app" / "study_app.py")
ADMIN_APP = str(Path(__file__).resolve().parents[1] / "app" / "admin_app.py")
HEARD = {"heard": {"A": 5000.0, "B": 5000.0, "X": 5000.0, "1": 5000.0, "2": 5000.0,
                   "3": 5000.0}, "plays": {"A": 1, "B": 1, "X": 1}}


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's script runner installs the app as ``sys.modules["__main__"]`` and leaves it
    there; later tests that start spawn workers would then re-run the app in each worker."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _server_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    skew = [0.0]
    monkeypatch.setattr(blinding, "clock", lambda: utcnow() + timedelta(seconds=skew[0]))
    return skew


def _play(at, skew: list[float]) -> None:
    """What the player does: fetch each clip once (one ticket each); then time passes."""
    for ticket in at.session_state["served"].tickets:
        assert blinding.VAULT.take(ticket) is not None
    skew[0] += 10.0
    at.run()


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)
    study_dir = make_study(tmp_path, screening={"headphone_trials": 1, "headphone_pass": 0,
                                                "environment_trials": 0, "environment_pass": 0})
    prepare_study(study_dir)
    monkeypatch.setenv("SEOFP_STUDY_DIR", str(study_dir))
    return study_dir


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=30)


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _answers(study_dir: Path) -> int:
    service = StudyService(study_dir)
    with service.store.session() as s:
        return s.scalar(select(func.count(Answer.id)))


def test_consent_to_thank_you(study: Path, _server_clock: list[float]) -> None:
    at = _app().run()
    assert not at.exception
    assert _button(at, "Start").disabled  # no consent, no start
    at.checkbox[0].check().run()
    _button(at, "Start").click().run()
    token = at.query_params["token"][0] if isinstance(at.query_params["token"], list) \
        else at.query_params["token"]
    assert token
    at.button[0].click().run()  # metadata form: defaults are fine
    assert "Headphone check" in at.header[0].value
    at.session_state["heard"] = HEARD  # the client's word alone unlocks nothing
    at.run()
    assert at.radio[0].disabled
    _play(at, _server_clock)
    at.radio[0].set_value("3").run()
    _button(at, "Submit").click().run()
    n_trials = len(StudyService(study).listener(token).schedule)
    for i in range(n_trials):
        assert not at.exception, at.exception
        assert _button(at, "X is A").disabled  # nothing heard yet: the answer is locked
        at.session_state["heard"] = HEARD
        at.run()
        if i == 1:  # the practice feedback stays through the reruns of listening
            assert "Answer 1 saved." in at.info[0].value
        assert _button(at, "X is A").disabled  # a forged "I listened" report unlocks nothing
        _play(at, _server_clock)
        _button(at, "X is A" if i % 2 else "X is B").click().run()
        if i == 0:  # practice gives feedback; the main blocks never do
            assert at.info[0].value.split()[:2] in (["Correct!", "Answer"], ["Not", "quite."])
        elif i == n_trials - 1:
            assert not at.info
    assert _answers(study) == n_trials
    assert "Almost done" in at.header[0].value
    at.button[0].click().run()  # debrief form
    assert "Thank you" in at.header[0].value
    assert any("test trials" in m.value for m in at.markdown)


def test_resume_by_token_continues_where_it_stopped(study: Path, _server_clock: list[float]
                                                     ) -> None:
    service = StudyService(study)
    token = service.enroll()
    listener = service.listener(token)
    listener.consent("1", True)
    listener.save_metadata({})
    served = listener.screen_trial()
    listener.record_screen(served.public_id, 0)
    for _ in range(3):
        t = listener.next_trial()
        listener.record_answer(t.public_id, "A", {"ms_heard_x": 500})
    at = _app()
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    assert "Block" in at.header[0].value or "Practice" in at.header[0].value
    _play(at, _server_clock)
    _button(at, "X is B").click().run()
    # a new server session without a report from the player holds the click until the
    # player's log comes (the page asks for it), then saves the answer with that log
    assert _answers(study) == 3 and at.session_state["pending_answer"] is not None
    at.session_state["heard"] = HEARD  # the player's report
    at.run()
    assert _answers(study) == 4
    with StudyService(study).store.session() as s:
        last = s.scalars(select(Answer).order_by(Answer.id.desc())).first()
    assert (last.plays_x, last.response) == (1, "B")  # the log the player sent, not zeros


def _texts(at) -> str:
    """Everything the page shows, as one string."""
    parts = [e.value for kind in ("markdown", "error", "warning", "info", "success", "header",
                                   "title", "caption", "code", "text") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("token", ["not-a-token", "[click here](http://evil/)",
                                   "![x](http://evil/x.png)"])
def test_bad_token_is_refused_as_text_and_creates_nothing(study: Path, token: str) -> None:
    at = _app()
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    assert "This link does not work" in at.header[0].value
    assert "evil" not in _texts(at)  # nothing from the URL is rendered, as markdown or at all
    with StudyService(study).store.session() as s:
        assert s.scalar(select(func.count(Participant.id))) == 0


@pytest.mark.parametrize("name", ["../x", "/etc", "..", "fixture/../fixture", "%2e%2e"])
def test_study_paths_are_confined_to_the_studies_folder(study: Path, name: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEOFP_STUDY_DIR")
    monkeypatch.setenv("SEOFP_STUDIES_ROOT", str(study.parent))
    at = _app()
    at.query_params["study"] = name
    at.run()
    assert not at.exception
    assert "This link does not work" in at.header[0].value
    at = _app()
    at.query_params["study"] = study.name  # the same study by its plain name is served
    at.run()
    assert not at.exception and _button(at, "Start")


def test_an_unexpected_error_shows_an_incident_id_not_a_traceback(study: Path) -> None:
    at = _app().run()
    at.session_state["listener"] = object()  # a broken session: the page raises inside
    at.run()
    assert not at.exception
    shown = _texts(at)
    assert "incident" in shown and "Traceback" not in shown and "/" not in at.error[0].value
    incident = shown.split("incident ")[1][:8]
    with StudyService(study).store.session() as s:
        row = s.get(Incident, incident)
    assert row is not None and "AttributeError" in row.traceback


def _admin():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(ADMIN_APP, default_timeout=30)


def _login(at, user: str, password: str):  # noqa: ANN202 - the AppTest
    at.text_input[0].input(user)
    at.text_input[1].input(password)
    return next(b for b in at.button if b.label == "Log in").click().run()


def test_experimenter_app_needs_a_user_and_limits_failed_logins(study: Path) -> None:
    service = StudyService(study)
    at = _admin().run()
    assert not at.exception
    assert "No experimenter account" in at.error[0].value
    add_user(service.store, "ana", "correct horse battery")
    add_user(service.store, "bo", "another long password")
    at = _login(_admin().run(), "bo", "another long password")
    assert not at.exception
    assert any(b.label == "Run the analysis" for b in at.button)
    assert [m.label for m in at.metric][:1] == ["Participants"]
    at = _admin().run()
    assert not any(b.label == "Run the analysis" for b in at.button)
    _login(at, "ana", "wrong password")
    assert "Wrong user name or password" in at.error[0].value
    assert not any(b.label == "Run the analysis" for b in at.button)
    for _ in range(4):
        _login(at, "ana", "wrong again")
    _login(at, "ana", "correct horse battery")  # the right password, but locked out now
    assert "Too many failed logins" in at.error[0].value
    with service.store.session() as s:
        outcomes = [a.outcome for a in s.scalars(select(LoginAttempt).order_by(LoginAttempt.id))]
    assert outcomes == ["ok"] + ["wrong"] * 5 + ["locked"]


@pytest.fixture
def crowd_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)
    study_dir = make_study(
        tmp_path, screening={"headphone_trials": 0, "headphone_pass": 0,
                             "environment_trials": 2, "environment_pass": 2},
        crowd={"screened_out_code": "OUT7", "completion_code": "DONE42",
               "screened_out_url": "https://example.org/out?cc={code}"},
        confidence=3)
    prepare_study(study_dir)
    monkeypatch.setenv("SEOFP_STUDY_DIR", str(study_dir))
    return study_dir


def _screen_answer(at, right: bool, skew: list[float]) -> None:  # noqa: ANN001 - the AppTest
    listener = at.session_state["listener"]
    (correct,) = [v[3] for v in listener._screen.values()]
    _play(at, skew)
    labels = at.radio[0].options
    at.radio[0].set_value(labels[correct if right else 1 - correct]).run()
    _button(at, "Submit").click().run()


def test_failed_environment_check_ends_on_a_page_with_the_code(crowd_study: Path,
                                                               _server_clock: list[float]
                                                               ) -> None:
    at = _app()
    at.query_params.update({"PROLIFIC_PID": "p0123456789", "STUDY_ID": "s1", "SESSION_ID": "x"})
    at.run()
    at.checkbox[0].check().run()
    _button(at, "Start").click().run()
    at.button[0].click().run()  # metadata
    assert "Listening environment" in at.header[0].value
    assert any("Click **1** and **2**" in m.value for m in at.markdown)  # says what to do
    _screen_answer(at, True, _server_clock)
    _screen_answer(at, False, _server_clock)  # 1 of 2: fail, one retry
    assert not at.exception
    assert "one more try" in at.warning[0].value
    bar = at.get("progress")[0].proto
    assert (bar.text, bar.value) == ("1 of 2", 0)  # the retry starts over: never "3 of 2"
    _screen_answer(at, False, _server_clock)
    _screen_answer(at, False, _server_clock)
    assert not at.exception
    assert "Thank you" in at.header[0].value
    assert "did not pass the listening checks" in _texts(at)
    assert [c.value for c in at.code] == ["OUT7"]
    # the same Prolific id opening the study link again resumes: no second enrolment
    again = _app()
    again.query_params.update({"PROLIFIC_PID": "p0123456789", "STUDY_ID": "s1"})
    again.run()
    assert not again.exception and "Thank you" in again.header[0].value
    with StudyService(crowd_study).store.session() as s:
        assert s.scalar(select(func.count(Participant.id))) == 1


def test_confidence_is_asked_and_stored_when_the_design_asks(crowd_study: Path,
                                                             _server_clock: list[float]
                                                             ) -> None:
    service = StudyService(crowd_study)
    token = service.enroll()
    listener = service.listener(token)
    listener.consent("1", True)
    listener.save_metadata({})
    for _ in range(2):
        served = listener.screen_trial()
        listener.record_screen(served.public_id, listener._screen[served.public_id][3])
    at = _app()
    at.query_params["token"] = token
    at.run()
    _play(at, _server_clock)
    at.session_state["heard"] = HEARD  # the player's report
    at.run()
    assert _button(at, "X is A").disabled  # heard, but no rating yet
    assert "How sure are you?" == at.radio[0].label
    at.radio[0].set_value(at.radio[0].options[2]).run()
    _button(at, "X is A").click().run()
    assert not at.exception
    assert "Answer 1 saved." in _texts(at)  # the receipt (with the practice feedback)
    with service.store.session() as s:
        assert s.scalars(select(Answer.confidence)).all() == [3]
