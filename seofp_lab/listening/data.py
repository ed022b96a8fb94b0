"""Tables out of the store: one row per answered trial, one per participant; CSV/JSON export.

No table carries a participant's token (it resumes the session): ``pseudonym`` is a salted
HMAC of it, stable within a study (docs/listening_participants.md#exports).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from seofp_lab.listening.auth import export_salt, pseudonym
from seofp_lab.listening.store import Answer, Participant, ScreenAnswer, Store, TrialRow

TRIAL_COLUMNS = [
    "listener", "pseudonym", "trial_index", "block", "trial_type", "item", "utterance_id",
    "speaker", "noise", "snr", "gain_db", "order_cell", "x_is", "response", "correct",
    "confidence", "rt_ms",
    "rt_from_first_x_ms", "plays_a", "plays_b", "plays_x", "ms_heard_a", "ms_heard_b",
    "ms_heard_x", "switches", "loop_used", "blur_events", "answered_without_x", "diff_snr_db",
    "pesq_b_to_c", "loudness_diff_db", "sha256_a", "sha256_b", "sha256_x", "commitment",
    "config_hash", "shown_at", "answered_at", "saved_at",
]


def trials_frame(store: Store, study: str) -> pd.DataFrame:
    """Every answered trial of a study with its stimulus and listening log."""
    q = (select(TrialRow, Answer, Participant)
         .join(Answer, (Answer.trial_id == TrialRow.id))
         .join(Participant, Participant.id == TrialRow.participant_id)
         .where(Participant.study_id == study)
         .order_by(Participant.id, TrialRow.trial_index))
    rows = []
    salt = export_salt(store, study)
    with store.session() as s:
        for t, a, p in s.execute(q):
            st = t.stimulus or {}
            rows.append({
                "listener": p.id, "pseudonym": pseudonym(salt, p.token),
                "trial_index": t.trial_index,
                "block": t.block, "trial_type": t.trial_type, "item": t.item_id,
                "utterance_id": st.get("utterance_id"), "speaker": st.get("speaker"),
                "noise": st.get("noise"), "snr": st.get("snr"), "gain_db": t.gain_db,
                "order_cell": t.order_cell, "x_is": t.x_is, "response": a.response,
                "correct": int(a.correct), "confidence": a.confidence, "rt_ms": a.rt_ms,
                "rt_from_first_x_ms": a.rt_from_first_x_ms, "plays_a": a.plays_a,
                "plays_b": a.plays_b, "plays_x": a.plays_x, "ms_heard_a": a.ms_heard_a,
                "ms_heard_b": a.ms_heard_b, "ms_heard_x": a.ms_heard_x, "switches": a.switches,
                "loop_used": a.loop_used, "blur_events": a.blur_events,
                "answered_without_x": a.answered_without_x, "diff_snr_db": st.get("diff_snr_db"),
                "pesq_b_to_c": st.get("pesq_b_to_c"),
                "loudness_diff_db": st.get("loudness_diff_db"), "sha256_a": t.sha256_a,
                "sha256_b": t.sha256_b, "sha256_x": t.sha256_x, "commitment": t.commitment,
                "config_hash": t.config_hash, "shown_at": t.shown_at, "answered_at": a.answered_at,
                "saved_at": a.saved_at})
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def participants_frame(store: Store, study: str) -> pd.DataFrame:
    """Every participant: status, screening scores, metadata, debrief."""
    rows = []
    salt = export_salt(store, study)
    with store.session() as s:
        parts = s.scalars(select(Participant).where(Participant.study_id == study)
                          .order_by(Participant.id)).all()
        screens = s.scalars(select(ScreenAnswer).join(Participant).where(
            Participant.study_id == study)).all()
        counts: dict[int, int] = {}
        for pid, _ in s.execute(select(Answer.participant_id, Answer.id).join(Participant)
                                .where(Participant.study_id == study)):
            counts[pid] = counts.get(pid, 0) + 1
        for p in parts:
            mine = [a for a in screens if a.participant_id == p.id]
            rows.append({
                "listener": p.id, "pseudonym": pseudonym(salt, p.token),
                "index": p.participant_index, "seed": p.seed,
                "status": p.status, "screen_exclusion": p.exclusion,
                "headphone_correct": sum(a.correct for a in mine if a.kind == "headphone"),
                "environment_correct": sum(a.correct for a in mine if a.kind == "environment"
                                           and a.attempt == max(x.attempt for x in mine
                                                                if x.kind == "environment")),
                "answered": counts.get(p.id, 0), "consent_version": p.consent_version,
                "created_at": p.created_at, "finished_at": p.finished_at,
                "meta": json.dumps(p.meta or {}), "debrief": json.dumps(p.debrief or {}),
                "app_version": p.app_version})
    return pd.DataFrame(rows)


def export(store: Store, study: str, out_dir: Path, manifest: dict | None = None) -> list[Path]:
    """Write trials.csv, participants.csv and export.json (hashes, counts) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials, parts = trials_frame(store, study), participants_frame(store, study)
    paths = [out_dir / "trials.csv", out_dir / "participants.csv", out_dir / "export.json"]
    trials.to_csv(paths[0], index=False)
    parts.to_csv(paths[1], index=False)
    paths[2].write_text(json.dumps({
        "study": study, "trials": len(trials), "participants": len(parts),
        "manifest_sha256": (manifest or {}).get("sha256"),
        "config_hash": (manifest or {}).get("config_hash")}, indent=1))
    return paths
