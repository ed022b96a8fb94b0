"""Serve-time blinding: per-serve transforms, one-use audio tickets, and the server's own
accounting of what it played (docs/listening_blinding.md).

* :func:`perturb` changes every served clip independently and transparently: a random
  fractional-sample delay in [0, 2 ms) inside equal padding, a random gain in ±0.5 dB, and fresh
  TPDF dither at encoding. X is then never sample-comparable with A or B: subtraction and
  zero-lag correlation see the misalignment and the gain step, not the content.
* :class:`AudioVault` hands the page opaque one-use tickets instead of audio. The browser
  fetches each clip once from ``/seofp/audio/<ticket>`` (``app/asgi.py``); the clip is rendered
  at that moment and the server records when it served it (:class:`ClipServe`).
* :func:`playback` tells, by the server clock alone, whether A, B and X have been served and
  long enough ago for a listener to have heard each; the app unlocks the answer only then.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy import fft as sfft
from sqlalchemy import select

from seofp_lab.listening.stimuli import render_wav
from seofp_lab.listening.store import ClipServe, Store, utcnow

MAX_GAIN_DB = 0.5  # each clip's gain is uniform in [-0.5, +0.5] dB, independently
MAX_DELAY_S = 0.002  # each clip's onset delay is uniform in [0, 2 ms), fractional samples
TICKET_TTL_S = 3600.0  # an unfetched ticket dies after an hour
AUDIO_ROUTE = "seofp/audio"  # relative to the page: /seofp/audio/<ticket>

clock: Callable[[], datetime] = utcnow  # the server clock of every playback timing


def pad_samples(rate: int) -> int:
    """Samples added to every served clip (so delayed and undelayed clips have one length)."""
    return int(np.ceil(MAX_DELAY_S * rate)) + 1


def perturb(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One served copy of ``x``: delayed by a random fractional number of samples within
    ``MAX_DELAY_S`` (zero-padded to a fixed length) and scaled by a random gain within
    ``±MAX_GAIN_DB``. Channels share the delay and the gain (an antiphase pair stays one).

    Args:
        x: float signal, shape (time,) or (time, channels).
        rate: sample rate in Hz.
        rng: the source of the delay and the gain (CSPRNG-seeded when serving).
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x) + pad_samples(rate)
    nfft = sfft.next_fast_len(n, real=True)
    delay = rng.uniform(0.0, MAX_DELAY_S * rate)
    gain = 10 ** (rng.uniform(-MAX_GAIN_DB, MAX_GAIN_DB) / 20)
    spec = sfft.rfft(x, nfft, axis=0)
    k = np.arange(spec.shape[0])
    shift = np.exp(-2j * np.pi * k * delay / nfft)
    spec *= shift[:, None] if spec.ndim == 2 else shift
    return sfft.irfft(spec, nfft, axis=0)[:n] * gain


def served_wav(x: np.ndarray, rate: int, rng: np.random.Generator | None = None) -> bytes:
    """The bytes the browser gets for one clip: :func:`perturb`, then 16-bit PCM WAV with fresh
    TPDF dither (:func:`~seofp_lab.listening.stimuli.render_wav`). PCM, not FLAC: every clip of
    a given length has one byte size, so the size tells nothing about the content."""
    rng = rng or np.random.default_rng(secrets.randbits(128))
    return render_wav(perturb(x, rate, rng), rate, rng)


@dataclass
class _Ticket:
    store: Store
    participant_id: int
    trial: str  # the trial's public id
    label: str
    clip: np.ndarray
    rate: int
    issued: float  # time.monotonic()


class AudioVault:
    """One-use tickets for the clips of the trial on screen, held in server memory only.

    Issuing the tickets of a participant's trial revokes that participant's older ones, so
    memory holds at most one trial's worth per listener; a restart forgets them all (the page
    reconnects, reruns, and gets new ones).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: dict[str, _Ticket] = {}

    def issue(self, store: Store, participant_id: int, trial: str, labels: Sequence[str],
              clips: Sequence[np.ndarray], rate: int) -> tuple[str, ...]:
        now = time.monotonic()
        out = []
        with self._lock:
            for key in [k for k, t in self._tickets.items()
                        if t.participant_id == participant_id and t.store is store
                        or now - t.issued > TICKET_TTL_S]:
                del self._tickets[key]
            for label, clip in zip(labels, clips, strict=True):
                key = secrets.token_urlsafe(18)
                self._tickets[key] = _Ticket(store, participant_id, trial, label, clip, rate, now)
                out.append(key)
        return tuple(out)

    def take(self, ticket: str) -> bytes | None:
        """Spend a ticket: render its clip afresh, record the serve, return the WAV bytes.
        None for an unknown, spent, revoked or expired ticket."""
        with self._lock:
            t = self._tickets.pop(ticket, None)
        if t is None or time.monotonic() - t.issued > TICKET_TTL_S:
            return None
        wav = served_wav(t.clip, t.rate)
        with t.store.session() as s:
            s.add(ClipServe(participant_id=t.participant_id, public_id=t.trial, label=t.label,
                            served_at=clock(), duration_ms=1000.0 * len(t.clip) / t.rate,
                            nbytes=len(wav)))
        return wav

    def __len__(self) -> int:
        return len(self._tickets)


VAULT = AudioVault()  # one per server process, shared by the app script and the audio route


@dataclass(frozen=True)
class Playback:
    """What the server itself knows of a trial's playback."""

    ok: bool  # every clip served, and long enough ago to have heard each one
    wait_s: float  # seconds until ok (0 when ok; inf while a clip is unserved)
    first_served: dict[str, datetime]  # label -> when its audio first left the server
    clip_ms: float | None  # the clip duration (without the serve padding)
    needed_s: float  # wall time required after the last first serve


def playback(store: Store, participant_id: int, trial: str, labels: Sequence[str],
             min_play_s: float, now: datetime | None = None) -> Playback:
    """Server-clock gate: ``ok`` once every label's audio has been served and
    ``len(labels) * min(min_play_s, clip duration)`` seconds have passed since the last of
    them first was, the least time in which one can hear each clip in turn for the minimum.
    """
    now = now or clock()
    with store.session() as s:
        rows = s.execute(select(ClipServe.label, ClipServe.served_at, ClipServe.duration_ms)
                         .where(ClipServe.participant_id == participant_id,
                                ClipServe.public_id == trial)).all()
    first: dict[str, datetime] = {}
    clip_ms = None
    for label, at, dur in rows:
        at = at.replace(tzinfo=at.tzinfo or now.tzinfo)
        if label not in first or at < first[label]:
            first[label] = at
        clip_ms = dur
    per_clip = min_play_s if clip_ms is None else min(min_play_s, clip_ms / 1000)
    needed = len(labels) * per_clip
    if any(label not in first for label in labels):
        return Playback(False, float("inf"), first, clip_ms, needed)
    since = (now - max(first.values())).total_seconds()
    wait = max(0.0, needed - since)
    return Playback(wait == 0.0, wait, first, clip_ms, needed)


def audio_route_handler() -> Any:  # noqa: ANN401 - a Starlette endpoint
    """The Starlette endpoint for ``/seofp/audio/{ticket}``: the WAV once, then 404."""
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415

    async def endpoint(request: Any) -> Response:  # noqa: ANN401
        wav = await run_in_threadpool(VAULT.take, str(request.path_params["ticket"]))
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if wav is None:
            return Response(b"", status_code=404, headers=headers)
        return Response(wav, media_type="application/octet-stream", headers=headers)

    return endpoint


def wav_pcm(wav: bytes) -> tuple[np.ndarray, int]:
    """Decode served bytes back to float (for tests and the attacker benchmark)."""
    import soundfile as sf  # noqa: PLC0415

    x, rate = sf.read(io.BytesIO(wav), dtype="float64")
    return x, rate


def serve_timings(store: Store, study: str) -> Any:  # noqa: ANN401 - a DataFrame
    """Per answered-or-shown ABX trial, the server's playback record: ``listener``,
    ``trial_index``, ``clip_ms`` and ``first_served_a``/``_b``/``_x`` (server clock). Merge on
    (listener, trial_index) with ``seofp_lab.listening.data.trials_frame`` to give
    :func:`seofp_lab.listening.cheating.flag_listeners` its ``clip_ms``."""
    import pandas as pd  # noqa: PLC0415

    from seofp_lab.listening.store import Participant, TrialRow  # noqa: PLC0415

    q = (select(TrialRow.participant_id, TrialRow.trial_index, ClipServe.label,
                ClipServe.served_at, ClipServe.duration_ms)
         .join(ClipServe, (ClipServe.public_id == TrialRow.public_id)
               & (ClipServe.participant_id == TrialRow.participant_id))
         .join(Participant, Participant.id == TrialRow.participant_id)
         .where(Participant.study_id == study))
    rows: dict = {}
    with store.session() as s:
        for pid, idx, label, at, dur in s.execute(q):
            r = rows.setdefault((pid, idx), {"listener": pid, "trial_index": idx,
                                             "clip_ms": dur})
            key = f"first_served_{label.lower()}"
            if r.get(key) is None or at < r[key]:
                r[key] = at
    cols = ["listener", "trial_index", "clip_ms", "first_served_a", "first_served_b",
            "first_served_x"]
    return pd.DataFrame(list(rows.values()), columns=cols)
