"""The corpus API: utterances, noise clips and clean/noisy pairs per split (docs/data.md#splits).

A :class:`Corpus` is what a loader (:mod:`seofp_lab.data.loaders`) finds under a root: a speech pool
(train and test utterances, plus clips reserved for babble), a noise pool (real clips per type and
split) and, for paired corpora, (clean, noisy) pairs. Synthetic noises are generated from the seed
on first use. Validation utterances (or pairs) are a fixed, seeded hold-out from the training
speakers: :func:`hold_out`.

Everything loads lazily and is cached in memory, so building a Corpus only scans the tree.
"""

from __future__ import annotations

import warnings
import zlib
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from seofp_lab.data import noise as synth
from seofp_lab.data.audio import FS, read_cached
from seofp_lab.errors import CorpusLayoutError
from seofp_lab.workspace import workspace_dir

Split = Literal["train", "valid", "test"]
NoiseSplit = Literal["train", "test"]
# of each synthetic type per split: 7 types x 60 s in about 1 s (docs/data.md#synthetic-noises)
SYNTH_SECONDS = 60.0
BABBLE_SECONDS = 30.0
VALID_PER_SPEAKER = 4  # held-out utterances per training speaker ...
VALID_MAX = 48  # ... and at most this many in all (a corpus with 462 speakers holds out 1 each)
SSN_MAX_UTTERANCES = 200  # enough for a stable long-term spectrum
_CACHE_BYTES = 1 << 30  # in-memory audio cache; a bigger corpus is re-read from disk


class _AudioCache:
    """A byte-bounded LRU of decoded files, shared by every corpus in the process."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.items: OrderedDict[tuple[str, int | None, float, float | None], np.ndarray] = (
            OrderedDict()
        )

    def get(self, path: Path, channel: int | None, start: float, stop: float | None) -> np.ndarray:
        key = (str(path), channel, start, stop)
        x = self.items.get(key)
        if x is not None:
            self.items.move_to_end(key)
            return x
        x = read_cached(path, workspace_dir() / "cache" / "16k", FS, channel)
        if start or stop is not None:  # a time range of a long recording (DEMAND's split)
            n = x.size
            x = x[int(start * n) : int((1.0 if stop is None else stop) * n)].copy()
        x.setflags(write=False)  # shared between callers: nobody may change it in place
        self.items[key] = x
        self.used += x.nbytes
        while self.used > self.limit and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.used -= old.nbytes
        return x


AUDIO_CACHE = _AudioCache(_CACHE_BYTES)


@dataclass(frozen=True)
class Utterance:
    """One clean utterance of one speaker."""

    id: str
    speaker: str
    path: Path
    channel: int | None = field(default=None, compare=False, repr=False)

    def load(self) -> np.ndarray:
        """(time,) float32 at 16 kHz mono, read once and cached (read-only array)."""
        return AUDIO_CACHE.get(self.path, self.channel, 0.0, None)


@dataclass(frozen=True)
class NoiseRef:
    """A noise clip on disk: a whole file, or the fraction [start, stop) of a long recording."""

    type: str
    path: Path
    start: float = 0.0
    stop: float | None = None
    channel: int | None = None

    def load(self) -> np.ndarray:
        return AUDIO_CACHE.get(self.path, self.channel, self.start, self.stop)


Pair = tuple[str, Path, Path]  # (id, clean, noisy)


def speaker_of_pair(pair_id: str) -> str:
    """VoiceBank-style ids ``p232_001`` -> ``p232``; other ids are their own speaker."""
    return pair_id.rsplit("_", 1)[0] if "_" in pair_id else pair_id


def hold_out(
    items: list, speaker_of, seed: int, per_speaker: int = VALID_PER_SPEAKER, cap: int = VALID_MAX
) -> tuple[list, list]:
    """Split training items into (train, valid): a seeded few per speaker, every speaker kept.

    ``k = clamp(ceil(cap / speakers), 1, per_speaker)`` items are held out from each of at most
    ``ceil(cap / k)`` speakers (drawn with the seed); a speaker keeps at least one training item.
    """
    by_spk: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_spk[speaker_of(it)].append(i)
    speakers = sorted(by_spk)
    if not speakers:
        return [], []
    rng = np.random.default_rng([seed, zlib.crc32(b"valid")])
    k = int(min(per_speaker, max(1, -(-cap // len(speakers)))))
    chosen = [speakers[i] for i in rng.permutation(len(speakers))[: -(-cap // k)]]
    held: set[int] = set()
    for spk in sorted(chosen):
        group = by_spk[spk]
        take = min(k, len(group) - 1)
        held.update(group[j] for j in rng.permutation(len(group))[:take])
    train = [it for i, it in enumerate(items) if i not in held]
    valid = [it for i, it in enumerate(items) if i in held]
    return train, valid


class Corpus:
    """Speech, noise and pairs of one corpus config, split into train / valid / test.

    Attributes:
        name: the config's name (the ``seofp.corpus`` tag).
        kind: the loader kind (``embedded``, ``timit``, ...).
        paired: True when the corpus yields (clean, noisy) pairs (voicebank_demand, dns test,
            folder paired); pools are then still available for whatever the corpus has.
        training_missing: None, or for a test-only corpus (only its test part on disk) what
            training would need; :meth:`require_training` refuses such a corpus.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        utterances: dict[str, list[Utterance]],
        noise_refs: dict[str, dict[str, list[NoiseRef]]],
        babble_pool: dict[str, dict[str, list[Utterance]]],
        pairs: dict[str, list[Pair]] | None = None,
        pair_meta: dict[str, tuple[str, float]] | None = None,
        train_noises: list[str] | None = None,
        test_noises: list[str] | None = None,
        synthetic_train: tuple[str, ...] = synth.SYNTHETIC,
        babble_talkers: int = 6,
        seed: int = 0,
        root: Path | None = None,
        training_missing: str | None = None,
    ) -> None:
        self.name, self.kind, self.root, self.seed = name, kind, root, seed
        self.training_missing = training_missing
        self.babble_talkers = babble_talkers
        train, valid = hold_out(utterances.get("train", []), lambda u: u.speaker, seed)
        self._utts = {"train": train, "valid": valid, "test": list(utterances.get("test", []))}
        self._refs = noise_refs
        self._babble_pool = babble_pool
        pairs = pairs or {}
        self.paired = any(pairs.values())
        self.pair_meta = dict(pair_meta or {})  # id -> (noise type, SNR) where the corpus says
        ptrain, pvalid = hold_out(pairs.get("train", []), lambda p: speaker_of_pair(p[0]), seed)
        self._pairs = {"train": ptrain, "valid": pvalid, "test": list(pairs.get("test", []))}
        self._synthetic_train = tuple(synthetic_train)
        self._noise_types = {
            s: self.default_noise_types(s) if wanted is None else self.check_noise_types(s, wanted)
            for s, wanted in (("train", train_noises), ("test", test_noises))
        }
        self._noise_cache: dict[tuple[str, str, str | None], list[np.ndarray]] = {}
        self._psd: np.ndarray | None = None

    @property
    def test_only(self) -> bool:
        """True when only the test part is on disk: fine for evaluation, refused for training."""
        return self.training_missing is not None

    def require_training(self) -> None:
        """Raise CorpusLayoutError for a test-only corpus, naming its root and what is missing."""
        if self.training_missing is not None:
            raise CorpusLayoutError(
                f"Expected a training part in {self.kind} corpus {self.name!r} at {self.root} "
                f"but it has only a test part; training needs {self.training_missing}. A "
                "test-only corpus can still score a trained run: seofp evaluate RUN --corpus "
                "CONFIG corpus.root=..."
            )

    # ------------------------------------------------------------------------------ speech
    def utterances(self, split: Split) -> list[Utterance]:
        """Clean utterances of ``split``; ``valid`` is the seeded hold-out of training speakers."""
        return list(self._utts[split])

    def speakers(self, split: Split) -> list[str]:
        return sorted({u.speaker for u in self._utts[split]})

    def pairs(self, split: Split) -> list[Pair]:
        """(id, clean path, noisy path) of a paired corpus; ``valid`` is held out of ``train``."""
        return list(self._pairs[split])

    # ------------------------------------------------------------------------------- noise
    def noise_refs(self, split: NoiseSplit) -> dict[str, list[NoiseRef]]:
        """The real noise clips on disk of ``split``, per type."""
        return {t: list(r) for t, r in self._refs.get(split, {}).items()}

    def available_noise_types(self, split: NoiseSplit) -> list[str]:
        """Every type this corpus can produce for ``split``: real, synthetic and babble."""
        real = sorted(t for t, refs in self._refs.get(split, {}).items() if refs)
        babble = ["babble"] if self._babble_pool.get(split) or self._utts.get(split) else []
        return real + [s for s in synth.SYNTHETIC if s not in real] + babble

    def default_noise_types(self, split: NoiseSplit) -> list[str]:
        """Training: real training types + the synthetic ones; test: real test types + babble."""
        real = sorted(t for t, refs in self._refs.get(split, {}).items() if refs)
        if split == "train":
            return real + [s for s in self._synthetic_train if s not in real]
        return real + ["babble"]

    def noise_types(self, split: Split) -> list[str]:
        """The noise types mixtures of ``split`` use (the config's lists, or the defaults)."""
        return list(self._noise_types["test" if split == "test" else "train"])

    def check_noise_types(self, split: NoiseSplit, wanted: list[str]) -> list[str]:
        """``wanted`` if this corpus can make every type for ``split``, else CorpusLayoutError."""
        have = self.available_noise_types(split)
        other = "test" if split == "train" else "train"
        for t in wanted:
            if t in have:
                continue
            leak = t in self._refs.get(other, {})
            raise CorpusLayoutError(
                f"Expected {split}_noises among {have} for corpus {self.name!r} but got {t!r}"
                + (f" (a {other} noise: train and test noise clips stay disjoint)" if leak else "")
            )
        return list(wanted)

    def training_psd(self) -> np.ndarray:
        """Long-term spectrum of (up to 200 seeded) training utterances, for ``ssn``."""
        if self._psd is None:
            utts = self._utts["train"] or self._utts["test"]
            rng = np.random.default_rng([self.seed, zlib.crc32(b"ssn")])
            pick = rng.permutation(len(utts))[:SSN_MAX_UTTERANCES]
            self._psd = synth.speech_psd(utts[i].load() for i in sorted(pick))
        return self._psd

    def noises(
        self,
        split: Split,
        types: list[str] | None = None,
        exclude_speaker: str | None = None,
    ) -> dict[str, list[np.ndarray]]:
        """Noise clips per type (16 kHz float32), read or generated once.

        Args:
            split: ``train`` (also for ``valid``) or ``test``.
            types: which types; None: :meth:`noise_types` of the split.
            exclude_speaker: the target speaker babble must not contain. None: babble is made of
                talkers who are not targets of this split.
        """
        ns = "test" if split == "test" else "train"
        out: dict[str, list[np.ndarray]] = {}
        for t in types if types is not None else self.noise_types(split):
            key = (ns, t, exclude_speaker if t == "babble" else None)
            if key not in self._noise_cache:
                self._noise_cache[key] = self._make_noise(ns, t, exclude_speaker)
            out[t] = self._noise_cache[key]
        return out

    def _make_noise(self, split: str, kind: str, exclude: str | None) -> list[np.ndarray]:
        refs = self._refs.get(split, {}).get(kind)
        if refs:
            return [r.load() for r in refs]
        n = int(SYNTH_SECONDS * FS)
        if kind == "babble":
            return [self._babble(split, exclude)]
        psd = self.training_psd() if kind in ("ssn", "modulated") else None
        return [synth.synthesize(kind, n, synth.noise_rng(self.seed, split, kind), psd=psd)]

    def babble_talker_ids(self, split: str, exclude: str | None) -> list[str]:
        """The (seeded) talkers of the babble used with target ``exclude`` in ``split``."""
        pool = self._babble_pool.get(split) or _by_speaker(self._utts.get(split, []))
        targets = {exclude} if exclude is not None else {u.speaker for u in self._utts[split]}
        if exclude is None and split == "train":
            targets |= {u.speaker for u in self._utts["valid"]}
        talkers = sorted(s for s in pool if s not in targets)
        rng = np.random.default_rng([self.seed, zlib.crc32(f"babble|{split}|{exclude}".encode())])
        chosen = sorted(talkers[i] for i in rng.permutation(len(talkers))[: self.babble_talkers])
        if not chosen:
                raise CorpusLayoutError(
                f"Expected babble talkers other than {sorted(targets)} in the {split} split of "
                f"corpus {self.name!r} but got none; drop 'babble' from the noise list"
            )
        return chosen

    def _babble(self, split: str, exclude: str | None) -> np.ndarray:
        pool = self._babble_pool.get(split) or _by_speaker(self._utts.get(split, []))
        chosen = self.babble_talker_ids(split, exclude)
        # With fewer talkers than voices (the embedded tier has 3 per target), each talker gives
        # several voices made of different clips, so the babble still has >= 4 overlapping voices.
        per_talker = -(-self.babble_talkers // len(chosen))
        talkers = []
        for spk in chosen:
            utts = pool[spk]
            streams = min(per_talker, len(utts))
            for k in range(streams):
                clips, total = [], 0
                for u in utts[k::streams]:
                    clips.append(u.load())
                    total += clips[-1].size
                    if total >= BABBLE_SECONDS * FS:
                        break
                talkers.append(np.concatenate(clips))
        if len(talkers) < 4:
            warnings.warn(
                f"babble of corpus {self.name!r} ({split}) has only {len(talkers)} voices from "
                f"{chosen}: fewer than 4 gives intelligible competing speech "
                "(docs/data.md#synthetic-noises)",
                stacklevel=3,
            )
        key = zlib.crc32(f"babble-mix|{split}|{exclude}".encode())
        rng = np.random.default_rng([self.seed, key])
        return synth.babble(talkers, int(BABBLE_SECONDS * FS), rng)


def _by_speaker(utts: list[Utterance]) -> dict[str, list[Utterance]]:
    out: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        out[u.speaker].append(u)
    return out

