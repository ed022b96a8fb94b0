"""What a served trial is: shared by ``listener`` (the service) and ``serve`` (one ABX trial)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServedTrial:
    """What the browser may see of a trial: nothing here tells which clip X is."""

    public_id: str
    kind: Literal["abx", "headphone", "environment"]
    labels: tuple[str, ...]
    wavs: tuple[bytes, ...]
    number: int  # 1-based position in the current phase
    total: int
    feedback: bool = False
    block: int = 0
    trial_type: str = "main"


def commitment(public_id: str, x_is: str, item_id: str, nonce: str) -> str:
    """SHA-256 commitment to a trial's key, stored before the trial is shown."""
    return hashlib.sha256(f"{public_id}|{x_is}|{item_id}|{nonce}".encode()).hexdigest()
