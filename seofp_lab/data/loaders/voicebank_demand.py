"""VoiceBank-DEMAND (Valentini-Botinhao et al.), paired, 48 kHz (DATA.md §3).

``clean_trainset_28spk_wav/``, ``noisy_trainset_28spk_wav/``, ``clean_testset_wav/``,
``noisy_testset_wav/`` (``variant: 56spk`` for the 56-speaker training set), files ``pNNN_MMM.wav``
paired by name. ``logfiles/log_{trainset_28spk,testset}.txt`` give each file's noise and SNR.
The clean files also serve as a speech pool (train and test speakers are disjoint).
"""

from __future__ import annotations

from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    check_disjoint,
    child,
    layout_error,
    match_pairs,
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
        return f"the corpus is one level down: set root to {root / nested[0]}"
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
    speakers: dict[str, set[str]] = {}
    for split, (c_name, n_name) in _folders(variant).items():
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
    # without logfiles, noise type and SNR read "unknown" / NaN in the test manifest
    return parts
