"""DNS Challenge: training pools and the paired synthetic test set (docs/data.md#user-corpora).

``datasets/clean/`` (speech pool; speaker ``reader_NNNNN`` from the file name, else the folder)
and ``datasets/noise/`` (one type, ``dns``) train; ``test_set/synthetic/{no_reverb,with_reverb}/
{clean,noisy}/`` are test pairs matched by ``fileid_<N>``. ``real_recordings/`` has no reference
and is skipped with a warning.

Test-only (evaluation, no training): a root without ``datasets/``, which is one of the
DNS-Challenge folder with only ``test_set/``, the ``synthetic/`` folder itself (holding
``no_reverb/`` and/or ``with_reverb/``), or one folder of ``clean/clean_fileid_<N>.wav`` and
``noisy/<anything>_fileid_<N>.wav`` (such as ``synthetic/no_reverb/``; its name labels the pairs).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef, Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    child,
    found,
    layout_error,
    match_pairs,
    require_audio,
    require_root,
)

KIND = "dns"
PATTERN = ("datasets/clean/, datasets/noise/ and "
           "test_set/synthetic/{no_reverb,with_reverb}/{clean,noisy}/*_fileid_<N>.wav")
FILEID = re.compile(r"fileid_(\d+)", re.IGNORECASE)
READER = re.compile(r"reader_(\d+)", re.IGNORECASE)
SNR = re.compile(r"snr(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _by_fileid(kind: str, root: Path, files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        m = FILEID.search(f.stem)
        if m is None:
            raise layout_error(kind, root, PATTERN, f"{f.name} has no fileid_<N>")
        out[m.group(1)] = f
    return out


def _test_folders(root: Path) -> list[tuple[str, Path]]:
    """(label, folder holding clean/ and noisy/) of the synthetic test set under ``root``."""
    if child(root, "datasets") is None and child(root, "clean") is not None:
        return [(root.name, root)]  # one folder of pairs, e.g. synthetic/no_reverb/
    for synthetic in (root / "test_set" / "synthetic", root):
        found_ = [(r, synthetic / r) for r in ("no_reverb", "with_reverb")
                  if (synthetic / r).is_dir()]
        if found_:
            return found_
    return []


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    hint = "point root at the DNS-Challenge folder that holds datasets/ and test_set/"
    parts = Parts()
    if child(root, "datasets") is not None:
        clean = require_audio(KIND, root, child(root / "datasets", "clean"), PATTERN, hint)
        noise = require_audio(KIND, root, child(root / "datasets", "noise"), PATTERN, hint)
        parts.utterances["train"] = [
            Utterance(f.stem, ("reader_" + m.group(1)) if (m := READER.search(f.stem)) else
                      f.parent.name, f, channel) for f in clean]
        parts.noise_refs["train"] = {"dns": [NoiseRef("dns", f, channel=channel) for f in noise]}
    else:
        parts.training_missing = "datasets/clean/ (speech) and datasets/noise/"
        hint = ("a test-only root is the DNS-Challenge folder, its test_set/synthetic/ folder, "
                "or one folder of clean/clean_fileid_<N>.wav and noisy/*_fileid_<N>.wav")
    pairs = []
    for reverb, d in _test_folders(root):
        c = _by_fileid(KIND, root, require_audio(KIND, root, child(d, "clean"), PATTERN, hint))
        n = _by_fileid(KIND, root, require_audio(KIND, root, child(d, "noisy"), PATTERN, hint))
        for i, cp, npath in match_pairs(KIND, root, c, n, PATTERN):
            pid = f"{reverb}_fileid_{i}"
            pairs.append((pid, cp, npath))
            m = SNR.search(npath.stem)
            parts.pair_meta[pid] = (reverb, float(m.group(1)) if m else float("nan"))
    if not pairs:
        synthetic = root / "test_set" / "synthetic"
        got = f"test_set/synthetic: {found(synthetic)}" if synthetic.exists() else found(root)
        raise layout_error(KIND, root, PATTERN, got, hint)
    parts.pairs["test"] = pairs
    if (root / "test_set" / "real_recordings").is_dir():
        warnings.warn(f"{root}/test_set/real_recordings has no clean reference: skipped",
                      stacklevel=2)
    return parts
