"""What a served trial is: shared by ``listener`` (the service) and ``serve`` (one ABX trial)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from seofp_lab.listening.blinding import served_wav


@dataclass(frozen=True)
class ServedTrial:
    """A trial on screen. The browser sees ``public_id``, ``labels`` and ``tickets`` (one-use
    ids, :class:`~seofp_lab.listening.blinding.AudioVault`); ``clips`` stay on the server."""

    public_id: str
    kind: Literal["abx", "headphone", "environment", "bandwidth"]
    labels: tuple[str, ...]
    tickets: tuple[str, ...]
    number: int  # 1-based position in the current phase
    total: int
    feedback: bool = False
    block: int = 0
    trial_type: str = "main"
    clips: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)
    rate: int = 0

    @property
    def wavs(self) -> tuple[bytes, ...]:
        """Freshly served renders of the clips (new transforms and dither at every access),
        exactly what a ticket fetch returns; spends no ticket and records no serve."""
        return tuple(served_wav(c, self.rate) for c in self.clips)

    @property
    def clip_ms(self) -> float:
        return 1000.0 * len(self.clips[0]) / self.rate if self.clips else 0.0


def commitment(public_id: str, x_is: str, item_id: str, nonce: str) -> str:
    """SHA-256 commitment to a trial's key, stored before the trial is shown."""
    return hashlib.sha256(f"{public_id}|{x_is}|{item_id}|{nonce}".encode()).hexdigest()
