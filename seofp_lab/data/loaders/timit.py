"""TIMIT (LDC93S1), speech pool: ``{TRAIN,TEST}/DR1..DR8/<sex+spk>/<utt>.WAV``
(docs/data.md#user-corpora).

Any letter case; NIST SPHERE ``.WAV`` is read by libsndfile, converted ``.WAV.wav`` copies too.
The dialect sentences SA1/SA2 (read by every speaker) are excluded; the official split is kept.
LDC licence: never commit or publish its audio.
"""

from __future__ import annotations

import re
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    check_disjoint,
    check_rates,
    child,
    found,
    is_audio,
    layout_error,
    one_level_down,
    require_root,
)

KIND = "timit"
PATTERN = "{TRAIN,TEST}/DR1..DR8/<sex+spk>/<utt>.WAV (any letter case)"
SPEAKER = re.compile(r"^[mf][a-z]{3}\d$", re.IGNORECASE)
DIALECT = re.compile(r"^dr[1-8]$", re.IGNORECASE)


def _utt_name(p: Path) -> str | None:
    """``SX9.WAV`` / ``sx9.wav`` / ``SX9.WAV.wav`` -> ``sx9``; other files (``.PHN``...) -> None."""
    name = p.name.lower()
    for suffix in (".wav.wav", ".wav"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _hint(root: Path) -> str:
    for sub in ("TIMIT", "timit", "data", "DATA"):
        if child(root / sub, "TRAIN") is not None:
            return one_level_down(root / sub)
    return "point root at the folder that holds TRAIN/ and TEST/"


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    parts = Parts()
    for split in ("train", "test"):
        top = child(root, split.upper())
        if top is None or not top.is_dir():
            raise layout_error(KIND, root, PATTERN, found(root), _hint(root))
        regions = [d for d in sorted(top.iterdir()) if d.is_dir() and DIALECT.match(d.name)]
        if not regions:
            raise layout_error(KIND, root, PATTERN, f"{top.name}/: {found(top)}", _hint(root))
        utts: list[Utterance] = []
        for region in regions:
            for spk in sorted(d for d in region.iterdir() if d.is_dir() and SPEAKER.match(d.name)):
                for f in sorted(spk.iterdir()):
                    name = _utt_name(f)
                    if name is None or not is_audio(f) or name in ("sa1", "sa2"):
                        continue
                    utts.append(Utterance(f"{spk.name.lower()}_{name}", spk.name.lower(), f,
                                          channel))
        if not utts:
            raise layout_error(KIND, root, PATTERN,
                               f"no SI/SX utterances under {top} ({found(regions[0])})",
                               _hint(root))
        parts.utterances[split] = utts
    check_rates(KIND, root, [u.path for s in parts.utterances.values() for u in s], {16000})
    check_disjoint(KIND, root, {u.speaker for u in parts.utterances["train"]},
                   {u.speaker for u in parts.utterances["test"]})
    return parts
