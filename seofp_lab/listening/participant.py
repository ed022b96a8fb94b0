"""What the participant pages need beyond the listener service: idempotent answers with an
acknowledgement, progress as the design has it, screening attempts, and text made safe to
show.

A click can reach the server twice (a reconnect replays it, a rerun repeats it). Answers are
keyed by the trial's public id: the second submission returns the stored answer as an
acknowledgement instead of an error, so no click is lost and none is counted twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from seofp_lab.errors import StudyError
from seofp_lab.listening.crowd import screen_rules
from seofp_lab.listening.store import Answer, Participant, ScreenAnswer, TrialRow

if TYPE_CHECKING:
    from seofp_lab.listening.listener import Listener, StudyService

MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=])")


def plain(text: object) -> str:
    r"""``text`` with every Markdown control character escaped, so it shows as typed.

    >>> print(plain("[click](http://evil/)"))
    \[click\]\(http\://evil/\)
    """
    return MARKDOWN.sub(r"\\\1", str(text))


@dataclass(frozen=True)
class Ack:
    """The server's receipt for an answer: shown to the participant as "saved"."""

    trial_number: int  # 1-based position in the whole schedule
    correct: bool
    feedback: bool  # practice only: the page may say whether it was right
    duplicate: bool  # True: this answer had already been saved (a repeated click)


def _stored(listener: Listener, public_id: str) -> tuple[int, bool] | None:
    with listener.service.store.session() as s:
        row = s.execute(select(TrialRow.trial_index, Answer.correct)
                        .join(Answer, Answer.trial_id == TrialRow.id)
                        .where(TrialRow.public_id == str(public_id),
                               TrialRow.participant_id == listener.pid)).first()
    return None if row is None else (int(row[0]), bool(row[1]))


def submit_answer(listener: Listener, public_id: str, response: str, log: dict[str, Any],
                  confidence: int | None = None, enforce_playback: bool = False) -> Ack:
    """Record an answer once; a repeat of the same trial's answer returns the stored receipt.

    ``enforce_playback`` (the app sets it) passes to :meth:`Listener.record_answer`: a first
    answer counts only after the server served every clip (a repeat was already let in)."""
    levels = listener.service.study.confidence_levels
    if levels and (confidence is None or not 1 <= int(confidence) <= levels):
        raise StudyError(f"Expected a confidence rating 1..{levels} but got {confidence!r}")
    if not levels:
        confidence = None
    seen = _stored(listener, public_id)
    if seen is None:
        try:
            result = listener.record_answer(public_id, response, log, confidence=confidence,
                                            enforce_playback=enforce_playback)
        except StudyError:
            seen = _stored(listener, public_id)  # lost a race with the same click: fine
            if seen is None:
                raise
        else:
            index = _stored(listener, public_id)
            number = index[0] + 1 if index else 0
            return Ack(number, result.correct, result.feedback, duplicate=False)
    index, correct = seen
    return Ack(index + 1, correct, listener.schedule[index].feedback, duplicate=True)


@dataclass(frozen=True)
class Progress:
    """Where the participant is, in the design's own terms."""

    label: str
    fraction: float  # in [0, 1]


def trial_progress(listener: Listener) -> Progress:
    """"Practice 2 of 6", "Block 1 of 2 · trial 5 of 32", "Last part · trial 3 of 42": the
    count is the participant's own schedule, the block number never exceeds the blocks."""
    answered, total = listener.progress()
    schedule = listener.schedule
    if answered >= total:
        return Progress("All trials done", 1.0)
    spec = schedule[answered]
    blocks = listener.service.study.trials.blocks
    if spec.block == 0:
        group = [t for t in schedule if t.block == 0]
        i = sum(t.block == 0 for t in schedule[:answered]) + 1
        return Progress(f"Practice {i} of {len(group)}", (i - 1) / len(group))
    if spec.block <= blocks:
        group = [t for t in schedule if 1 <= t.block <= blocks]
        i = sum(1 <= t.block <= blocks for t in schedule[:answered]) + 1
        return Progress(f"Block {spec.block} of {blocks} · trial {i} of {len(group)}",
                        (i - 1) / len(group))
    group = [t for t in schedule if t.block > blocks]
    i = sum(t.block > blocks for t in schedule[:answered]) + 1
    return Progress(f"Last part · trial {i} of {len(group)}", (i - 1) / len(group))


def screen_attempt(listener: Listener, kind: str) -> int:
    """1 for the first run through a screening check, 2 for its one retry."""
    total = screen_rules(listener.service, kind)[0]
    with listener.service.store.session() as s:
        n = s.scalar(select(func.count(ScreenAnswer.id)).where(
            ScreenAnswer.participant_id == listener.pid, ScreenAnswer.kind == kind)) or 0
    return 1 + (n >= total > 0)


def known_token(service: StudyService, token: str) -> bool:
    """Whether ``token`` (say, one a browser saved) belongs to a participant of this study."""
    with service.store.session() as s:
        p = service.store.participant(s, str(token)[:64])
        return p is not None and p.study_id == service.study.name


def exclusion(listener: Listener) -> str | None:
    """Why the study ended early for this participant (None: it did not)."""
    with listener.service.store.session() as s:
        return s.get(Participant, listener.pid).exclusion
