"""Stimuli for an ABX study: drawn from two runs, loudness-matched, frozen in a hashed manifest.

``prepare_study`` runs offline (``seofp study prepare``) and writes 48 kHz float WAV clips plus
``manifest.json`` under the workspace; the app only reads them. Every buffer the browser receives
is rendered by :func:`render_wav`: fresh TPDF dither at the 16-bit LSB and a random header chunk,
so no two served buffers share bytes (docs/listening.md#stimuli,
docs/listening.md#player-and-blinding).
"""

from __future__ import annotations

import csv
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from seofp_lab.errors import StudyError
from seofp_lab.fsutil import write_text_atomic
from seofp_lab.listening.build import build_stimuli
from seofp_lab.listening.clips import fade
from seofp_lab.listening.protocol import Item, StudyDefinition, item_pool, load_study

MANIFEST_VERSION = 1


def prepared_dir(study_name: str) -> Path:
    """Where ``prepare`` writes a study's clips and manifest (inside the workspace)."""
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    return workspace_path("studies", study_name, "stimuli", "x").parent


def resolve_run_dir(run_id: str) -> Path:
    """A run's enhanced test set, as written by ``seofp evaluate``."""
    try:
        from seofp_lab.evaluate.enhanced import enhanced_dir  # noqa: PLC0415
    except ImportError as exc:
        raise StudyError(f"Expected seofp_lab.evaluate.enhanced to resolve run {run_id!r} "
                         f"but it cannot be imported ({exc}); give baseline_dir/compressed_dir"
                         ) from None
    return Path(enhanced_dir(run_id))


CONTROL_REF = "control"  # baseline_run: the compressed run's equal-budget fp32 control


def control_of(run_id: str | None) -> str:
    """The ``seofp.control_run`` of a compressed run (``baseline_run: control``)."""
    from seofp_lab import tracking  # noqa: PLC0415

    if not run_id:
        raise StudyError("Expected compressed_run (a run id or latest:ROLE) with baseline_run: "
                         "control, but compressed_run is not a run")
    control = tracking.get_run(run_id).data.tags.get(tracking.TAG_CONTROL)
    if not control:
        raise StudyError(f"Expected compressed run {run_id} to have an equal-budget control (tag "
                         f"{tracking.TAG_CONTROL}) for baseline_run: control but it has none; "
                         "train it with `seofp train` (controls are on by default) or name "
                         "baseline_run: latest:baseline")
    return control


def resolve_run(ref: str, experiment: str) -> str:
    """A run reference (resolved by :func:`seofp_lab.tracking.resolve_run_id`), or ``latest:ROLE``:
    the newest run of ``experiment`` tagged ``seofp.role=ROLE`` (``control`` is resolved by
    :func:`control_of` once the compressed run is known).

    The resolved id is frozen in the manifest at prepare time. ``models:/NAME@ALIAS`` names a
    registered model version's run (:func:`seofp_lab.tracking.resolve_run_id`).
    """
    from seofp_lab import tracking  # noqa: PLC0415

    if ref == CONTROL_REF:
        return ref
    if not ref.startswith("latest:"):
        return tracking.resolve_run_id(ref)  # a full id or a unique prefix
    role = ref.split(":", 1)[1]
    runs = tracking.find_runs(experiment, f"tags.`{tracking.TAG_ROLE}` = '{role}'")
    if not runs:
        raise StudyError(f"Expected a run tagged {tracking.TAG_ROLE}={role} in MLflow experiment "
                         f"{experiment!r} ({tracking.tracking_uri()}) but found none; run "
                         "`seofp demo` first or name run ids in study.yaml")
    return runs[0].info.run_id


def read_run_dir(root: Path) -> dict[str, dict[str, str]]:
    """Rows of ``root/manifest.csv`` by id; audio paths made absolute."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        raise StudyError(f"Expected an enhanced test set with manifest.csv at {path} "
                         "but it does not exist (run `seofp evaluate` first)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"id", "speaker", "noise", "snr", "enhanced"}
    if not rows or not need <= set(rows[0]):
        raise StudyError(f"Expected columns {sorted(need)} in {path} but got "
                         f"{sorted(rows[0]) if rows else 'no rows'}")
    out = {}
    for row in rows:
        for key in ("noisy", "clean", "enhanced"):
            if row.get(key):
                p = Path(row[key])
                row[key] = str(p if p.is_absolute() else Path(root) / p)
        out[row["id"]] = row
    _attach_units(out, path)
    return out


def _attach_units(rows: dict[str, dict[str, str]], enhanced_manifest: Path) -> None:
    """Give every row its ``utterance`` and ``speaker`` from the test set's own manifest.

    ``seofp evaluate`` writes one clean file per mixture (``<testset>/clean/<id>.wav``) and no
    utterance column, so neither the file name nor the enhanced manifest says which mixtures
    share a sentence. The test set's ``manifest.csv`` (seofp_lab/data/testset.py) does: it is
    found next to the clean file (``<testset>/manifest.csv`` with ``testset.json``). A
    hand-made enhanced folder without a test set may carry an ``utterance`` column instead.
    """
    cache: dict[Path, dict[str, dict[str, str]]] = {}
    for item_id, row in rows.items():
        unit = None
        if row.get("clean"):
            ts_root = Path(row["clean"]).parent.parent
            if ts_root not in cache:
                cache[ts_root] = _testset_rows(ts_root)
            unit = cache[ts_root].get(item_id)
        if unit is not None:
            row["utterance"], row["speaker"] = unit["utterance"], unit["speaker"]
        elif not row.get("utterance"):
            where = (f"the test-set manifest {Path(row['clean']).parent.parent / 'manifest.csv'}"
                     if row.get("clean") else "a test-set manifest (no clean file given)")
            raise StudyError(
                f"Expected the source utterance of item {item_id!r}: a row in {where}, or an "
                f"'utterance' column in {enhanced_manifest}; without it 'no sentence twice in "
                "a row' and per-block balancing cannot be enforced")


def _testset_rows(root: Path) -> dict[str, dict[str, str]]:
    """Rows by id of a test set's manifest.csv (only if testset.json marks it as one)."""
    path = root / "manifest.csv"
    if not (root / "testset.json").is_file() or not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"id", "utterance", "speaker"} <= set(rows[0]):
        raise StudyError(f"Expected columns id, utterance, speaker in the test-set manifest "
                         f"{path} but got {sorted(rows[0])}; write the test set again")
    return {r["id"]: r for r in rows}
def render_wav(x: np.ndarray, rate: int, rng: np.random.Generator | None = None) -> bytes:
    """A served buffer: 16-bit PCM WAV with independent TPDF dither and a random header chunk.

    Args:
        x: float signal in [-1, 1], shape (time,) or (time, channels).
        rate: sample rate in Hz.
        rng: source of the dither and chunk; default a fresh CSPRNG-seeded generator.
    """
    rng = rng or np.random.default_rng(secrets.randbits(128))
    x = np.asarray(x, dtype=np.float64)
    x2 = x[:, None] if x.ndim == 1 else x
    tpdf = rng.random(x2.shape) - rng.random(x2.shape)  # triangular, +-1 LSB
    pcm = np.clip(np.round(x2 * 32767.0 + tpdf), -32768, 32767).astype("<i2")
    ch = x2.shape[1]
    fmt = struct.pack("<HHIIHH", 1, ch, rate, rate * 2 * ch, 2 * ch, 16)
    # same size for every clip: a size difference must never point at X
    extra = b"seof" + struct.pack("<I", 16) + rng.bytes(16)
    data = pcm.tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tone_triplet(rate: int, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """Woods et al. (2017) headphone screen: three 200 Hz stereo tones, one of them antiphase.

    Returns:
        three (time, 2) clips and the index of the quietest one (-6 dB), the correct answer.
    """
    t = np.arange(int(rate * 1.0)) / rate
    tone = fade(0.2 * np.sin(2 * np.pi * 200 * t), rate, 100)
    normal = np.stack([tone, tone], 1)
    clips = [normal, np.stack([tone, -tone], 1), normal * 10 ** (-6 / 20)]
    order = rng.permutation(3)
    return [clips[i] for i in order], int(np.where(order == 2)[0][0])


def snr_pair(speech: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """Environment check: speech with white noise at 50 and 40 dB SNR; the answer is the 40 dB."""
    clips = []
    for snr in (50.0, 40.0):
        noise = rng.standard_normal(len(speech))
        clips.append(speech + noise * np.sqrt(np.mean(speech**2)) * 10 ** (-snr / 20))
    order = rng.permutation(2)
    return [clips[i] for i in order], int(np.where(order == 1)[0][0])


@dataclass
class Manifest:
    """The frozen stimulus set: items, clip files and their hashes; ``digest`` covers it all."""

    root: Path
    data: dict
    digest: str
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def items(self) -> list[Item]:
        return [Item(i["item_id"], i["utterance_id"], float(i["snr"])) for i in self.data["items"]]

    @property
    def ladder_items(self) -> list[str]:
        return sorted({c["item_id"] for c in self.data["ladder"]})

    def item(self, item_id: str) -> dict:
        for i in self.data["items"]:
            if i["item_id"] == item_id:
                return i
        raise StudyError(f"Expected an item of the manifest but got {item_id!r}")

    def clip(self, item_id: str, name: str, gain_db: float | None = None) -> np.ndarray:
        """A clip as float64 at the serving rate (cached)."""
        key = (item_id, name, gain_db)
        if key not in self._cache:
            if name in ("ladder", "ladder_ref"):
                entry = next((c for c in self.data["ladder"] if c["item_id"] == item_id
                              and c["gain_db"] == gain_db), None)
                rel = entry and entry["ref" if name == "ladder_ref" else "probe"]
            else:
                rel = self.item(item_id)["clips"].get(name)
            if not rel:
                raise StudyError(f"Expected clip {name!r} of item {item_id!r} (gain {gain_db}) "
                                 f"in {self.root / 'manifest.json'} but the manifest has none")
            path = self.root / rel
            if not path.is_file():
                raise StudyError(f"Expected stimulus {path} but it is missing; run "
                                 "`seofp study prepare` again")
            self._cache[key] = sf.read(str(path), dtype="float64")[0]
        return self._cache[key]


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def load_manifest(root: Path, config_hash: str | None = None) -> Manifest:
    """Read and verify ``root/manifest.json`` (hash, clip files, and optionally the study hash)."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise StudyError(f"Expected prepared stimuli at {path} but there are none; run "
                         "`seofp study prepare STUDY_DIR` first")
    blob = json.loads(path.read_text())
    data, digest = blob["manifest"], blob["sha256"]
    if _digest(data) != digest:
        raise StudyError(f"Expected manifest hash {digest[:12]} in {path} but the content "
                         f"hashes to {_digest(data)[:12]}: the manifest was edited")
    if config_hash is not None and data["config_hash"] != config_hash:
        raise StudyError(f"Expected stimuli prepared from the current study.yaml "
                         f"({config_hash[:12]}) but {path} was made from "
                         f"{data['config_hash'][:12]}; run `seofp study prepare` again")
    missing = [f for f, _ in _clip_files(data) if not (Path(root) / f).is_file()]
    if missing:
        raise StudyError(f"Expected {len(missing)} more stimulus files under {root}, e.g. "
                         f"{missing[0]}; run `seofp study prepare` again")
    return Manifest(Path(root), data, digest)


def _clip_files(data: dict) -> list[tuple[str, str]]:
    out = [(rel, h) for i in data["items"] for rel, h in zip(i["clips"].values(),
                                                              i["sha256"].values(), strict=False)]
    out += [(c[k], c[f"sha256_{k}"]) for c in data["ladder"] for k in ("ref", "probe")]
    return out


def _select(study: StudyDefinition, base: dict, comp: dict) -> list[str]:
    sel = study.items
    ids = [i for i in sorted(base) if i in comp]
    if sel.snrs is not None:
        ids = [i for i in ids if float(base[i]["snr"]) in {float(s) for s in sel.snrs}]
    if sel.noises is not None:
        ids = [i for i in ids if base[i]["noise"] in sel.noises]
    if not ids:
        raise StudyError("Expected test items common to both runs (after the snrs/noises "
                         "filters) but found none")
    pool = item_pool([Item(i, base[i]["utterance"], float(base[i]["snr"])) for i in ids],
                     study.seed)
    return [it.item_id for it in pool[: sel.count or len(pool)]]


def prepare_study(study_dir: str | Path, out_dir: Path | None = None,
                  baseline_dir: Path | None = None, compressed_dir: Path | None = None) -> Manifest:
    """Draw, check, loudness-match and write the stimuli of a study; freeze the manifest."""
    study, config_hash = load_study(study_dir)
    # with a folder of clips the run id is only a label: nothing to look up in MLflow
    runs = {k: resolve_run(r, study.runs_experiment) if r and not d else r for k, r, d in (
        ("compressed", study.compressed_run, compressed_dir or study.compressed_dir),
        ("baseline", study.baseline_run, baseline_dir or study.baseline_dir))}
    if runs["baseline"] == CONTROL_REF and not baseline_dir:
        if compressed_dir or study.compressed_dir:
            raise StudyError("Expected compressed_run (a run id or latest:ROLE) with "
                             "baseline_run: control, but the compressed clips come from a "
                             "folder; name baseline_run (a run id) or baseline_dir instead")
        runs["baseline"] = control_of(runs["compressed"])
    bdir = Path(baseline_dir or study.baseline_dir or resolve_run_dir(runs["baseline"]))
    cdir = Path(compressed_dir or study.compressed_dir or resolve_run_dir(runs["compressed"]))
    base, comp = read_run_dir(bdir), read_run_dir(cdir)
    root = Path(out_dir) if out_dir is not None else prepared_dir(study.name)
    ids = _select(study, base, comp)
    if len(ids) < study.tests_per_listener:
        raise StudyError(f"Expected at least {study.tests_per_listener} test items (test trials "
                         f"per listener) common to both runs but found {len(ids)}; lower "
                         "trials.test_per_block or use a larger test set")
    data = build_stimuli(study, base, comp, ids, root)
    data.update(version=MANIFEST_VERSION, study=study.name, config_hash=config_hash,
                baseline={"run": runs["baseline"], "dir": str(bdir)},
                compressed={"run": runs["compressed"], "dir": str(cdir)})
    write_text_atomic(root / "manifest.json",  # never leave half a manifest
                      json.dumps({"manifest": data, "sha256": _digest(data)}, indent=1,
                                 sort_keys=True))
    manifest = load_manifest(root, config_hash)
    from seofp_lab.listening.protocol import build_schedule  # noqa: PLC0415

    for index in range(4):  # a design whose schedule cannot be built fails here, not at enrolment
        build_schedule(study, manifest.items, index, index, manifest.ladder_items)
    return manifest
