"""Synthetic enhanced test sets with the layout ``seofp evaluate`` writes, for the listening tests.

A test set (the layout of seofp_lab/data/testset.py) and two run directories, each with
``manifest.csv`` (id, speaker, noise, snr, noisy, clean, enhanced) and 16 kHz float WAV
files. The "compressed" output is the baseline plus a small, fixed-level perturbation, so a
study prepared from them has a known difference SNR.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal with a gliding f0 (not speech, but close
    enough in loudness statistics and spectrum for loudness matching and PESQ to work)."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    syll = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 0.7
    x = x * syll + 0.02 * rng.standard_normal(len(t)) * syll
    return 0.3 * x / np.abs(x).max()


def make_run_dirs(root: Path, utterances: int = 6, snrs: tuple[float, ...] = (0.0, 5.0, 10.0),
                  noises: tuple[str, ...] = ("babble", "white"), seconds: float = 1.0,
                  diff_db: float = -30.0, seed: int = 0) -> tuple[Path, Path]:
    """Write a test set and a baseline and a compressed run directory under ``root``.

    The layouts are production's: ``testset/`` as seofp_lab/data/testset.py writes it (one
    clean and one noisy file per mixture, ``manifest.csv`` with the ``utterance`` and
    ``speaker`` units, ``testset.json``), and each run folder as ``seofp evaluate`` writes it
    (:func:`seofp_lab.evaluate.enhanced.write_manifest`: no utterance column; absolute paths
    into the test set).

    Args:
        root: parent folder; ``testset/``, ``baseline/`` and ``compressed/`` are created in it.
        utterances: number of utterances; items are utterance x SNR, noises alternate.
        snrs: input SNRs in dB.
        noises: noise labels (cycled over items).
        seconds: clip length.
        diff_db: level of the compressed run's perturbation relative to the baseline.
        seed: the generator seed.

    Returns:
        (baseline_dir, compressed_dir).
    """
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    from seofp_lab.data.testset import COLUMNS  # noqa: PLC0415
    from seofp_lab.evaluate.enhanced import write_manifest  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    ts = Path(root).resolve() / "testset"
    dirs = (Path(root).resolve() / "baseline", Path(root).resolve() / "compressed")
    for d in (ts / "noisy", ts / "clean", *dirs):
        d.mkdir(parents=True, exist_ok=True)
    rows: list[list[dict]] = [[], []]
    ts_rows = []

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    k = 0
    for u in range(utterances):
        clean = speech_like(seconds, rng)
        for snr in snrs:
            noise = rng.standard_normal(len(clean))
            noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2)) * 10 ** (-snr / 20)
            noisy = np.clip(clean + noise, -1, 1)
            yb = clean + 0.3 * noise * 10 ** (-snr / 20)
            pert = rng.standard_normal(len(clean))
            pert *= np.sqrt(np.mean(yb**2) / np.mean(pert**2)) * 10 ** (diff_db / 20)
            noise_label = noises[k % len(noises)]
            item = f"utt{u:02d}_{noise_label}_snr{snr:g}"  # the test set's naming
            paths = {}
            for name, sig in (("noisy", noisy), ("clean", clean)):  # one file per mixture
                paths[name] = ts / name / f"{item}.wav"
                sf.write(str(paths[name]), sig.astype(np.float32), RATE, subtype="FLOAT")
            ts_rows.append({"id": item, "speaker": f"s{u % 3}", "noise": noise_label,
                            "snr": snr, "offset": 0, "gain": "1.0", "noisy": f"noisy/{item}.wav",
                            "clean": f"clean/{item}.wav", "clip": 0, "floor_dbfs": "",
                            "noisy_sha256": sha(paths["noisy"]),
                            "clean_sha256": sha(paths["clean"]),
                            "utterance": f"utt{u:02d}", "noise_clip": f"{noise_label}#0"})
            for j, (d, y) in enumerate(zip(dirs, (yb, yb + pert), strict=True)):
                out = d / f"{item}.wav"
                sf.write(str(out), y.astype(np.float32), RATE, subtype="FLOAT")
                rows[j].append({"id": item, "speaker": f"s{u % 3}", "noise": noise_label,
                                "snr": snr, "noisy": str(paths["noisy"]),
                                "clean": str(paths["clean"]), "enhanced": str(out)})
            k += 1
    with (ts / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(ts_rows)
    (ts / "testset.json").write_text(json.dumps(
        {"version": 2, "key": {"synthetic": seed}, "items": len(ts_rows),
         "manifest_sha256": sha(ts / "manifest.csv")}, indent=2, sort_keys=True) + "\n")
    for d, r in zip(dirs, rows, strict=True):
        write_manifest(d, r)
    return dirs


def make_study(root: Path, name: str = "fixture", utterances: int = 6, **sections: dict) -> Path:
    """A study folder (``study.yaml`` + two synthetic runs) under ``root``; returns its path.

    ``sections`` replace whole sections of the default fixture definition, e.g.
    ``trials={"practice": 0, "blocks": 1, "test_per_block": 4}``.
    """
    import yaml  # noqa: PLC0415

    study_dir = Path(root) / name
    make_run_dirs(study_dir / "runs", utterances=utterances)
    spec = {
        "name": name, "baseline_dir": "runs/baseline", "compressed_dir": "runs/compressed",
        "seed": 11, "items": {"count": None},
        "trials": {"practice": 2, "blocks": 2, "test_per_block": 4, "catch_per_block": 1,
                   "null_per_block": 1, "break_seconds": 0},
        "screening": {"headphone_trials": 0, "headphone_pass": 0, "environment_trials": 0,
                      "environment_pass": 0},
        "stimuli": {"side_metrics": False, "max_seconds": 1.0},
        "player": {"min_play_seconds": 0.2},
    }
    spec.update(sections)
    (study_dir / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return study_dir
