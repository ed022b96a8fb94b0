"""One loader per corpus kind (docs/data.md#user-corpora); :func:`load` turns a CorpusConfig into a
Corpus.

A loader is ``load(root, cfg) -> Parts``: it scans the tree, raises CorpusLayoutError on a wrong
layout and reads no audio beyond file headers. A speech pool and a noise pool (``noise_root`` /
``noise_kind``) are merged into one corpus.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import Corpus
from seofp_lab.data.loaders._layout import Parts, capped
from seofp_lab.data.noise import SYNTHETIC
from seofp_lab.errors import CorpusLayoutError

MODULES = {
    "embedded": "embedded", "lab": "embedded", "voicebank_demand": "voicebank_demand",
    "timit": "timit", "dns": "dns", "librispeech": "librispeech", "wham_noise": "wham_noise",
    "musan": "musan", "demand": "demand", "folder": "folder",
}


def load_parts(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    module = importlib.import_module(f"seofp_lab.data.loaders.{MODULES[kind]}")
    return module.load(kind, root, cfg, channel)


def load_corpus(cfg: CorpusConfig) -> Corpus:
    """Build the :class:`~seofp_lab.data.corpus.Corpus` a CorpusConfig describes.

    Raises:
        CorpusLayoutError: the root does not have the layout of its kind (nothing is trained).
        AudioError: a file that cannot be read.
    """
    return load(cfg)


def load(cfg: CorpusConfig) -> Corpus:
    """The Corpus of ``cfg``: the main corpus, plus the noise pool of ``noise_root`` if set."""
    noise_to_demand = cfg.noise_kind == "demand"
    parts = load_parts(cfg.kind, cfg.root, cfg, None if noise_to_demand else cfg.channel)
    if cfg.noise_root is not None or cfg.noise_kind is not None:
        if cfg.noise_root is None or cfg.noise_kind is None:
            raise CorpusLayoutError(
                "Expected both noise_root and noise_kind (a noise pool such as demand, wham_noise, "
                f"musan or folder) but got noise_root={cfg.noise_root}, noise_kind={cfg.noise_kind}"
            )
        extra = load_parts(cfg.noise_kind, cfg.noise_root, cfg, cfg.channel)
        for split, types in extra.noise_refs.items():
            into = parts.noise_refs.setdefault(split, {})
            for t, refs in types.items():
                into.setdefault(t, []).extend(refs)
        for split, pool in extra.babble_pool.items():
            parts.babble_pool.setdefault(split, pool)
    excluded = set(cfg.exclude or [])
    known = {t for types in parts.noise_refs.values() for t in types}
    if excluded - known:
        raise CorpusLayoutError(
            f"Expected exclude to name noise types of {cfg.kind} at {cfg.root} (one of "
            f"{sorted(known)}) but got {sorted(excluded - known)}"
        )
    refs = {s: {t: capped(r, cfg.seed) for t, r in types.items() if t not in excluded}
            for s, types in parts.noise_refs.items()}
    return Corpus(
        cfg.name, cfg.kind, utterances=parts.utterances, noise_refs=refs,
        babble_pool=parts.babble_pool, pairs=parts.pairs, pair_meta=parts.pair_meta,
        train_noises=cfg.train_noises, test_noises=cfg.test_noises,
        synthetic_train=parts.synthetic_train or SYNTHETIC, babble_talkers=parts.babble_talkers,
        seed=cfg.seed, root=cfg.root, training_missing=parts.training_missing,
    )
