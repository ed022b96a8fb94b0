"""The listener-facing service: enrol, resume by token, serve trials, score answers on the server.

The app (``app/``) calls only this module. What it hands to the browser (:class:`ServedTrial`)
holds a random public id, labels and one-use audio tickets, never a run, item, answer or audio;
the audio is rendered per fetch with independent transforms (docs/listening_blinding.md).
Every method that writes commits before it returns; bad input raises :class:`StudyError` and
changes nothing.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from seofp_lab import __version__
from seofp_lab.errors import StudyError
from seofp_lab.listening.blinding import VAULT, Playback, playback
from seofp_lab.listening.crowd import bandwidth_pair, screen_rules
from seofp_lab.listening.protocol import TrialSpec, build_schedule, load_study
from seofp_lab.listening.serve import serve_abx
from seofp_lab.listening.served import ServedTrial
from seofp_lab.listening.stimuli import (
    load_manifest,
    prepared_dir,
    snr_pair,
    tone_triplet,
)
from seofp_lab.listening.store import (
    Answer,
    ListeningSession,
    Participant,
    PlayEvent,
    ScreenAnswer,
    Store,
    StudyRow,
    TrialRow,
    default_url,
    utcnow,
)

Phase = Literal["consent", "metadata", "headphone", "environment", "bandwidth", "trials", "break",
                "debrief", "done", "screened_out"]
LOG_INTS = ("plays_a", "plays_b", "plays_x", "switches", "blur_events")
LOG_FLOATS = ("ms_heard_a", "ms_heard_b", "ms_heard_x", "rt_ms", "rt_from_first_x_ms")


@dataclass(frozen=True)
class AnswerResult:
    correct: bool
    feedback: bool  # True only in practice: the app may say whether it was right


class StudyService:
    """One study: its definition, frozen stimuli and store. Shared by every listener session."""

    def __init__(self, study_dir: str | Path, store_url: str | None = None,
                 manifest_dir: Path | None = None) -> None:
        self.study_dir = Path(study_dir)
        self.study, self.config_hash = load_study(study_dir)
        self.manifest = load_manifest(manifest_dir or prepared_dir(self.study.name),
                                      self.config_hash)
        self.store = Store(store_url or default_url(self.study.name))
        self._register()

    def _register(self) -> None:
        with self.store.session() as s:
            row = s.get(StudyRow, self.study.name)
            if row is None:
                s.add(StudyRow(id=self.study.name, config_hash=self.config_hash,
                               manifest_hash=self.manifest.digest))
                return
            if (row.config_hash, row.manifest_hash) == (self.config_hash, self.manifest.digest):
                return
            answered = s.scalar(select(func.count(Answer.id)).join(Participant).where(
                Participant.study_id == self.study.name))
            if answered:
                raise StudyError(
                    f"Expected study.yaml and stimuli unchanged after the first answer "
                    f"(config {row.config_hash[:12]}, manifest {row.manifest_hash[:12]}) but got "
                    f"config {self.config_hash[:12]}, manifest {self.manifest.digest[:12]}; "
                    "a changed pre-registration needs a new study name")
            row.config_hash, row.manifest_hash = self.config_hash, self.manifest.digest

    def enroll(self, user_agent: str | None = None) -> str:
        """A new participant with a CSPRNG seed; returns the token to put in the URL."""
        token = secrets.token_urlsafe(16)
        self.store.enroll(self.study.name, token, secrets.randbits(62), __version__, user_agent,
                          self.study.trials.hold_minutes)
        return token

    def listener(self, token: str | None, user_agent: str | None = None) -> Listener:
        """Resume a participant by token, opening a new listening session (one per visit);
        an unknown token is refused and writes nothing."""
        with self.store.session() as s:
            p = self.store.participant(s, token or "")
            if p is None or p.study_id != self.study.name:
                raise StudyError(f"Expected a participant token of study {self.study.name!r} "
                                 f"but got {token!r}; start again from the study link")
            visit = ListeningSession(participant_id=p.id, user_agent=user_agent)
            s.add(visit)
            s.flush()
            slot = p.participant_index if p.slot is None else p.slot  # counterbalancing cell
            return Listener(self, p.id, p.token, p.seed, slot, visit.id)


@dataclass
class Listener:
    """One participant's progress; every fact lives in the store, so any number may exist."""

    service: StudyService
    pid: int
    token: str
    seed: int
    index: int
    session_id: int | None = None  # the visit (sessions table) trials shown now belong to
    _screen: dict[str, tuple[str, int, int, int]] = field(default_factory=dict, repr=False)

    @cached_property
    def schedule(self) -> list[TrialSpec]:
        m = self.service.manifest
        return build_schedule(self.service.study, m.items, self.seed, self.index, m.ladder_items)

    def _participant(self, s: Any) -> Participant:
        return s.get(Participant, self.pid)

    # -------------------------------------------------------------------------- phases
    def phase(self) -> Phase:
        with self.service.store.session() as s:
            p = self._participant(s)
            if p.status == "trials" and p.break_until is not None:
                until = p.break_until.replace(tzinfo=p.break_until.tzinfo or utcnow().tzinfo)
                if until > utcnow():
                    return "break"
            return p.status  # type: ignore[return-value]

    def break_seconds_left(self) -> float:
        with self.service.store.session() as s:
            p = self._participant(s)
            if p.break_until is None:
                return 0.0
            until = p.break_until.replace(tzinfo=p.break_until.tzinfo or utcnow().tzinfo)
            return max(0.0, (until - utcnow()).total_seconds())

    def _advance(self, p: Participant, after: str) -> None:
        order = ["consent", "metadata", "headphone", "environment", "bandwidth", "trials"]
        skip = {k: screen_rules(self.service, k)[0] == 0 for k in order[2:5]}
        nxt = order.index(after) + 1
        while order[nxt] in skip and skip[order[nxt]]:
            nxt += 1
        p.status = order[nxt]

    def consent(self, version: str, agreed: bool) -> None:
        if not agreed:
            raise StudyError("Expected consent to be given before the study starts")
        if version != self.service.study.consent_version:
            raise StudyError(f"Expected consent version {self.service.study.consent_version!r} "
                             f"but got {version!r}")
        with self.service.store.session() as s:
            p = self._participant(s)
            if p.status == "consent":
                p.consent_version, p.consented_at = version, utcnow()
                self._advance(p, "consent")

    def save_metadata(self, meta: dict[str, str]) -> None:
        with self.service.store.session() as s:
            p = self._participant(s)
            if p.status != "metadata":
                raise StudyError(f"Expected the metadata step but this participant is at "
                                 f"{p.status!r}")
            p.meta = {str(k): str(v) for k, v in meta.items()}
            self._advance(p, "metadata")

    def save_debrief(self, debrief: dict[str, str]) -> None:
        with self.service.store.session() as s:
            p = self._participant(s)
            if p.status != "debrief":
                raise StudyError(f"Expected the debrief step but this participant is at "
                                 f"{p.status!r}")
            p.debrief, p.status, p.finished_at = dict(debrief), "done", utcnow()

    # ------------------------------------------------------------------------ screening
    def _screen_stimulus(self, kind: str, attempt: int, i: int) -> tuple[list[np.ndarray], int]:
        rng = np.random.default_rng([self.seed, 7 if kind == "headphone" else 8, attempt, i])
        rate = self.service.manifest.data["sample_rate"]
        if kind == "headphone":
            return tone_triplet(rate, rng)
        first = self.service.manifest.items[0].item_id
        speech = self.service.manifest.clip(first, "baseline")[: 2 * rate]
        if kind == "bandwidth":
            return bandwidth_pair(speech, rate, self.service.study.crowd.bandwidth_cutoff_hz, rng)
        return snr_pair(speech, rng)

    def screen_trial(self) -> ServedTrial | None:
        """The next headphone/environment trial of the current attempt (None: phase done)."""
        kind = self.phase()
        if kind not in ("headphone", "environment", "bandwidth"):
            return None
        total = screen_rules(self.service, kind)[0]
        with self.service.store.session() as s:
            done = s.scalars(select(ScreenAnswer).where(
                ScreenAnswer.participant_id == self.pid, ScreenAnswer.kind == kind)).all()
        attempt = max((a.attempt for a in done), default=1)
        i = sum(a.attempt == attempt for a in done)
        if i >= total:  # a failed first attempt that may be retried: the retry starts afresh
            attempt, i = attempt + 1, 0
        clips, correct = self._screen_stimulus(kind, attempt, i)
        public_id = str(uuid.uuid4())
        self._screen = {public_id: (kind, attempt, i, correct)}
        rate = self.service.manifest.data["sample_rate"]
        labels = tuple(str(k + 1) for k in range(len(clips)))
        tickets = VAULT.issue(self.service.store, self.pid, public_id, labels, clips, rate)
        return ServedTrial(public_id, kind, labels, tickets, i + 1, total, clips=tuple(clips),
                           rate=rate)

    def playback(self, served: ServedTrial, now: datetime | None = None) -> Playback:
        """The server's own account of a served trial's playback (the answer gate)."""
        return playback(self.service.store, self.pid, served.public_id, served.labels,
                        self.service.study.player.min_play_seconds, now)

    def record_screen(self, public_id: str, response: int, enforce_playback: bool = False
                      ) -> None:
        """Store one screening answer; after the last, pass on, retry once, or screen out.

        ``enforce_playback`` (the app sets it): refuse unless the server served every clip and
        enough time passed (:func:`~seofp_lab.listening.blinding.playback`)."""
        if public_id not in self._screen:
            raise StudyError(f"Expected the screening trial on screen but got {public_id!r}")
        kind, attempt, i, correct = self._screen[public_id]
        total, need, n_choices, retry = screen_rules(self.service, kind)
        if enforce_playback:
            self._require_played(public_id, tuple(str(k + 1) for k in range(n_choices)))
        if not isinstance(response, int) or not 0 <= response < n_choices:
            raise StudyError(f"Expected a choice 1..{n_choices} but got {response!r}")
        try:
            with self.service.store.session() as s:
                s.add(ScreenAnswer(participant_id=self.pid, kind=kind, attempt=attempt, index=i,
                                   response=response, correct=response == correct))
                s.flush()
                if i + 1 == total:
                    got = s.scalar(select(func.count(ScreenAnswer.id)).where(
                        ScreenAnswer.participant_id == self.pid, ScreenAnswer.kind == kind,
                        ScreenAnswer.attempt == attempt, ScreenAnswer.correct.is_(True)))
                    p = self._participant(s)
                    if got >= need:
                        self._advance(p, kind)
                    elif not retry or attempt >= 2:
                        p.status = "screened_out"
                        p.exclusion = f"{kind} screen {got}/{total} (need {need})"
        except IntegrityError:
            raise StudyError("Expected one answer per screening trial but this one was "
                             "already answered") from None
        self._screen = {}

    # --------------------------------------------------------------------------- trials
    def progress(self) -> tuple[int, int]:
        """(answered, scheduled) trials."""
        with self.service.store.session() as s:
            n = s.scalar(select(func.count(Answer.id)).where(Answer.participant_id == self.pid))
        return int(n or 0), len(self.schedule)

    def score(self) -> tuple[int, int]:
        """(correct, answered) over scored trials (practice excluded); shown only at the end."""
        with self.service.store.session() as s:
            rows = s.execute(select(Answer.correct).join(TrialRow, TrialRow.id == Answer.trial_id)
                             .where(Answer.participant_id == self.pid,
                                    TrialRow.trial_type != "practice")).all()
        return sum(bool(r[0]) for r in rows), len(rows)

    def _pending(self, s: Any) -> TrialSpec | None:
        answered = set(s.scalars(select(Answer.trial_index).where(
            Answer.participant_id == self.pid)))
        return next((t for t in self.schedule if t.index not in answered), None)

    def next_trial(self) -> ServedTrial | None:
        """The first unanswered trial, committed with its key's commitment before it is served."""
        if self.phase() != "trials":
            return None
        with self.service.store.session() as s:
            spec = self._pending(s)
            if spec is None:
                return None
            return serve_abx(self, s, spec)

    def _require_played(self, public_id: str, labels: tuple[str, ...]) -> Playback:
        got = playback(self.service.store, self.pid, public_id, labels,
                       self.service.study.player.min_play_seconds)
        if not got.ok:
            missing = [label for label in labels if label not in got.first_served]
            why = (f"clip(s) {', '.join(missing)} never served" if missing
                   else f"{got.wait_s:.1f} s of listening time still to go")
            raise StudyError(f"Expected every clip of the trial to have been played before the "
                             f"answer but {why}; play each clip, then answer")
        return got

    def record_answer(self, public_id: str, response: str, log: dict[str, Any] | None = None,
                      confidence: int | None = None, enforce_playback: bool = False
                      ) -> AnswerResult:
        """Score an answer on the server and commit it at once, with its listening log.

        Timings come from the server clock where the server served the audio: ``rt_ms`` from
        the trial row, ``rt_from_first_x_ms`` from X's first serve; the client's ``ms_heard_*``
        are capped by the time since that clip's first serve. ``enforce_playback`` (the app
        sets it) refuses an answer before :func:`~seofp_lab.listening.blinding.playback` is ok.
        """
        if response not in ("A", "B"):
            raise StudyError(f"Expected the answer 'A' or 'B' but got {response!r}")
        log = dict(log or {})
        if enforce_playback:
            self._require_played(str(public_id), ("A", "B", "X"))
        served = playback(self.service.store, self.pid, str(public_id), ("A", "B", "X"), 0.0)
        try:
            with self.service.store.session() as s:
                trial = s.scalar(select(TrialRow).where(TrialRow.public_id == str(public_id)))
                if trial is None or trial.participant_id != self.pid:
                    raise StudyError(f"Expected a trial shown to this participant but got "
                                     f"{public_id!r}")
                if s.scalar(select(Answer.id).where(Answer.participant_id == self.pid,
                                                    Answer.trial_index == trial.trial_index)):
                    raise StudyError(f"Expected one answer per trial but trial "
                                     f"{trial.trial_index} was already answered")
                spec = self._pending(s)
                if spec is None or spec.index != trial.trial_index:
                    raise StudyError(f"Expected an answer to the current trial but got one for "
                                     f"trial {trial.trial_index}")
                now = utcnow()
                values = {k: int(log.get(k, 0) or 0) for k in LOG_INTS}
                values.update({k: float(log.get(k, 0.0) or 0.0) for k in LOG_FLOATS})
                shown = trial.shown_at.replace(tzinfo=trial.shown_at.tzinfo or now.tzinfo)
                values["rt_ms"] = values["rt_ms"] or (now - shown).total_seconds() * 1000
                if served.first_served:  # the server played audio: its clock rules
                    values["rt_ms"] = (now - shown).total_seconds() * 1000
                    for label in ("a", "b", "x"):
                        at = served.first_served.get(label.upper())
                        cap = (now - at).total_seconds() * 1000 if at else 0.0
                        values[f"ms_heard_{label}"] = max(0.0, min(values[f"ms_heard_{label}"],
                                                                   cap))
                    at_x = served.first_served.get("X")
                    values["rt_from_first_x_ms"] = ((now - at_x).total_seconds() * 1000
                                                    if at_x else 0.0)
                min_ms = self.service.study.player.min_play_seconds * 1000
                s.add(Answer(participant_id=self.pid, trial_index=trial.trial_index,
                             trial_id=trial.id, response=response,
                             correct=response == trial.x_is, confidence=confidence,
                             loop_used=bool(log.get("loop_used", False)),
                             answered_without_x=values["ms_heard_x"] < max(min_ms, 1.0),
                             environment=log.get("environment"), answered_at=now, **values))
                for ev in list(log.get("events") or [])[:500]:
                    s.add(PlayEvent(participant_id=self.pid, trial_index=trial.trial_index,
                                    event=str(ev.get("event", ""))[:20],
                                    label=(str(ev["label"])[:2] if ev.get("label") else None),
                                    t_ms=float(ev.get("t_ms", 0.0))))
                self._after_answer(s, spec)
                return AnswerResult(response == trial.x_is, spec.feedback)
        except IntegrityError:
            raise StudyError("Expected one answer per trial but this trial was already "
                             "answered") from None

    def _after_answer(self, s: Any, spec: TrialSpec) -> None:
        """A break after a main block that another main block follows; debrief at the end."""
        p = self._participant(s)
        nxt = spec.index + 1
        if nxt >= len(self.schedule):
            p.status, p.break_until = "debrief", None
            return
        b_next = self.schedule[nxt].block
        last_main = self.service.study.trials.blocks
        if spec.block != b_next and 1 <= spec.block < last_main:
            p.break_until = utcnow() + timedelta(seconds=self.service.study.trials.break_seconds)
