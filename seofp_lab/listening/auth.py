"""Experimenter accounts, rate-limited logins, export pseudonyms and incident records.

Passwords are stored as scrypt hashes with a salt per user; every login attempt is a row in the
store. Five failures within a minute for one user, or from one address, lock it out; each further
lockout doubles (1, 2, 4, … up to 60 min) while the failures keep coming
(docs/listening_participants.md#experimenter-accounts-and-security).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from seofp_lab.errors import StudyError
from seofp_lab.listening.store import (
    Experimenter,
    ExportSalt,
    Incident,
    LoginAttempt,
    Store,
    utcnow,
)

log = logging.getLogger("seofp.listening")
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10
MAX_FAILURES = 5  # per user and per address, within WINDOW
WINDOW = timedelta(minutes=1)
MAX_LOCK = timedelta(minutes=60)
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 64}  # 16 MiB, ~50 ms: slow to guess, fine to log in


def _hash(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 2**20, **SCRYPT).hex()


def add_user(store: Store, username: str, password: str) -> None:
    """Create an experimenter account, or set a new password for an existing one."""
    if not USERNAME.match(username):
        raise StudyError(f"Expected a user name of 1-64 letters, digits, _ . @ or - but got "
                         f"{username!r}")
    if len(password) < MIN_PASSWORD:
        raise StudyError(f"Expected a password of at least {MIN_PASSWORD} characters but got "
                         f"{len(password)}")
    salt = secrets.token_bytes(16)
    with store.session() as s:
        row = s.get(Experimenter, username) or Experimenter(username=username)
        row.salt, row.password_hash = salt.hex(), _hash(password, salt)
        s.merge(row)


def has_users(store: Store) -> bool:
    with store.session() as s:
        return s.scalar(select(Experimenter.username).limit(1)) is not None


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    locked_for_s: float = 0.0  # > 0: refused without checking the password


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=t.tzinfo or utcnow().tzinfo)


def _lockout(rows: list[LoginAttempt], now: datetime) -> float:
    """Seconds left of a lockout, given one key's attempts (oldest first).

    Every run of MAX_FAILURES failures inside WINDOW starts a lockout; the k-th lockout since the
    last success lasts 2**(k-1) minutes. Attempts refused while locked do not count.
    """
    locks, until, recent = 0, None, []
    for a in rows:
        at = _aware(a.at)
        if a.ok:
            locks, recent, until = 0, [], None
            continue
        if a.outcome == "locked":
            continue
        recent = [t for t in recent if at - t < WINDOW] + [at]
        if len(recent) >= MAX_FAILURES:
            locks += 1
            until = at + min(MAX_LOCK, timedelta(minutes=2 ** (locks - 1)))
            recent = []
    return max(0.0, (until - now).total_seconds()) if until else 0.0


def login(store: Store, username: str, password: str, address: str | None) -> LoginResult:
    """Check a password under the rate limit; every attempt is logged, the password never."""
    user = str(username)[:64]
    addr = str(address or "unknown")[:64]
    now = utcnow()
    since = now - MAX_LOCK * 2
    with store.session() as s:
        by_user = s.scalars(select(LoginAttempt).where(
            LoginAttempt.username == user, LoginAttempt.at >= since)
            .order_by(LoginAttempt.id)).all()
        by_addr = s.scalars(select(LoginAttempt).where(
            LoginAttempt.address == addr, LoginAttempt.at >= since)
            .order_by(LoginAttempt.id)).all()
        wait = max(_lockout(by_user, now), _lockout(by_addr, now))
        if wait > 0:
            s.add(LoginAttempt(username=user, address=addr, ok=False, outcome="locked", at=now))
            log.warning("experimenter login refused (locked %.0f s): user %r from %s",
                        wait, user, addr)
            return LoginResult(False, wait)
        row = s.get(Experimenter, user)
        # the hash is computed for unknown users too, so timing does not reveal which exist
        salt = bytes.fromhex(row.salt) if row else b"\0" * 16
        ok = hmac.compare_digest(_hash(password, salt), row.password_hash if row else "")
        s.add(LoginAttempt(username=user, address=addr, ok=ok, outcome="ok" if ok else "wrong",
                           at=now))
    log.info("experimenter login %s: user %r from %s", "ok" if ok else "failed", user, addr)
    return LoginResult(ok)


# ----------------------------------------------------------------------------- pseudonyms
def export_salt(store: Store, study: str) -> bytes:
    """The study's secret salt for pseudonyms, created on first use and kept in the store."""
    with store.session() as s:
        row = s.get(ExportSalt, study)
        if row is None:
            row = ExportSalt(study_id=study, salt=secrets.token_hex(32))
            s.add(row)
        return bytes.fromhex(row.salt)


def pseudonym(salt: bytes, token: str) -> str:
    """A stable, salted stand-in for a token in exports: HMAC-SHA256, 16 hex digits.

    >>> pseudonym(b"salt", "tok") == pseudonym(b"salt", "tok") != pseudonym(b"pepper", "tok")
    True
    """
    return hmac.new(salt, token.encode(), hashlib.sha256).hexdigest()[:16]


# ------------------------------------------------------------------------------ incidents
def record_incident(store: Store | None, exc: BaseException, study: str | None = None,
                    participant_id: int | None = None, page: str | None = None) -> str:
    """Log an unexpected error for the experimenter; returns the id the participant is shown."""
    incident = secrets.token_hex(4).upper()
    tb = "".join(traceback.format_exception(exc))
    log.error("incident %s (study %s, participant %s, page %s):\n%s", incident, study,
              participant_id, page, tb)
    if store is not None:
        try:
            with store.session() as s:
                s.add(Incident(id=incident, study_id=study, participant_id=participant_id,
                               page=(page or "")[:40], error=repr(exc)[:400],
                               traceback=tb[-8000:]))
        except Exception:  # noqa: BLE001 - the store itself may be what failed; the log has it
            log.exception("incident %s could not be stored", incident)
    return incident
