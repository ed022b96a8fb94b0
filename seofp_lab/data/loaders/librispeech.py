"""LibriSpeech, speech pool: ``<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac``
(docs/data.md#user-corpora).

``train-*`` subsets train and ``test-*`` subsets test; ``dev-*`` is not used (validation is held
out of the training speakers). The speaker is the first id. CC-BY-4.0.
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
    found,
    layout_error,
    require_root,
    root_hint,
)

KIND = "librispeech"
PATTERN = "{train-*,test-*}/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac"
NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$", re.IGNORECASE)


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    hint = root_hint(root, "LibriSpeech",
                     "point root at the LibriSpeech/ folder that holds train-clean-100/, "
                     "test-clean/, ...")
    parts = Parts()
    for split in ("train", "test"):
        subsets = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith(f"{split}-"))
        if not subsets:
            raise layout_error(KIND, root, PATTERN, found(root), hint)
        utts: list[Utterance] = []
        for sub in subsets:
            for f in sorted(sub.glob("*/*/*.flac")):
                m = NAME.match(f.name)
                if m and m.group(1) == f.parent.parent.name and m.group(2) == f.parent.name:
                    utts.append(Utterance(f.stem, f"ls{m.group(1)}", f, channel))
        if not utts:
            raise layout_error(KIND, root, PATTERN,
                               f"no matching .flac under {', '.join(s.name for s in subsets)} "
                               f"({found(subsets[0])})", hint)
        parts.utterances[split] = utts
    check_rates(KIND, root, [u.path for s in parts.utterances.values() for u in s], {16000})
    check_disjoint(KIND, root, {u.speaker for u in parts.utterances["train"]},
                   {u.speaker for u in parts.utterances["test"]})
    return parts
