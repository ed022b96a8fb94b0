"""Shared checks of the loaders: clear CorpusLayoutErrors, audio listings, pairing
(docs/data.md#layout-errors).

Every message names the kind and the root, the pattern expected, what was found (the first entries)
and, where we can guess it, a hint.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seofp_lab.data.audio import AUDIO_SUFFIXES, audio_info
from seofp_lab.data.corpus import NoiseRef, Pair, Utterance
from seofp_lab.errors import AudioError, CorpusLayoutError

MAX_NOISE_FILES = 200  # per type and split: a big noise pool (WHAM!: 58 h) is subsampled, seeded
_SHOW = 8


@dataclass
class Parts:
    """What one loader found; :func:`seofp_lab.data.loaders.load` turns it into a Corpus."""

    utterances: dict[str, list[Utterance]] = field(default_factory=dict)
    noise_refs: dict[str, dict[str, list[NoiseRef]]] = field(default_factory=dict)
    babble_pool: dict[str, dict[str, list[Utterance]]] = field(default_factory=dict)
    pairs: dict[str, list[Pair]] = field(default_factory=dict)
    pair_meta: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (noise, snr)
    synthetic_train: tuple[str, ...] | None = None  # None: all synthetic types
    babble_talkers: int = 6
    # a test-only corpus (evaluation only): what training would need, e.g. "clean_trainset_..."
    training_missing: str | None = None


def found(path: Path, limit: int = _SHOW) -> str:
    """The first entries of a folder, for error messages."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return f"{path} is empty"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def layout_error(
    kind: str, root: Path, expected: str, got: str, hint: str = ""
) -> CorpusLayoutError:
    msg = f"Expected a {kind} corpus at {root} with {expected} but found: {got}"
    return CorpusLayoutError(msg + (f". Hint: {hint}" if hint else ""))


def require_root(kind: str, root: Path | None) -> Path:
    if root is None:
        raise CorpusLayoutError(
            f"Expected 'root' (a directory) for corpus kind {kind!r} but got none"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise layout_error(kind, root, "an existing directory", found(root),
                           f"edit 'root:' in the corpus config (configs/corpus/{kind}.yaml)")
    return root


def child(path: Path, name: str) -> Path | None:
    """``path/name`` matched case-insensitively (TIMIT copies vary in letter case)."""
    exact = path / name
    if exact.exists():
        return exact
    if not path.is_dir():
        return None
    low = name.lower()
    return next((p for p in sorted(path.iterdir()) if p.name.lower() == low), None)


def one_level_down(path: Path) -> str:
    """The hint for a root whose corpus sits in the sub-folder ``path``."""
    return f"the corpus is one level down: set root to {path}"


def root_hint(root: Path, folder: str, otherwise: str) -> str:
    """:func:`one_level_down` if ``root`` holds the corpus's own ``folder``, else ``otherwise``."""
    nested = child(root, folder)
    return one_level_down(nested) if nested is not None else otherwise


def is_audio(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")


def audio_files(d: Path, recursive: bool = True) -> list[Path]:
    it = d.rglob("*") if recursive else d.iterdir()
    return sorted(p for p in it if is_audio(p))


def require_audio(
    kind: str, root: Path, d: Path | None, pattern: str, hint: str = ""
) -> list[Path]:
    """The audio files under ``d``; a missing or empty folder is a layout error."""
    if d is None or not d.is_dir():
        where = d if d is not None else root
        raise layout_error(kind, root, pattern, found(where if d is not None else root), hint)
    files = audio_files(d)
    if not files:
        raise layout_error(kind, root, pattern, f"no audio files in {d} ({found(d)})", hint)
    return files


def check_rates(kind: str, root: Path, files: Iterable[Path], allowed: set[int] | None = None
                ) -> dict[Path, tuple[int, int]]:
    """(rate, frames) of every file; unreadable files and mixed rates are errors."""
    info: dict[Path, tuple[int, int]] = {}
    for f in files:
        try:
            i = audio_info(f)
        except AudioError as exc:
            raise AudioError(f"{kind} corpus at {root}: {exc}") from None
        if i.frames == 0:
            raise AudioError(f"{kind} corpus at {root}: expected samples in {f} but it is empty")
        info[f] = (i.samplerate, i.frames)
    rates = Counter(r for r, _ in info.values())
    if len(rates) > 1 or (allowed and rates and not set(rates) <= allowed):
        example = {r: next(str(f) for f, (rr, _) in info.items() if rr == r) for r in rates}
        want = f"one of {sorted(allowed)} Hz" if allowed else "one sample rate"
        raise layout_error(kind, root, want, f"rates {dict(rates)} (e.g. {example})")
    return info


def match_pairs(kind: str, root: Path, clean: dict[str, Path], noisy: dict[str, Path],
                pattern: str) -> list[Pair]:
    """Pairs by key; noisy files without a clean partner and length mismatches are errors."""
    orphans = sorted(k for k in noisy if k not in clean)
    if orphans:
        shown = ", ".join(str(noisy[k].name) for k in orphans[:10])
        raise layout_error(kind, root, f"a clean partner for every noisy file ({pattern})",
                           f"{len(orphans)} noisy files without one: {shown}")
    info = check_rates(kind, root, [*noisy.values(), *(clean[k] for k in noisy)])
    bad = [k for k in sorted(noisy) if info[noisy[k]][1] != info[clean[k]][1]]
    if bad:
        shown = ", ".join(f"{noisy[k].name} ({info[noisy[k]][1]} vs {info[clean[k]][1]})"
                          for k in bad[:10])
        raise layout_error(kind, root, "clean and noisy files of equal length",
                           f"{len(bad)} pairs that differ: {shown}")
    return [(k, clean[k], noisy[k]) for k in sorted(noisy)]


def check_disjoint(kind: str, root: Path, train: Iterable[str], test: Iterable[str],
                   what: str = "speakers") -> None:
    both = sorted(set(train) & set(test))
    if both:
        raise layout_error(kind, root, f"disjoint train and test {what}",
                           f"{len(both)} in both: {', '.join(both[:10])}")


def capped(refs: list[NoiseRef], seed: int, limit: int = MAX_NOISE_FILES) -> list[NoiseRef]:
    """At most ``limit`` clips, a seeded choice (keeps a 58-hour pool out of memory)."""
    if len(refs) <= limit:
        return refs
    rng = np.random.default_rng([seed, zlib.crc32(refs[0].type.encode())])
    return [refs[i] for i in sorted(rng.permutation(len(refs))[:limit])]


def hash_split(rel: str, test_fraction: int = 5) -> str:
    """A stable train/test assignment of a file with no official split: 1 in 5 goes to test."""
    return "test" if zlib.crc32(rel.encode()) % test_fraction == 0 else "train"


def group_refs(kind_of: Callable[[Path], str], files: Iterable[Path], channel: int | None = None
               ) -> dict[str, list[NoiseRef]]:
    out: dict[str, list[NoiseRef]] = {}
    for f in files:
        t = kind_of(f)
        out.setdefault(t, []).append(NoiseRef(t, f, channel=channel))
    return out
