"""MUSAN, pool: ``{noise,music,speech}/<source>/*.wav`` plus ANNOTATIONS, LICENSE
(docs/data.md#user-corpora).

``noise`` and ``music`` are noise types; ``speech`` feeds babble (each file one talker). MUSAN has
no split, so each file goes to test when the CRC-32 of its relative path is 0 mod 5 (stable,
disjoint, 20 %).
"""

from __future__ import annotations

from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef, Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    audio_files,
    check_rates,
    child,
    found,
    hash_split,
    layout_error,
    require_root,
    root_hint,
)

KIND = "musan"
PATTERN = "{noise,music,speech}/<source>/*.wav"


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    parts = Parts()
    checked = []
    for folder in ("noise", "music"):
        d = child(root, folder)
        for f in audio_files(d) if d is not None and d.is_dir() else []:
            split = hash_split(str(f.relative_to(root)))
            parts.noise_refs.setdefault(split, {}).setdefault(folder, []).append(
                NoiseRef(folder, f, channel=channel))
            checked.append(f)
    if not checked:
        hint = root_hint(root, "musan",
                         "point root at the musan/ folder that holds noise/, music/ and speech/")
        raise layout_error(KIND, root, PATTERN, found(root), hint)
    d = child(root, "speech")
    for f in audio_files(d) if d is not None and d.is_dir() else []:
        split = hash_split(str(f.relative_to(root)))
        parts.babble_pool.setdefault(split, {})[f.stem] = [Utterance(f.stem, f.stem, f, channel)]
    check_rates(KIND, root, checked[:500])
    return parts
