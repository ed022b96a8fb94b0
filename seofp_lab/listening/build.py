"""The per-item work of ``seofp study prepare``: checks, 48 kHz clips, catch and ladder stimuli.

Clip files carry item ids in their names; they stay on the server (the browser only ever gets
re-rendered, dithered buffers under random ids).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from seofp_lab.errors import StudyError
from seofp_lab.listening.clips import (
    catch_clip,
    fade,
    lag_samples,
    match_pair,
    read_audio,
    side_metrics,
    trap_clip,
)
from seofp_lab.listening.protocol import StudyDefinition

IN_RATE = 16000


def _write(root: Path, rel: str, x: np.ndarray, rate: int) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = x.astype("<f4")
    sf.write(str(path), pcm, rate, subtype="FLOAT")
    # of the samples, not the file: libsndfile stamps float WAVs with the time (PEAK chunk)
    return hashlib.sha256(pcm.tobytes()).hexdigest()


def _pair(row_b: dict, row_c: dict, study: StudyDefinition) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs, checked (same length within 10 ms, lag 0) and cropped, at 16 kHz."""
    yb, yc = read_audio(row_b["enhanced"], IN_RATE), read_audio(row_c["enhanced"], IN_RATE)
    if abs(len(yb) - len(yc)) > IN_RATE // 100:
        raise StudyError(f"Expected equal lengths for item {row_b['id']} but got {len(yb)} "
                         f"and {len(yc)} samples")
    n = min(len(yb), len(yc), int(study.stimuli.max_seconds * IN_RATE))
    if n < study.stimuli.min_seconds * IN_RATE:
        raise StudyError(f"Expected clips of at least {study.stimuli.min_seconds} s for item "
                         f"{row_b['id']} but got {n / IN_RATE:.2f} s")
    yb, yc = yb[:n], yc[:n]
    lag = lag_samples(yb, yc)
    if lag != 0:
        raise StudyError(f"Expected the two runs aligned (cross-correlation lag 0) for item "
                         f"{row_b['id']} but got a lag of {lag} samples: latency is a cue")
    return yb, yc


def _up(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample once to the serving rate (the browser never resamples)."""
    g = np.gcd(rate, IN_RATE)
    return signal.resample_poly(x, rate // g, IN_RATE // g)


def build_stimuli(study: StudyDefinition, base: dict[str, dict], comp: dict[str, dict],
                  ids: list[str], root: Path) -> dict:
    """Write every clip under ``root`` and return the manifest body (items, ladder)."""
    spec, rate = study.stimuli, study.stimuli.sample_rate
    rng = np.random.default_rng([study.seed, 2])
    items, ladder = [], []
    ladder_ids = set(ids[: study.ladder.items])
    for k, item_id in enumerate(ids):
        rb, rc = base[item_id], comp[item_id]
        yb16, yc16 = _pair(rb, rc, study)
        d16 = yc16 - yb16
        info: dict = {
            "item_id": item_id,
            # from the test set's manifest (stimuli._attach_units): mixtures of one sentence
            # share it, which the roving and balancing constraints need
            "utterance_id": rb["utterance"],
            "speaker": rb["speaker"], "noise": rb["noise"], "snr": float(rb["snr"]),
            "seconds": len(yb16) / IN_RATE,
            "diff_snr_db": float(10 * np.log10(np.sum(yb16**2) / max(np.sum(d16**2), 1e-20))),
        }
        if spec.side_metrics:
            clean = read_audio(rb["clean"], IN_RATE)[: len(yb16)] if rb.get("clean") else None
            info.update(side_metrics(yb16, yc16, clean))
        yb, yc = fade(_up(yb16, rate), rate), fade(_up(yc16, rate), rate)
        if np.abs(yb).max() > 1 or np.abs(yc).max() > 1:
            raise StudyError(f"Expected no clipping after resampling item {item_id}")
        mb, mc, loud = match_pair(yb, yc, rate, spec.target_lufs, spec.peak_dbfs)
        kind = spec.catch if spec.catch != "both" else ("noise", "lowpass")[k % 2]
        _, mk, _ = match_pair(mb, catch_clip(mb, rate, kind, rng), rate, spec.target_lufs,
                              spec.peak_dbfs)
        clips = {"baseline": f"items/{item_id}/baseline.wav",
                 "compressed": f"items/{item_id}/compressed.wav",
                 "catch": f"items/{item_id}/catch.wav"}
        signals = [mb, mc, mk]
        if study.trials.trap_per_block:  # only what the design serves: older manifests unchanged
            clips["trap"] = f"items/{item_id}/trap.wav"
            signals.append(match_pair(mb, trap_clip(mb, rate, rng), rate, spec.target_lufs,
                                      spec.peak_dbfs)[1])
        sha = {name: _write(root, rel, x, rate)
               for (name, rel), x in zip(clips.items(), signals, strict=True)}
        info.update(clips=clips, sha256=sha, catch_kind=kind,
                    lufs_before_b=loud["lufs_before_a"], lufs_before_c=loud["lufs_before_b"],
                    gain_applied_b=loud["gain_applied_a"], gain_applied_c=loud["gain_applied_b"],
                    peak_dbfs=loud["peak_dbfs"], loudness_diff_db=loud["loudness_diff_db"])
        items.append(info)
        if item_id in ladder_ids:
            ladder.extend(_ladder(study, item_id, yb, yc, root))
    return {"items": items, "ladder": ladder, "sample_rate": rate}


def _ladder(study: StudyDefinition, item_id: str, yb: np.ndarray, yc: np.ndarray, root: Path
            ) -> list[dict]:
    """y(g) = y_b + g (y_c - y_b), G = 20 log10 g; every level's pair loudness-matched."""
    spec, rate, out = study.stimuli, study.stimuli.sample_rate, []
    levels = sorted(set(study.ladder.levels_db) | {max(study.ladder.levels_db)})
    for level in levels:
        g = 10 ** (level / 20)
        probe = yb + g * (yc - yb)
        ref, probe, loud = match_pair(yb, probe, rate, spec.target_lufs, spec.peak_dbfs)
        if np.abs(probe).max() >= 1.0:
            raise StudyError(f"Expected ladder level {level} dB of {item_id} unclipped")
        rel = f"ladder/{item_id}/{level:+g}dB"
        out.append({"item_id": item_id, "gain_db": float(level), "ref": f"{rel}_ref.wav",
                    "probe": f"{rel}_probe.wav", "peak_dbfs": loud["peak_dbfs"],
                    "sha256_ref": _write(root, f"{rel}_ref.wav", ref, rate),
                    "sha256_probe": _write(root, f"{rel}_probe.wav", probe, rate)})
    return out
