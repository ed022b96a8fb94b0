"""Serving one ABX trial: commitment first, then three one-use audio tickets.

The clips stay on the server; each ticket's fetch renders its clip with independent per-serve
transforms and dither (docs/listening_blinding.md), so X never shares bytes, samples, a URL
or an id with A or B.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from seofp_lab.listening.blinding import VAULT
from seofp_lab.listening.protocol import TrialSpec
from seofp_lab.listening.served import ServedTrial, commitment
from seofp_lab.listening.store import TrialRow

if TYPE_CHECKING:
    from seofp_lab.listening.listener import Listener

SIDE_KEYS = (
    "utterance_id",
    "speaker",
    "noise",
    "snr",
    "diff_snr_db",
    "pesq_b_to_c",
    "lufs_before_b",
    "lufs_before_c",
    "gain_applied_b",
    "gain_applied_c",
    "peak_dbfs",
    "loudness_diff_db",
    "catch_kind",
)


def serve_abx(listener: Listener, s: Any, spec: TrialSpec) -> ServedTrial:
    """Write (or reuse) the trial row with its commitment, and issue tickets for A, B and X."""
    service = listener.service
    row = s.scalar(
        select(TrialRow).where(
            TrialRow.participant_id == listener.pid, TrialRow.trial_index == spec.index
        )
    )
    if row is None:
        public_id, nonce = str(uuid.uuid4()), secrets.token_hex(16)
        info = service.manifest.item(spec.item_id)
        row = TrialRow(
            participant_id=listener.pid,
            trial_index=spec.index,
            public_id=public_id,
            session_id=listener.session_id,
            config_hash=service.config_hash,
            block=spec.block,
            trial_type=spec.trial_type,
            item_id=spec.item_id,
            order_cell=spec.order_cell,
            x_is=spec.x_is,
            gain_db=spec.gain_db,
            nonce=nonce,
            commitment=commitment(public_id, spec.x_is, spec.item_id, nonce),
            stimulus={k: info.get(k) for k in SIDE_KEYS},
        )
        s.add(row)
    m = service.manifest
    a = m.clip(spec.item_id, spec.clip_a, spec.gain_db)
    b = m.clip(spec.item_id, spec.clip_b, spec.gain_db)
    rate = m.data["sample_rate"]
    x = a if spec.x_is == "A" else b
    s.flush()
    labels = ("A", "B", "X")
    tickets = VAULT.issue(service.store, listener.pid, row.public_id, labels, (a, b, x), rate)
    in_phase = [t for t in listener.schedule if (t.block == 0) == (spec.block == 0)]
    number = next(i for i, t in enumerate(in_phase, 1) if t.index == spec.index)
    return ServedTrial(
        row.public_id,
        "abx",
        labels,
        tickets,
        number,
        len(in_phase),
        feedback=spec.feedback,
        block=spec.block,
        trial_type="practice" if spec.trial_type == "practice" else "test",
        clips=(a, b, x),
        rate=rate,
    )
