"""WHAM! noise, noise pool: ``{tr,cv,tt}/*.wav`` at 16 kHz (docs/data.md#user-corpora).

``tr`` trains and ``tt`` tests (its own split is honoured); ``cv`` is not used. One noise type,
``wham``. **CC-BY-NC-4.0**: the loader warns, results may not be used commercially.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef
from seofp_lab.data.loaders._layout import (
    Parts,
    check_rates,
    child,
    require_audio,
    require_root,
    root_hint,
)

KIND = "wham_noise"
PATTERN = "tr/*.wav, cv/*.wav, tt/*.wav"


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    hint = root_hint(root, "wham_noise",
                     "point root at the wham_noise/ folder that holds tr/, cv/ and tt/")
    parts = Parts()
    for split, sub in (("train", "tr"), ("test", "tt")):
        files = require_audio(KIND, root, child(root, sub), PATTERN, hint)
        parts.noise_refs[split] = {"wham": [NoiseRef("wham", f, channel=channel) for f in files]}
    check_rates(KIND, root, [r.path for s in parts.noise_refs.values() for r in s["wham"]][:500])
    warnings.warn("WHAM! noise is licensed CC-BY-NC-4.0: non-commercial use only", stacklevel=2)
    return parts
