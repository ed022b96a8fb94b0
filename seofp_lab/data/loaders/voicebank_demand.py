"""VoiceBank-DEMAND (Valentini-Botinhao et al.), paired, 48 kHz (docs/data.md#user-corpora).

``clean_trainset_28spk_wav/``, ``noisy_trainset_28spk_wav/``, ``clean_testset_wav/``,
``noisy_testset_wav/`` (``variant: 56spk`` for the 56-speaker training set), files ``pNNN_MMM.wav``
paired by name. ``logfiles/log_{trainset_28spk,testset}.txt`` give each file's noise and SNR.
The clean files also serve as a speech pool (train and test speakers are disjoint).

A root with only the test part (``clean_testset_wav/``, ``noisy_testset_wav/`` and, for noise
type and SNR, ``logfiles/log_testset.txt``) and no ``*_trainset_*`` folder at all is a test-only
corpus: evaluation uses it, training refuses it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    check_disjoint,
    child,
    found,
    layout_error,
    match_pairs,
    one_level_down,
    require_audio,
    require_root,
)

KIND = "voicebank_demand"
VARIANTS = ("28spk", "56spk")


def _folders(variant: str) -> dict[str, tuple[str, str]]:
    return {"train": (f"clean_trainset_{variant}_wav", f"noisy_trainset_{variant}_wav"),
            "test": ("clean_testset_wav", "noisy_testset_wav")}


def _hint(root: Path, variant: str) -> str:
    for other in VARIANTS:
        if other != variant and (root / f"clean_trainset_{other}_wav").is_dir():
            return f"found clean_trainset_{other}_wav: set variant: {other}"
    nested = [p.name for p in root.iterdir() if p.is_dir() and (p / "clean_testset_wav").is_dir()]
    if nested:
        return one_level_down(root / nested[0])
    return "unzip the DataShare archives (clean_*/noisy_* zips) directly under root"


def read_log(path: Path) -> dict[str, tuple[str, float]]:
    """``p232_001 living 17.5`` lines -> {id: (noise, snr)}; a missing log gives {}."""
    out: dict[str, tuple[str, float]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        f = line.split()
        if len(f) >= 3:
            try:
                out[Path(f[0]).stem] = (f[1], float(f[2]))
            except ValueError:
                continue
    return out


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    variant = cfg.variant or "28spk"
    if variant not in VARIANTS:
        raise layout_error(KIND, root, f"variant in {VARIANTS}", repr(variant),
                           "set variant: 28spk or 56spk")
    parts = Parts()
    speakers: dict[str, set[str]] = {"train": set()}
    folders = _folders(variant)
    any_train = any(p.is_dir() and "_trainset_" in p.name.lower() for p in root.iterdir())
    any_test = any(child(root, n) is not None for n in folders["test"])
    if not any_train and not any_test:
        (c_train, n_train), (c_test, n_test) = folders["train"], folders["test"]
        raise layout_error(KIND, root, f"{c_test}/ and {n_test}/ (enough to evaluate on), plus "
                           f"{c_train}/ and {n_train}/ to train on", found(root),
                           _hint(root, variant))
    if not any_train:
        c_name, n_name = folders["train"]
        parts.training_missing = f"{c_name}/ and {n_name}/ (pNNN_MMM.wav pairs)"
        del folders["train"]  # test-only: the test part below is still checked in full
    for split, (c_name, n_name) in folders.items():
        pattern = f"{c_name}/pNNN_MMM.wav and {n_name}/pNNN_MMM.wav"
        hint = _hint(root, variant)
        clean = require_audio(KIND, root, child(root, c_name), pattern, hint)
        noisy = require_audio(KIND, root, child(root, n_name), pattern, hint)
        pairs = match_pairs(KIND, root, {p.stem: p for p in clean}, {p.stem: p for p in noisy},
                            pattern)
        parts.pairs[split] = pairs
        parts.utterances[split] = [Utterance(p.stem, p.stem.split("_")[0], p, channel)
                                   for p in clean]
        speakers[split] = {u.speaker for u in parts.utterances[split]}
    check_disjoint(KIND, root, speakers["train"], speakers["test"])
    logs = child(root, "logfiles")
    if logs is not None:
        parts.pair_meta.update(read_log(logs / f"log_trainset_{variant}.txt"))
        parts.pair_meta.update(read_log(logs / "log_testset.txt"))
    if parts.training_missing and not any(p[0] in parts.pair_meta for p in parts.pairs["test"]):
        warnings.warn(f"{root}/logfiles/log_testset.txt is missing or names none of the test "
                      "files: noise type and SNR are unknown (no per-SNR scores)", stacklevel=2)
    # without logfiles, noise type and SNR read "unknown" / NaN in the test manifest
    return parts
