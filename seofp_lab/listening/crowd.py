"""Crowd-ready participation: platform ids, codes and redirects, device, bandwidth and time checks.

The ``crowd:`` section of ``study.yaml`` (:class:`CrowdSpec`) says which checks run and what a
participant is sent back to; docs/listening_participants.md describes the flow. Nothing here
imports Streamlit: the pages call these functions with plain values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit

import numpy as np
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from seofp_lab.config import Strict
from seofp_lab.errors import StudyError
from seofp_lab.listening.store import CrowdId, Participant, utcnow

if TYPE_CHECKING:
    from seofp_lab.listening.listener import StudyService

CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CROWD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UA_MAX = 400  # the store's user_agent columns
MOBILE_UA = re.compile(r"Mobi|iPhone|iPod|iPad|Android|Tablet|Silk|Kindle|BlackBerry|Opera Mini",
                       re.IGNORECASE)


class CrowdSpec(Strict):
    """The ``crowd:`` section: participant-facing checks, codes and redirects."""

    completion_code: str | None = None  # shown (and sent to completion_url) at the end
    completion_url: str | None = None  # https://…; "{code}" is replaced by the code
    screened_out_code: str | None = None  # shown when a check ends the study early
    screened_out_url: str | None = None
    max_session_minutes: float | None = Field(None, gt=0)  # from consent, on the server clock
    desktop_only: bool = True  # phones and tablets are refused with a clear page
    min_screen_width: int = Field(1024, ge=0)  # CSS pixels; 0: no width check
    bandwidth_trials: int = Field(0, ge=0)  # full-band vs low-passed 2-AFC pairs (0: off)
    bandwidth_pass: int = Field(0, ge=0)
    bandwidth_cutoff_hz: float = Field(3500.0, ge=1000.0, le=12000.0)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, Mapping) and ({"confidence_levels", "confidence_labels"} & set(data)):
            raise ValueError("crowd.confidence_levels/confidence_labels are now the one "
                             "top-level setting `confidence: false | true | <levels> | "
                             "[labels]` in study.yaml")
        return data

    @model_validator(mode="after")
    def _check(self) -> CrowdSpec:
        for name in ("completion_code", "screened_out_code"):
            code = getattr(self, name)
            if code is not None and not CODE.match(code):
                raise ValueError(f"Expected crowd.{name} of 1-64 letters, digits, _ or - but "
                                 f"got {code!r}")
        for name in ("completion_url", "screened_out_url"):
            url = getattr(self, name)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                raise ValueError(f"Expected crowd.{name} to be an http(s) URL but got {url!r}")
            code = getattr(self, name.replace("_url", "_code"))
            if "{code}" in url and code is None:
                raise ValueError(f"Expected crowd.{name.replace('_url', '_code')} because "
                                 f"crowd.{name} contains {{code}}")
        if self.bandwidth_pass > self.bandwidth_trials:
            raise ValueError("Expected crowd.bandwidth_pass <= bandwidth_trials but got "
                             f"{self.bandwidth_pass} > {self.bandwidth_trials}")
        return self


def bounded(text: object, limit: int) -> str | None:
    """``text`` as a string of at most ``limit`` characters (None stays None).

    >>> bounded("x" * 500, 400) == "x" * 400
    True
    """
    if text is None:
        return None
    return str(text)[:limit]


# ------------------------------------------------------------------------------ crowd platforms
@dataclass(frozen=True)
class CrowdIdentity:
    """Who a crowd platform says the participant is."""

    platform: Literal["prolific", "mturk"]
    participant: str
    study: str | None = None
    session: str | None = None
    preview: bool = False  # MTurk shows a HIT before it is accepted: look, do not start


PARAMS = {"prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
          "mturk": ("workerId", "hitId", "assignmentId")}


def crowd_identity(query: Mapping[str, str]) -> CrowdIdentity | None:
    """Read Prolific (PROLIFIC_PID, STUDY_ID, SESSION_ID) or MTurk (workerId, hitId,
    assignmentId) URL parameters; None when neither is present.

    Raises:
        StudyError: an id that is not 1-64 letters, digits, _ or -.
    """
    if query.get("assignmentId") == "ASSIGNMENT_ID_NOT_AVAILABLE":
        return CrowdIdentity("mturk", "preview", preview=True)
    for platform, (pid_key, study_key, session_key) in PARAMS.items():
        pid = query.get(pid_key)
        if not pid:
            continue
        values = [pid, query.get(study_key), query.get(session_key)]
        for key, value in zip((pid_key, study_key, session_key), values, strict=True):
            if value is not None and not CROWD_ID.match(str(value)):
                raise StudyError(f"Expected the link's {key} to be 1-64 letters, digits, _ or - "
                                 "but it is not; open the study again from the platform")
        return CrowdIdentity(platform, str(pid), values[1], values[2])  # type: ignore[arg-type]
    return None


def find_crowd_token(service: StudyService, identity: CrowdIdentity) -> str | None:
    """The token of the participant this platform id enrolled before, if any."""
    with service.store.session() as s:
        return s.scalar(select(Participant.token).join(
            CrowdId, CrowdId.participant_id == Participant.id).where(
            CrowdId.study_id == service.study.name, CrowdId.platform == identity.platform,
            CrowdId.crowd_pid == identity.participant))


def enroll_crowd(service: StudyService, identity: CrowdIdentity, user_agent: str | None) -> str:
    """Resume the participant of this platform id, or enrol one and store its ids.

    Two tabs racing to enrol the same id end with one participant: the loser's fresh enrolment
    is removed and the winner's token returned.
    """
    if identity.preview:
        raise StudyError("Expected an accepted assignment but this is an MTurk preview")
    token = find_crowd_token(service, identity)
    if token is not None:
        return token
    token = service.enroll(bounded(user_agent, UA_MAX))
    try:
        with service.store.session() as s:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            s.add(CrowdId(participant_id=pid, study_id=service.study.name,
                          platform=identity.platform, crowd_pid=identity.participant,
                          crowd_study=identity.study, crowd_session=identity.session))
    except IntegrityError:
        try:  # the fresh enrolment has nothing yet; if something refers to it, it stays unused
            with service.store.session() as s:
                s.delete(s.scalar(select(Participant).where(Participant.token == token)))
        except IntegrityError:
            pass
        winner = find_crowd_token(service, identity)
        if winner is None:
            raise
        return winner
    return token


# ----------------------------------------------------------------------------------- endings
def ending(spec: CrowdSpec, kind: Literal["completed", "screened_out"]
           ) -> tuple[str | None, str | None]:
    """(code, redirect URL) for the end of a session; either may be None (not configured)."""
    code = spec.completion_code if kind == "completed" else spec.screened_out_code
    url = spec.completion_url if kind == "completed" else spec.screened_out_url
    if url is not None and code is not None:
        url = url.replace("{code}", quote(code, safe=""))
    return code, url


def session_deadline_passed(service: StudyService, pid: int) -> bool:
    """True once ``max_session_minutes`` have passed since consent (server clock), and then
    the participant is ended here: status ``screened_out`` with the time limit as reason."""
    limit = service.study.crowd.max_session_minutes
    if limit is None:
        return False
    with service.store.session() as s:
        p = s.get(Participant, pid)
        if p.consented_at is None or p.status in ("done", "screened_out", "debrief"):
            return False
        start = p.consented_at.replace(tzinfo=p.consented_at.tzinfo or utcnow().tzinfo)
        if utcnow() - start <= timedelta(minutes=limit):
            return False
        p.status, p.exclusion = "screened_out", f"time limit: over {limit:g} min since consent"
        return True


# ------------------------------------------------------------------------------------ devices
def device_refusal(spec: CrowdSpec, user_agent: str | None, screen_width: float | None = None,
                   coarse_pointer: bool | None = None) -> str | None:
    """Why this device may not take part (None: it may). Desktop only means no phone or tablet
    user agent, no touch-only pointer, and a screen at least ``min_screen_width`` wide."""
    if not spec.desktop_only:
        return None
    if user_agent and MOBILE_UA.search(user_agent):
        return ("This study needs a desktop or laptop computer; phones and tablets cannot "
                "take part.")
    if coarse_pointer:
        return ("This study needs a computer with a mouse or trackpad; touch screens cannot "
                "take part.")
    if screen_width is not None and spec.min_screen_width and screen_width < spec.min_screen_width:
        return (f"This study needs a screen at least {spec.min_screen_width} pixels wide; "
                f"yours is {screen_width:.0f}.")
    return None


# ---------------------------------------------------------------------------- bandwidth check
def lowpass(x: np.ndarray, rate: int, cutoff_hz: float, width_hz: float = 200.0) -> np.ndarray:
    """Zero-phase FFT low-pass with a raised-cosine transition ``width_hz`` wide, so it is not
    a brickwall that rings; the length and alignment of ``x`` are kept."""
    spec = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(len(x), 1 / rate)
    ramp = np.clip((f - (cutoff_hz - width_hz / 2)) / width_hz, 0, 1)
    gain = 0.5 * (1 + np.cos(np.pi * ramp))
    return np.fft.irfft(spec * (gain[:, None] if x.ndim == 2 else gain), n=len(x), axis=0)


def bandwidth_pair(speech: np.ndarray, rate: int, cutoff_hz: float, rng: np.random.Generator
                   ) -> tuple[list[np.ndarray], int]:
    """Bandwidth check: the same speech full-band and low-passed at ``cutoff_hz`` (a telephone
    band), equal in RMS; the answer is the index of the low-passed, muffled one.

    The full-band clip gets a little white noise 30 dB below the speech (a "crisp" cue above
    the cutoff even for narrowband sources) before either is made.
    """
    x = np.asarray(speech, dtype=np.float64)
    rms = np.sqrt(np.mean(x**2)) or 1e-3
    full = x + rng.standard_normal(len(x)) * rms * 10 ** (-30 / 20)
    low = lowpass(full, rate, cutoff_hz)
    low *= np.sqrt(np.mean(full**2) / max(np.mean(low**2), 1e-12))
    peak = max(np.abs(full).max(), np.abs(low).max())
    scale = min(1.0, 0.89 / peak)  # peaks below -1 dBFS
    order = rng.permutation(2)
    clips = [full * scale, low * scale]
    return [clips[i] for i in order], int(np.where(order == 1)[0][0])


def screen_rules(service: StudyService, kind: str) -> tuple[int, int, int, bool]:
    """(trials, needed correct, choices, one retry allowed) of a screening phase."""
    scr, crowd = service.study.screening, service.study.crowd
    if kind == "headphone":
        return scr.headphone_trials, scr.headphone_pass, 3, False
    if kind == "environment":
        return scr.environment_trials, scr.environment_pass, 2, True
    if kind == "bandwidth":
        return crowd.bandwidth_trials, crowd.bandwidth_pass, 2, True
    raise StudyError(f"Expected a screening kind (headphone, environment, bandwidth) but got "
                     f"{kind!r}")
