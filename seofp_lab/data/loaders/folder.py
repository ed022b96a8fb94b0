"""Any folder of audio, paired or as pools (docs/data.md#user-corpora).

- paired: ``{train,test}/clean/**`` and ``{train,test}/noisy/**`` with the same relative paths;
- pools: ``speech/{train,test}/<speaker>/**`` and ``noise/{train,test}/<type>/**``; the directory
  names give speaker and noise type. ``noise/`` is optional (synthetic noise and babble remain).

Anything soundfile reads, at any rate (resampled once and cached).

A paired folder with only ``test/clean/**`` and ``test/noisy/**`` (no ``train/`` folder) is a
test-only corpus: evaluation uses it, training refuses it.
"""

from __future__ import annotations

from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef, Utterance
from seofp_lab.data.loaders._layout import (
    Parts,
    audio_files,
    check_disjoint,
    check_rates,
    found,
    layout_error,
    match_pairs,
    require_audio,
    require_root,
)

KIND = "folder"
PAIRED = "{train,test}/clean/** and {train,test}/noisy/** with the same relative paths"
POOLS = "speech/{train,test}/<speaker>/** (and optionally noise/{train,test}/<type>/**)"


def _key(p: Path, base: Path) -> str:
    return str(p.relative_to(base).with_suffix("")).replace("/", "_")


def _dirs(kind: str, root: Path, base: Path, pattern: str) -> dict[str, list[Path]]:
    """<base>/<label>/** -> {label: files}; a split folder without labelled audio is an error."""
    out = {d.name: audio_files(d) for d in sorted(base.iterdir()) if d.is_dir()}
    out = {k: v for k, v in out.items() if v}
    if not out:
        loose = audio_files(base, recursive=False)
        hint = (f"{len(loose)} files lie directly in {base.name}/: put them in one folder per "
                "speaker or noise type") if loose else ""
        raise layout_error(kind, root, pattern, f"{base}: {found(base)}", hint)
    return out


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = require_root(KIND, root)
    parts = Parts()
    if (root / "train" / "clean").is_dir() or (root / "test" / "clean").is_dir():
        splits = ("train", "test")
        if not (root / "train").exists():
            parts.training_missing = "train/clean/** and train/noisy/** (same relative paths)"
            splits = ("test",)
        for split in splits:
            base = root / split
            clean = require_audio(KIND, root, base / "clean", PAIRED)
            noisy = require_audio(KIND, root, base / "noisy", PAIRED)
            parts.pairs[split] = match_pairs(
                KIND, root, {_key(p, base / "clean"): p for p in clean},
                {_key(p, base / "noisy"): p for p in noisy}, PAIRED)
            parts.utterances[split] = [Utterance(k, k.split("_")[0], c, channel)
                                       for k, c, _ in parts.pairs[split]]
        return parts
    if not (root / "speech").is_dir():
        raise layout_error(KIND, root, f"either {PAIRED} or {POOLS}", found(root),
                           "see docs/data.md#user-corpora for the two folder layouts")
    for split in ("train", "test"):
        require_audio(KIND, root, root / "speech" / split, POOLS)
        spk = _dirs(KIND, root, root / "speech" / split, POOLS)
        parts.utterances[split] = [Utterance(_key(f, root / "speech" / split), s, f, channel)
                                   for s, files in spk.items() for f in files]
        noise_dir = root / "noise" / split
        if noise_dir.is_dir():
            types = _dirs(KIND, root, noise_dir, POOLS)
            parts.noise_refs[split] = {t: [NoiseRef(t, f, channel=channel) for f in files]
                                       for t, files in types.items()}
    check_disjoint(KIND, root, {u.speaker for u in parts.utterances["train"]},
                   {u.speaker for u in parts.utterances["test"]})
    check_rates(KIND, root, [u.path for s in parts.utterances.values() for u in s][:2000])
    return parts
