"""Tiny generated corpora in the layouts the data loaders expect (no real corpus on CI)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

FS = 16000
EMBEDDED_SPEAKERS = ("ast_en_f", "ast_fr_f", "ast_it_m", "ast_ru_f", "lv_en_m")
EMBEDDED_NOISES = ("rain", "machine", "music", "market")


def speechlike(seed: int, seconds: float = 1.5, fs: int = FS) -> np.ndarray:
    """Voiced syllables (harmonics of a gliding f0, 4 Hz envelope) with a gated pause, -26 dBov."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phi = 2 * np.pi * np.cumsum(f0) / fs
    x = sum(np.sin(h * phi) / h for h in range(1, 20))
    x *= np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 2
    x += 0.05 * rng.standard_normal(n) * (x != 0)
    x[int(0.45 * n) : int(0.55 * n)] = 0.0
    rms = np.sqrt(np.mean(x[np.abs(x) > 1e-3] ** 2))
    return (x / rms * 10 ** (-26 / 20)).astype(np.float32)


def tone_noise(seed: int, seconds: float, fs: int = FS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    return (0.05 * rng.standard_normal(n) * (1 + 0.5 * np.sin(np.arange(n) / 700))).astype(
        np.float32)


def write(path: Path, x: np.ndarray, fs: int = FS, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, fs, subtype=subtype)
    return path


def make_embedded_tree(root: Path, targets: int = 6, babble: int = 2, lab: bool = False) -> Path:
    """speech/<spk>/<spk>_NNN.flac, noise/<type>/<type>_NN.flac and MANIFEST.tsv (+ split)."""
    cols = ["file", "sha256", "duration_s", "kind", "label", "use", "package", "version",
            "source_path", "licence", "credit"] + (["split"] if lab else [])
    rows = []
    test_spk = {"ast_en_f", "lv_en_m"}
    for k, spk in enumerate(EMBEDDED_SPEAKERS):
        for i in range(targets + babble):
            rel = f"speech/{spk}/{spk}_{i:03d}.flac"
            x = speechlike(100 * k + i, 1.5 + 0.25 * (i % 3))
            write(root / rel, x)
            use = "babble" if i >= targets else "target"
            split = "test" if spk in test_spk else "train"
            rows.append([rel, spk, x.size / FS, "speech", spk, use, split])
    for k, t in enumerate(EMBEDDED_NOISES):
        for i in range(2):
            rel = f"noise/{t}/{t}_{i:02d}.flac"
            x = tone_noise(1000 + 10 * k + i, 2.0 if t != "market" else 0.8)
            write(root / rel, x)
            rows.append([rel, t, x.size / FS, "noise", t, "noise",
                         "test" if t in ("rain", "market") else "train"])
    lines = ["\t".join(cols)]
    for rel, _, dur, kind, lab_, use, split in rows:
        sha = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        cells = [rel, sha, f"{dur:.3f}", kind, lab_, use, "test-package", "1.0", f"src/{rel}",
                 "CC0", "generated"] + ([split] if lab else [])
        lines.append("\t".join(cells))
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return root


def vb_test_only(root: Path, seconds: float = 0.5, log: bool = True) -> Path:
    """The VoiceBank-DEMAND test part only: 3 pairs of p232 at 48 kHz, with the log file."""
    for i in range(1, 4):
        x = speechlike(i, seconds, 48000)
        write(root / "clean_testset_wav" / f"p232_{i:03d}.wav", x, 48000)
        write(root / "noisy_testset_wav" / f"p232_{i:03d}.wav", x + tone_noise(i, seconds, 48000),
              48000)
    if log:
        (root / "logfiles").mkdir(parents=True, exist_ok=True)
        (root / "logfiles" / "log_testset.txt").write_text(
            "p232_001 living 2.5\np232_002 bus 7.5\np232_003 cafe 7.5\n")
    return root


def folder_test_only(root: Path, seconds: float = 0.5) -> Path:
    """``test/clean/<spk>/uN.wav`` and ``test/noisy/<spk>/uN.wav`` at 22.05 kHz, no train/."""
    for spk in ("a", "b"):
        for i in range(2):
            x = speechlike(ord(spk) + i, seconds, 22050)
            write(root / "test" / "clean" / spk / f"u{i}.wav", x, 22050)
            write(root / "test" / "noisy" / spk / f"u{i}.wav", x + tone_noise(i, seconds, 22050),
                  22050)
    return root


def dns_pairs(folder: Path, seconds: float = 0.5) -> Path:
    """DNS synthetic pairs: ``clean/clean_fileid_N.wav`` and ``noisy/..._snrS_..._fileid_N.wav``."""
    for i, snr in ((4, 5), (158, 15)):
        x = speechlike(i, seconds)
        write(folder / "clean" / f"clean_fileid_{i}.wav", x)
        write(folder / "noisy" / f"clnsp{i}_babble_snr{snr}_tl-20_fileid_{i}.wav",
              x + tone_noise(i, seconds))
    return folder
