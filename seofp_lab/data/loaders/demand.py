"""DEMAND (Thiemann et al.), noise pool: ``<ENV>/ch01.wav … ch16.wav``, 16 or 48 kHz
(docs/data.md#user-corpora).

Each environment is a noise type (lower case, e.g. ``dkitchen``). One channel file is used:
``ch01`` by default, ``ch{channel+1:02d}`` with ``channel:``. DEMAND has no split, so the first
80 % of each recording trains and the last 20 % tests (disjoint samples). To keep environments a
DEMAND-based test set already uses out of training, list the others in ``train_noises``.
CC-BY-SA-3.0.
"""

from __future__ import annotations

import re
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef
from seofp_lab.data.loaders._layout import (
    Parts,
    check_rates,
    found,
    layout_error,
    require_root,
)

KIND = "demand"
PATTERN = "<ENV>/ch01.wav ... ch16.wav (e.g. DKITCHEN/ch01.wav)"
TRAIN_FRACTION = 0.8
CHANNEL_FILE = re.compile(r"^ch(\d\d)\.wav$", re.IGNORECASE)


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    name = f"ch{(channel or 0) + 1:02d}.wav"
    envs = [d for d in sorted(root.iterdir())
            if d.is_dir() and any(CHANNEL_FILE.match(f.name) for f in d.iterdir())]
    if not envs:
        zips = sorted(p.name for p in root.glob("*.zip"))
        hint = (f"found {', '.join(zips[:3])}: unzip them under root" if zips
                else "point root at the folder that holds DKITCHEN/, DLIVING/, ...")
        raise layout_error(KIND, root, PATTERN, found(root), hint)
    files = []
    for env in envs:
        f = next((p for p in env.iterdir() if p.name.lower() == name), None)
        if f is None:
            raise layout_error(KIND, root, f"{env.name}/{name} (channel {channel or 0})",
                               f"{env.name}/: {found(env)}", "set channel: to one that exists")
        files.append((env.name.lower(), f))
    check_rates(KIND, root, [f for _, f in files], {16000, 48000})
    parts = Parts()
    for t, f in files:
        parts.noise_refs.setdefault("train", {})[t] = [NoiseRef(t, f, 0.0, TRAIN_FRACTION)]
        parts.noise_refs.setdefault("test", {})[t] = [NoiseRef(t, f, TRAIN_FRACTION, 1.0)]
    return parts
