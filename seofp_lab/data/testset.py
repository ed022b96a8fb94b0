"""The fixed, seeded test set: written once, verified on every reuse
(docs/data.md#the-test-set-and-its-identity).

``workspace/testsets/<hash>/`` holds ``noisy/<id>.wav`` and ``clean/<id>.wav`` (32-bit float WAV:
nothing is lost), ``manifest.csv`` (id, speaker, noise, snr, offset, gain, noisy, clean, plus the
clip index, the floor and each file's sha256, and the statistical units: ``utterance``, the
source utterance, and ``noise_clip``, the noise recording; see docs/statistics.md) and
``testset.json`` (the config key and the manifest's sha256). The hash covers only what changes
the test set (corpus, test noises and SNRs, counts, floor, seed), so experiments that differ in
training share one test set.

A pool corpus draws a balanced design: the (noise, SNR) grid is shuffled with the seed and dealt
to the utterances, ``test_mixtures_per_utterance`` each, so per-SNR counts differ by at most one
and a prefix of :attr:`TestSet.items` is balanced too. A paired corpus copies its test pairs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from seofp_lab.config import CorpusConfig
from seofp_lab.data.audio import FS, read_audio, write_audio
from seofp_lab.data.corpus import Corpus, Utterance
from seofp_lab.data.level import active_level_db
from seofp_lab.data.loaders import load_corpus
from seofp_lab.data.mix import loop_unit, mix_at_snr, segment
from seofp_lab.errors import SeofpError
from seofp_lab.fsutil import lock_for
from seofp_lab.workspace import workspace_dir

TARGET_DB = -26.0  # dBov, active level of every clean reference (docs/data.md#mixing)
VERSION = 2  # bump when the drawing or writing changes: old test sets then get a new folder
COLUMNS = ("id", "speaker", "noise", "snr", "offset", "gain", "noisy", "clean", "clip",
           "floor_dbfs", "noisy_sha256", "clean_sha256", "utterance", "noise_clip")
_KEY_FIELDS = ("kind", "root", "noise_root", "noise_kind", "variant", "channel", "test_snrs",
               "test_noises", "test_utterances", "test_mixtures_per_utterance",
               "clean_floor_dbfs", "seed")


class TestSetError(SeofpError):
    """A test-set folder that no longer matches its manifest."""

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class TestItem:
    """One test mixture: its files and how it was drawn."""

    __test__ = False

    id: str
    speaker: str
    noise: str
    snr: float  # NaN when a paired corpus does not say
    noisy_path: Path
    clean_path: Path
    gain: float  # the clipping-protection factor applied to both files
    utterance: str  # the source utterance (a paired corpus: the pair id); mixtures share it
    noise_clip: str  # the noise recording: "rain#0"; babble "babble-not-<talker>#0"; "unknown"


@dataclass
class TestSet:
    """The written test set; :meth:`load` reads one item as (noisy, clean) float32 at 16 kHz."""

    __test__ = False

    root: Path
    manifest_path: Path
    items: list[TestItem]

    def load(self, item: TestItem) -> tuple[np.ndarray, np.ndarray]:
        return read_audio(item.noisy_path, resample=False), read_audio(item.clean_path,
                                                                       resample=False)

    @property
    def snrs(self) -> list[float]:
        """The distinct (known) SNRs, ascending."""
        return sorted({i.snr for i in self.items if np.isfinite(i.snr)})

    def counts(self) -> dict[tuple[str, float], int]:
        """Mixtures per (noise, SNR)."""
        return dict(sorted(Counter((i.noise, i.snr) for i in self.items).items()))


def _fingerprint(cfg: CorpusConfig) -> str:
    """What identifies the corpus content: the manifest's hash for embedded/lab, else the path."""
    if cfg.kind in ("embedded", "lab") and cfg.root is None:
        from seofp_lab.data.loaders.embedded import default_root  # noqa: PLC0415

        manifest = default_root(cfg.kind) / "MANIFEST.tsv"
        if manifest.is_file():
            return hashlib.sha256(manifest.read_bytes()).hexdigest()
    elif cfg.kind in ("embedded", "lab") and (Path(cfg.root) / "MANIFEST.tsv").is_file():
        return hashlib.sha256((Path(cfg.root) / "MANIFEST.tsv").read_bytes()).hexdigest()
    return str(Path(cfg.root).expanduser().resolve()) if cfg.root is not None else ""


def testset_key(cfg: CorpusConfig) -> dict:
    data = cfg.model_dump(mode="json")
    key = {k: data[k] for k in _KEY_FIELDS}
    key["content"] = _fingerprint(cfg)
    key["version"] = VERSION
    return key


def testset_hash(cfg: CorpusConfig) -> str:
    """The folder name: 16 hex digits of the sha256 of :func:`testset_key`."""
    blob = json.dumps(testset_key(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _design(cfg: CorpusConfig, corpus: Corpus) -> list[tuple[Utterance, str, float]]:
    """(utterance, noise, snr) per mixture: the shuffled grid dealt round-robin."""
    rng = np.random.default_rng([cfg.seed, zlib.crc32(b"testset")])
    utts = corpus.utterances("test")
    if cfg.test_utterances is not None and cfg.test_utterances < len(utts):
        utts = [utts[i] for i in sorted(rng.permutation(len(utts))[: cfg.test_utterances])]
    grid = [(n, float(s)) for n in corpus.noise_types("test") for s in cfg.test_snrs]
    m = cfg.test_mixtures_per_utterance
    total = len(utts) * m
    deck = [grid[i] for _ in range(-(-total // len(grid))) for i in rng.permutation(len(grid))]
    # item k = round j of utterance i: deck[j * n_utt + i], so a prefix of rounds stays balanced
    return [(utts[i], *deck[j * len(utts) + i]) for j in range(m) for i in range(len(utts))]


def _write_pool(cfg: CorpusConfig, corpus: Corpus, out: Path, bar: Progress | None) -> list[dict]:
    design = _design(cfg, corpus)
    rng = np.random.default_rng([cfg.seed, zlib.crc32(b"testset-draw")])
    units: dict[tuple[str, str | None, int], np.ndarray] = {}
    gains: dict[str, float] = {}  # level-normalising gain per utterance: P.56 runs once each
    rows, seen = [], Counter()
    job = bar.add_task("writing test set", total=len(design)) if bar else None
    for utt, noise, snr in design:
        x = utt.load()
        if utt.id not in gains:
            gains[utt.id] = 10 ** ((TARGET_DB - active_level_db(x)) / 20)
        clean = (x * np.float32(gains[utt.id])).astype(np.float32)
        excl = utt.speaker if noise == "babble" else None
        clips = corpus.noises("test", [noise], exclude_speaker=excl)[noise]
        c = int(rng.integers(len(clips)))
        if (noise, excl, c) not in units:
            units[(noise, excl, c)] = loop_unit(clips[c])
        unit = units[(noise, excl, c)]
        offset = int(rng.integers(unit.size))
        floor_rng = np.random.default_rng([cfg.seed, zlib.crc32(utt.id.encode()), len(rows)])
        if cfg.clean_floor_dbfs is not None:
            floor = floor_rng.standard_normal(clean.size) * 10 ** (cfg.clean_floor_dbfs / 20)
            clean_in = (clean + floor).astype(np.float32)
        else:
            clean_in = clean
        m = mix_at_snr(clean_in, segment(unit, clean.size, offset), snr)
        # babble is mixed per target talker, from the other talkers: one recording per talker
        clip_name = f"{noise}-not-{excl}#{c}" if excl is not None else f"{noise}#{c}"
        base = f"{utt.id}_{noise}_snr{snr:g}"
        seen[base] += 1
        item_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
        noisy_p = write_audio(out / "noisy" / f"{item_id}.wav", m.noisy)
        clean_p = write_audio(out / "clean" / f"{item_id}.wav", m.clean)
        rows.append({"id": item_id, "speaker": utt.speaker, "noise": noise, "snr": snr,
                     "offset": offset, "gain": repr(m.gain), "noisy": f"noisy/{item_id}.wav",
                     "clean": f"clean/{item_id}.wav", "clip": c,
                     "floor_dbfs": "" if cfg.clean_floor_dbfs is None else cfg.clean_floor_dbfs,
                     "noisy_sha256": _sha256(noisy_p), "clean_sha256": _sha256(clean_p),
                     "utterance": utt.id, "noise_clip": clip_name})
        if bar:
            bar.advance(job)
    return rows


def _write_pairs(cfg: CorpusConfig, corpus: Corpus, out: Path, bar: Progress | None) -> list[dict]:
    pairs = corpus.pairs("test")
    if cfg.test_utterances is not None and cfg.test_utterances < len(pairs):
        rng = np.random.default_rng([cfg.seed, zlib.crc32(b"testset")])
        pairs = [pairs[i] for i in sorted(rng.permutation(len(pairs))[: cfg.test_utterances])]
    rows = []
    job = bar.add_task("copying test pairs (16 kHz)", total=len(pairs)) if bar else None
    for pid, clean_path, noisy_path in pairs:
        noise, snr = corpus.pair_meta.get(pid, ("unknown", float("nan")))
        noisy_p = write_audio(out / "noisy" / f"{pid}.wav", read_audio(noisy_path, FS, True,
                                                                      cfg.channel))
        clean_p = write_audio(out / "clean" / f"{pid}.wav", read_audio(clean_path, FS, True,
                                                                      cfg.channel))
        rows.append({"id": pid, "speaker": pid.rsplit("_", 1)[0], "noise": noise, "snr": snr,
                     "offset": 0, "gain": "1.0", "noisy": f"noisy/{pid}.wav",
                     "clean": f"clean/{pid}.wav", "clip": "", "floor_dbfs": "",
                     "noisy_sha256": _sha256(noisy_p), "clean_sha256": _sha256(clean_p),
                     "utterance": pid, "noise_clip": noise})  # the log's label, or "unknown"
        if bar:
            bar.advance(job)
    return rows


def _read(root: Path) -> TestSet:
    manifest = root / "manifest.csv"
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    items = [TestItem(r["id"], r["speaker"], r["noise"], float(r["snr"]), root / r["noisy"],
                      root / r["clean"], float(r["gain"]), r["utterance"], r["noise_clip"])
             for r in rows]
    return TestSet(root, manifest, items)


def verify(root: Path, progress: bool = True) -> None:
    """Check ``testset.json``, the manifest's hash and every file's hash; raise TestSetError."""
    advice = f"delete {root} to write it again (a test set is never regenerated silently)"
    meta_path, manifest = root / "testset.json", root / "manifest.csv"
    if not meta_path.is_file() or not manifest.is_file():
        raise TestSetError(f"Expected testset.json and manifest.csv in {root} but one is missing; "
                           + advice)
    meta = json.loads(meta_path.read_text())
    got = _sha256(manifest)
    if got != meta.get("manifest_sha256"):
        raise TestSetError(f"Expected manifest.csv in {root} to have sha256 "
                           f"{meta.get('manifest_sha256')} but got {got} (edited?); " + advice)
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with Progress(transient=True, disable=not progress) as bar:
        job = bar.add_task("verifying test set", total=len(rows))
        for r in rows:
            for col in ("noisy", "clean"):
                path = root / r[col]
                if not path.is_file():
                    raise TestSetError(f"Expected {path} (test item {r['id']}) but it is missing; "
                                       + advice)
                if _sha256(path) != r[f"{col}_sha256"]:
                    raise TestSetError(f"Expected {path} to have sha256 {r[f'{col}_sha256']} "
                                       f"but got {_sha256(path)} (modified); " + advice)
            bar.advance(job)


def prepare_test_set(cfg: CorpusConfig, root: Path | None = None, progress: bool = True) -> TestSet:
    """Write the test set of ``cfg`` once (or verify and reuse it) and return it.

    Args:
        cfg: the corpus config; only the fields of the hash matter.
        root: the folder that holds test sets (default ``workspace/testsets``); the set itself
            is ``root/<testset_hash(cfg)>``.
        progress: show rich progress bars.

    Raises:
        TestSetError: an existing folder no longer matches its manifest.
        CorpusLayoutError, AudioError: from loading the corpus.
    """
    base = Path(root) if root is not None else workspace_dir() / "testsets"
    final = base / testset_hash(cfg)
    if final.exists():
        verify(final, progress)
        return _read(final)
    # Several processes (parallel sweep points) may ask for the same set at once: one builds it
    # while the others wait on the lock, then find it built (docs/sweeps.md#a-shared-workspace).
    with lock_for(final):
        if final.exists():
            verify(final, progress)
            return _read(final)
        for stale in base.glob(f".{final.name}.partial*"):  # a crashed earlier write (lock held)
            shutil.rmtree(stale, ignore_errors=True)
        corpus = load_corpus(cfg)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{final.name}.partial-"))
        try:
            with Progress(transient=True, disable=not progress) as bar:
                paired = corpus.paired and corpus.pairs("test")
                rows = (_write_pairs if paired else _write_pool)(cfg, corpus, tmp, bar)
            with (tmp / "manifest.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=COLUMNS)
                w.writeheader()
                w.writerows(rows)
            meta = {"version": VERSION, "key": testset_key(cfg), "items": len(rows),
                    "manifest_sha256": _sha256(tmp / "manifest.csv")}
            (tmp / "testset.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            tmp.rename(final)  # all or nothing: a reader never sees half a test set
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _read(final)
