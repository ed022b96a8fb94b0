"""The study store: SQLAlchemy 2 models; SQLite (WAL) in the workspace, PostgreSQL by one URL.

Every answer is its own transaction, committed before the next trial is shown. The unique key
(participant, trial_index) makes a repeated submit harmless (docs/listening.md#store-and-resume).

Enrolment (:meth:`Store.enroll`) gives every participant a unique enrolment index (a unique
constraint per study, the study row locked while it is drawn, a retry on a collision) and a
counterbalancing slot drawn from the sessions that count: finished ones and unfinished ones
still within their time limit (docs/listening_analysis.md#design). Every text a participant's
browser can influence is bounded before it is written (:func:`bound_row`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from seofp_lab.errors import StudyError

JSON_MAX_CHARS = 8000  # a JSON field (metadata, debrief, environment) as stored, at most
JSON_TEXT_MAX = 500  # any one string inside it


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class StudyRow(Base):
    __tablename__ = "studies"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the study name
    config_hash: Mapped[str] = mapped_column(String(64))
    manifest_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "participant_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    participant_index: Mapped[int] = mapped_column(Integer)  # enrolment order, unique per study
    slot: Mapped[int | None] = mapped_column(Integer)  # counterbalancing cell (None: = index)
    seed: Mapped[int] = mapped_column(BigInteger)
    app_version: Mapped[str] = mapped_column(String(32))
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    meta: Mapped[dict | None] = mapped_column(JSON)  # age band, hearing, language, ...
    status: Mapped[str] = mapped_column(String(20), default="consent")
    exclusion: Mapped[str | None] = mapped_column(String(200))  # screening reason
    break_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    debrief: Mapped[dict | None] = mapped_column(JSON)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ListeningSession(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    sample_rate: Mapped[float | None] = mapped_column(Float)
    output_latency: Mapped[float | None] = mapped_column(Float)


class TrialRow(Base):
    """A trial as shown: written, with the commitment to its key, before the browser gets it."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "trial_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial_index: Mapped[int] = mapped_column(Integer)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    config_hash: Mapped[str] = mapped_column(String(64))
    block: Mapped[int] = mapped_column(Integer)
    trial_type: Mapped[str] = mapped_column(String(10))
    item_id: Mapped[str] = mapped_column(String(200))
    order_cell: Mapped[int] = mapped_column(Integer)
    x_is: Mapped[str] = mapped_column(String(1))
    gain_db: Mapped[float | None] = mapped_column(Float)
    commitment: Mapped[str] = mapped_column(String(64))  # sha256(public_id|x_is|item|nonce)
    nonce: Mapped[str] = mapped_column(String(32))
    sha256_a: Mapped[str | None] = mapped_column(String(64))
    sha256_b: Mapped[str | None] = mapped_column(String(64))
    sha256_x: Mapped[str | None] = mapped_column(String(64))
    stimulus: Mapped[dict | None] = mapped_column(JSON)  # manifest side data of the item
    shown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("participant_id", "trial_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial_index: Mapped[int] = mapped_column(Integer)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    response: Mapped[str] = mapped_column(String(1))
    correct: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[int | None] = mapped_column(Integer)
    rt_ms: Mapped[float | None] = mapped_column(Float)
    rt_from_first_x_ms: Mapped[float | None] = mapped_column(Float)
    plays_a: Mapped[int] = mapped_column(Integer, default=0)
    plays_b: Mapped[int] = mapped_column(Integer, default=0)
    plays_x: Mapped[int] = mapped_column(Integer, default=0)
    ms_heard_a: Mapped[float] = mapped_column(Float, default=0.0)
    ms_heard_b: Mapped[float] = mapped_column(Float, default=0.0)
    ms_heard_x: Mapped[float] = mapped_column(Float, default=0.0)
    switches: Mapped[int] = mapped_column(Integer, default=0)
    loop_used: Mapped[bool] = mapped_column(Boolean, default=False)
    blur_events: Mapped[int] = mapped_column(Integer, default=0)
    answered_without_x: Mapped[bool] = mapped_column(Boolean, default=False)
    environment: Mapped[dict | None] = mapped_column(JSON)  # user agent, AudioContext rate
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PlayEvent(Base):
    __tablename__ = "plays"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial_index: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(20))  # play, stop, switch, loop, blur, focus, ...
    label: Mapped[str | None] = mapped_column(String(2))
    t_ms: Mapped[float] = mapped_column(Float)  # since the trial was shown, browser clock
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScreenAnswer(Base):
    __tablename__ = "screen_answers"
    __table_args__ = (UniqueConstraint("participant_id", "kind", "attempt", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # headphone | environment
    attempt: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    response: Mapped[int] = mapped_column(Integer)
    correct: Mapped[bool] = mapped_column(Boolean)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _sqlite_immediate(engine: Any) -> None:
    """SQLite: WAL, a busy timeout, and BEGIN IMMEDIATE so concurrent writers queue, not fail."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """One database; ``url`` is any SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False})
            _sqlite_immediate(self.engine)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        Base.metadata.create_all(self.engine)
        self._upgrade()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self._sessions() as s, s.begin():
            yield s

    def enroll(self, study_id: str, token: str, seed: int, app_version: str,
               user_agent: str | None = None, hold_minutes: float = 120.0,
               attempts: int = 30) -> Participant:
        """A new participant with a unique enrolment index and a counterbalancing slot.

        The index is one more than the study's largest (unique per study: a concurrent
        duplicate fails the constraint and is drawn again). The slot is the smallest one that
        no finished participant, and no unfinished one enrolled less than ``hold_minutes``
        ago, holds: dropouts, screened-out participants and bots give their slot back, so the
        counterbalancing cells fill with sessions that count. Concurrent enrolments are
        serialised by a lock on the study row (PostgreSQL) or BEGIN IMMEDIATE (SQLite).
        """
        for attempt in range(attempts):
            try:
                with self.session() as s:
                    s.scalar(select(StudyRow.id).where(StudyRow.id == study_id)
                             .with_for_update())  # SQLite: no-op; BEGIN IMMEDIATE locks
                    top = s.scalar(select(func.max(Participant.participant_index))
                                   .where(Participant.study_id == study_id))
                    slot = self._free_slot(s, study_id, hold_minutes)
                    p = Participant(study_id=study_id, token=token, seed=seed,
                                    participant_index=0 if top is None else top + 1, slot=slot,
                                    app_version=app_version, user_agent=user_agent)
                    s.add(p)
                return p
            except (IntegrityError, OperationalError):
                if attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise StudyError("unreachable")  # pragma: no cover

    @staticmethod
    def _free_slot(s: Session, study_id: str, hold_minutes: float) -> int:
        since = utcnow() - timedelta(minutes=hold_minutes)
        rows = s.execute(select(Participant.slot, Participant.participant_index,
                                Participant.status, Participant.created_at)
                         .where(Participant.study_id == study_id)).all()
        held = set()
        for slot, index, status, created in rows:
            created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
            finished = status in ("debrief", "done")
            active = status != "screened_out" and created >= since
            if finished or active:
                held.add(index if slot is None else slot)
        return next(k for k in range(len(held) + 1) if k not in held)

    def participant(self, s: Session, token: str) -> Participant | None:
        return s.scalar(select(Participant).where(Participant.token == token))

    def _upgrade(self) -> None:
        """Add the ``slot`` column to a store written before it existed (NULL: slot = index)."""
        cols = {c["name"] for c in inspect(self.engine).get_columns("participants")}
        if "slot" not in cols:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE participants ADD COLUMN slot INTEGER"))

    def dispose(self) -> None:
        self.engine.dispose()


def default_url(study_name: str) -> str:
    """``sqlite:///<workspace>/studies/NAME/study.db`` unless ``SEOFP_STUDY_DB`` gives a URL."""
    import os  # noqa: PLC0415

    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    return os.environ.get("SEOFP_STUDY_DB") or (
        f"sqlite:///{workspace_path('studies', study_name, 'study.db')}")


class ClipServe(Base):
    """One clip's audio leaving the server (docs/listening_blinding.md#played): the server's
    own record of playback, by its clock. A trial is answerable only after every clip of it
    has a row here and enough time has passed (``seofp_lab.listening.blinding.playback``)."""

    __tablename__ = "clip_serves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    public_id: Mapped[str] = mapped_column(String(36), index=True)  # trial or screening id
    label: Mapped[str] = mapped_column(String(2))
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)  # the clip without serve padding
    nbytes: Mapped[int] = mapped_column(Integer)


def _bound_json(value: Any) -> Any:
    """Strings inside cut to JSON_TEXT_MAX; the whole replaced by a note when still too long."""
    def cut(v: Any) -> Any:
        if isinstance(v, str):
            return v[:JSON_TEXT_MAX]
        if isinstance(v, dict):
            return {str(k)[:100]: cut(x) for k, x in list(v.items())[:100]}
        if isinstance(v, (list, tuple)):
            return [cut(x) for x in list(v)[:100]]
        return v

    out = cut(value)
    size = len(json.dumps(out, default=str))
    return out if size <= JSON_MAX_CHARS else {"truncated": f"{size} characters"}


def bound_row(obj: Any) -> None:
    """Cut every string column to its declared length and bound every JSON column, so no
    value a browser sends can make a write fail (PostgreSQL enforces VARCHAR lengths)."""
    for col in obj.__table__.columns:
        value = getattr(obj, col.key, None)
        if value is None:
            continue
        if isinstance(col.type, String) and col.type.length and isinstance(value, str):
            if len(value) > col.type.length:
                setattr(obj, col.key, value[: col.type.length])
        elif isinstance(col.type, JSON) and (bounded := _bound_json(value)) != value:
            setattr(obj, col.key, bounded)


@event.listens_for(Session, "before_flush")
def _bound_before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Base):
            bound_row(obj)


# --------------------------------------------------------------------------------------------
# Crowd identities, incidents and experimenter accounts (docs/listening_participants.md): new
# tables only, so a store created before them gains them on the next start and loses nothing.


class CrowdId(Base):
    """A crowd platform's ids for a participant: the same platform id resumes, never re-enrols."""

    __tablename__ = "crowd_ids"
    __table_args__ = (UniqueConstraint("study_id", "platform", "crowd_pid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    study_id: Mapped[str] = mapped_column(String(100), index=True)
    platform: Mapped[str] = mapped_column(String(10))  # prolific | mturk
    crowd_pid: Mapped[str] = mapped_column(String(64))  # PROLIFIC_PID or workerId
    crowd_study: Mapped[str | None] = mapped_column(String(64))  # STUDY_ID or hitId
    crowd_session: Mapped[str | None] = mapped_column(String(64))  # SESSION_ID or assignmentId
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Incident(Base):
    """An unexpected error on a participant page: the participant sees only its id."""

    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    study_id: Mapped[str | None] = mapped_column(String(100), index=True)
    participant_id: Mapped[int | None] = mapped_column(Integer)
    page: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str] = mapped_column(String(400))
    traceback: Mapped[str] = mapped_column(String(8000))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Experimenter(Base):
    """An experimenter account: scrypt hash of the password with its own salt."""

    __tablename__ = "experimenters"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginAttempt(Base):
    """Every experimenter login attempt, kept for the rate limit and for audit."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(20))  # ok | wrong | locked
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ExportSalt(Base):
    """The per-study secret that turns tokens into pseudonyms in every export."""

    __tablename__ = "export_salts"
    study_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
