"""The store and the listener service on SQLite and on PostgreSQL: every answer committed, bad
input refused without a trace, 20 concurrent listeners with nothing lost."""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from synthetic_study import make_study

from seofp_lab.errors import StudyError
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, Participant, ScreenAnswer, TrialRow
from tests._postgres import new_database, pg_cluster

SMALL = {"practice": 1, "blocks": 2, "test_per_block": 2, "catch_per_block": 1,
         "null_per_block": 0, "break_seconds": 0}


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free local port."""
    with pg_cluster() as server:
        yield server


def _new_database(server: str) -> str:
    return new_database(server)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the default: SQLite in the workspace
    return _new_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def make_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str | None):
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)

    def make(**sections) -> StudyService:
        study = make_study(tmp_path, name=f"s{uuid.uuid4().hex[:6]}", utterances=4, **sections)
        prepare_study(study)
        return StudyService(study, backend)

    return make


def _start(service: StudyService):
    listener = service.listener(service.enroll())
    listener.consent(service.study.consent_version, True)
    listener.save_metadata({"age_band": "30-39"})
    return listener


def _count(service: StudyService, model) -> int:
    with service.store.session() as s:
        return s.scalar(select(func.count(model.id)))


def test_answers_are_scored_on_the_server_and_bad_input_changes_nothing(make_service) -> None:
    service = make_service(trials=SMALL)
    listener = _start(service)
    served = listener.next_trial()
    assert served.labels == ("A", "B", "X") and served.trial_type == "practice"
    with service.store.session() as s:
        row = s.scalar(select(TrialRow).where(TrialRow.public_id == served.public_id))
        commit = hashlib.sha256(f"{row.public_id}|{row.x_is}|{row.item_id}|{row.nonce}".encode())
        assert row.commitment == commit.hexdigest()  # committed before it was served
        x_is = row.x_is
    bad = [("unknown token", lambda: service.listener("nope"), "participant token"),
           ("tampered answer", lambda: listener.record_answer(served.public_id, "C"), "'A' or"),
           ("forged trial", lambda: listener.record_answer(str(uuid.uuid4()), "A"), "trial shown")]
    other = _start(service)
    other_trial = other.next_trial()
    bad.append(("someone else's trial",
                lambda: listener.record_answer(other_trial.public_id, "A"), "trial shown"))
    for _, call, message in bad:
        with pytest.raises(StudyError, match=message):
            call()
        assert _count(service, Answer) == 0
    result = listener.record_answer(served.public_id, x_is, {"ms_heard_x": 900, "plays_x": 2})
    assert result.correct and result.feedback
    with pytest.raises(StudyError, match="already answered"):  # double submit
        listener.record_answer(served.public_id, "A" if x_is == "B" else "B")
    with service.store.session() as s:
        saved = s.scalar(select(Answer))
        assert (saved.response, saved.correct, saved.plays_x) == (x_is, True, 2)
    assert _count(service, Answer) == 1


def test_resume_rebuilds_the_schedule_and_continues(make_service) -> None:
    service = make_service(trials=SMALL)
    first = _start(service)
    for _ in range(2):
        t = first.next_trial()
        first.record_answer(t.public_id, "A", {"ms_heard_x": 500})
    pending = first.next_trial()
    again = StudyService(service.study_dir, service.store.url).listener(first.token)
    assert again.schedule == first.schedule
    resumed = again.next_trial()
    assert resumed.public_id == pending.public_id and resumed.number == pending.number
    assert resumed.wavs != pending.wavs  # re-rendered with fresh dither, never reused bytes
    while (t := again.next_trial()) is not None:
        again.record_answer(t.public_id, "B", {"ms_heard_x": 500})
    assert again.phase() == "debrief" and again.progress() == (len(again.schedule),) * 2
    again.save_debrief({"cue": "none"})
    assert again.phase() == "done"
    correct, total = again.score()
    assert total == len(again.schedule) - 1 and 0 <= correct <= total
    # each visit is a listening session; a trial belongs to the visit that first showed it
    from sqlalchemy import select

    from seofp_lab.listening.store import ListeningSession, TrialRow

    with service.store.session() as s:
        visits = s.scalars(select(ListeningSession.id).where(
            ListeningSession.participant_id == first.pid)).all()
        shown = dict(s.execute(select(TrialRow.trial_index, TrialRow.session_id).where(
            TrialRow.participant_id == first.pid)).all())
    assert sorted(visits) == sorted([first.session_id, again.session_id])
    assert shown[min(shown)] == first.session_id and shown[max(shown)] == again.session_id


def test_break_is_enforced_between_blocks(make_service) -> None:
    service = make_service(trials={**SMALL, "break_seconds": 60})
    listener = _start(service)
    first_block = [s for s in listener.schedule if s.block in (0, 1)]
    for _ in first_block:
        t = listener.next_trial()
        listener.record_answer(t.public_id, "A")
    assert listener.phase() == "break" and listener.next_trial() is None
    assert 55 < listener.break_seconds_left() <= 60


def test_failed_headphone_screen_screens_out(make_service) -> None:
    service = make_service(screening={"headphone_trials": 2, "headphone_pass": 2,
                                      "environment_trials": 0, "environment_pass": 0})
    listener = _start(service)
    assert listener.phase() == "headphone"
    for _ in range(2):
        t = listener.screen_trial()
        assert t.labels == ("1", "2", "3") and len({len(w) for w in t.wavs}) == 1
        correct = listener._screen[t.public_id][3]
        with pytest.raises(StudyError, match="choice"):
            listener.record_screen(t.public_id, 7)
        listener.record_screen(t.public_id, (correct + 1) % 3)
    assert listener.phase() == "screened_out" and listener.next_trial() is None
    assert _count(service, ScreenAnswer) == 2


def test_changing_the_preregistration_after_the_first_answer_is_refused(make_service) -> None:
    service = make_service(trials=SMALL)
    listener = _start(service)
    t = listener.next_trial()
    listener.record_answer(t.public_id, "A")
    path = service.study_dir / "study.yaml"
    path.write_text(path.read_text() + "title: edited after the fact\n")
    prepare_study(service.study_dir)
    with pytest.raises(StudyError, match="unchanged after the first answer"):
        StudyService(service.study_dir, service.store.url)


def test_twenty_concurrent_listeners_lose_nothing(make_service) -> None:
    service = make_service(trials={"practice": 0, "blocks": 1, "test_per_block": 4,
                                   "catch_per_block": 1, "null_per_block": 1,
                                   "break_seconds": 0})
    errors: list[BaseException] = []
    tokens: list[str] = []

    def listener_thread(k: int) -> None:
        try:
            listener = _start(service)
            tokens.append(listener.token)
            while (t := listener.next_trial()) is not None:
                listener.record_answer(t.public_id, "AB"[k % 2], {"ms_heard_x": 700})
                if k % 3 == 0:  # an impatient double click: refused, nothing duplicated
                    with pytest.raises(StudyError):
                        listener.record_answer(t.public_id, "A")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=listener_thread, args=(k,)) for k in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[:3]
    assert _count(service, Participant) == 20 and len(set(tokens)) == 20
    with service.store.session() as s:
        per = dict(s.execute(select(Answer.participant_id, func.count(Answer.id))
                             .group_by(Answer.participant_id)).all())
        indices = s.execute(select(Answer.participant_id, Answer.trial_index)).all()
    assert sorted(per.values()) == [6] * 20
    assert len(set(indices)) == len(indices) == 120


def test_fifty_simultaneous_enrolments_get_unique_indices_and_slots(make_service) -> None:
    service = make_service(trials=SMALL)
    # five server processes' worth of engines, ten browsers each, released at once
    services = [service] + [StudyService(service.study_dir, service.store.url)
                            for _ in range(4)]
    barrier = threading.Barrier(50)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def click_start(k: int) -> None:
        try:
            barrier.wait(30)
            tokens.append(services[k % 5].enroll(user_agent="Mozilla/5.0 " + "x" * 5000))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=click_start, args=(k,)) for k in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[:3]
    with service.store.session() as s:
        rows = s.execute(select(Participant.participant_index, Participant.slot,
                                Participant.user_agent)).all()
    assert len(rows) == 50 and len(set(tokens)) == 50
    assert sorted(r[0] for r in rows) == list(range(50))  # unique, no gaps
    assert sorted(r[1] for r in rows) == list(range(50))  # every active session its own slot
    assert {len(r[2]) for r in rows} == {400}  # bounded to the column, not an SQL error
    for sv in services[1:]:
        sv.store.dispose()


def test_slots_come_back_from_dropouts_and_stay_with_finished_sessions(make_service) -> None:
    from datetime import timedelta

    from seofp_lab.listening.store import utcnow

    service = make_service(trials={**SMALL, "hold_minutes": 60})
    tokens = [service.enroll() for _ in range(4)]
    assert [service.listener(t).index for t in tokens] == [0, 1, 2, 3]
    with service.store.session() as s:
        p = {x.participant_index: x for x in s.scalars(select(Participant))}
        p[0].status, p[0].created_at = "done", utcnow() - timedelta(days=2)  # finished: keeps 0
        p[1].status = "screened_out"  # gives slot 1 back at once
        p[2].status, p[2].created_at = "trials", utcnow() - timedelta(minutes=61)  # abandoned
    assert service.listener(service.enroll()).index == 1
    assert service.listener(service.enroll()).index == 2
    assert service.listener(service.enroll()).index == 4  # 0 and 3 held, 1 and 2 refilled
    with service.store.session() as s:
        assert sorted(s.scalars(select(Participant.participant_index))) == list(range(7))


def test_every_free_text_field_is_bounded(make_service) -> None:
    service = make_service(trials=SMALL)
    listener = service.listener(service.enroll(), user_agent="u" * 10_000)
    listener.consent(service.study.consent_version, True)
    listener.save_metadata({"language": "x" * 50_000, "k" * 300: "v"})
    t = listener.next_trial()
    listener.record_answer(t.public_id, "A", {"environment": {"ua": "e" * 20_000},
                                              "events": [{"event": "p" * 99, "label": "XYZ",
                                                          "t_ms": 1.0}]})
    from seofp_lab.listening.store import (
        JSON_MAX_CHARS,
        JSON_TEXT_MAX,
        ListeningSession,
        PlayEvent,
    )

    with service.store.session() as s:
        meta = s.scalar(select(Participant.meta))
        visit_ua = s.scalar(select(ListeningSession.user_agent))
        env = s.scalar(select(Answer.environment))
        ev = s.scalar(select(PlayEvent))
    assert len(meta["language"]) == JSON_TEXT_MAX and max(map(len, meta)) <= 100
    assert len(visit_ua) == 400 and len(env["ua"]) == JSON_TEXT_MAX
    assert len(ev.event) == 20 and len(ev.label) == 2
    import json

    assert len(json.dumps(meta)) <= JSON_MAX_CHARS
