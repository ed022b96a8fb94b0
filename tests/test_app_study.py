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
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, Participant, utcnow

APP = str(Path(__file__).resolve().parents[1] / "app" / "study_app.py")
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
    monkeypatch.setenv("SEOFP_STUDY_PASSWORD", "letmein")
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
        assert _button(at, "X is A").disabled  # a forged "I listened" report unlocks nothing
        _play(at, _server_clock)
        _button(at, "X is A" if i % 2 else "X is B").click().run()
        if i == 0:  # practice gives feedback; the main blocks never do
            assert at.info[0].value in ("Correct!", "Not quite.")
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
    assert _answers(study) == 4


def test_unknown_token_is_refused_and_creates_nothing(study: Path) -> None:
    at = _app()
    at.query_params["token"] = "not-a-token"
    at.run()
    assert not at.exception
    assert "Expected a participant token" in at.error[0].value
    with StudyService(study).store.session() as s:
        assert s.scalar(select(func.count(Participant.id))) == 0


def test_experimenter_page_needs_the_password(study: Path) -> None:
    at = _app()
    at.query_params["view"] = "experimenter"
    at.run()
    assert not at.exception
    assert not any(b.label == "Run the analysis" for b in at.button)
    at.text_input[0].input("wrong").run()
    assert "Wrong password" in at.error[0].value
    at.text_input[0].input("letmein").run()
    assert any(b.label == "Run the analysis" for b in at.button)
    assert [m.label for m in at.metric][:1] == ["Participants"]
