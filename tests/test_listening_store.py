"""The store and the listener service on SQLite and on PostgreSQL: every answer committed, bad
input refused without a trace, 20 concurrent listeners with nothing lost."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from glob import glob
from pathlib import Path

import pytest
from sqlalchemy import func, select
from synthetic_study import make_study

from seofp_lab.errors import StudyError
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, Participant, ScreenAnswer, TrialRow

SMALL = {"practice": 1, "blocks": 2, "test_per_block": 2, "catch_per_block": 1,
         "null_per_block": 0, "break_seconds": 0}


def _pg_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free local port."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("needs the PostgreSQL server binaries: `apt-get install -y postgresql`")
    root = Path(tempfile.mkdtemp(prefix="seofp-pg-"))  # the postgres user must reach it
    as_pg: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(as_pg + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                            "-w", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                            "-c max_connections=100 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _new_database(server: str) -> str:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


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
