"""The embedded and lab corpora: MANIFEST.tsv, speech/<speaker>/, noise/<type>/
(docs/data.md#embedded-corpus, docs/data.md#lab-corpus).

Embedded split (fixed here because its manifest has no ``split`` column): training speakers
ast_fr_f, ast_it_m, ast_ru_f; test speakers ast_en_f, lv_en_m; test noises rain and market (and
babble); machine and music train, with the synthetic types. The lab manifest adds a ``split``
column. Clips with ``use=babble`` never serve as targets.
"""

from __future__ import annotations

import csv
from pathlib import Path

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import NoiseRef, Utterance
from seofp_lab.data.loaders._layout import Parts, found, layout_error
from seofp_lab.workspace import workspace_dir

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded"
EMBEDDED_TEST_SPEAKERS = frozenset({"ast_en_f", "lv_en_m"})
EMBEDDED_TEST_NOISES = frozenset({"rain", "market"})
COLUMNS = ("file", "sha256", "duration_s", "kind", "label", "use")
SPLITS = ("train", "test")


def default_root(kind: str) -> Path:
    return EMBEDDED_DIR if kind == "embedded" else workspace_dir() / "corpora" / "lab"


def read_manifest(kind: str, root: Path) -> list[dict[str, str]]:
    path = root / "MANIFEST.tsv"
    hint = f"run `seofp data build {kind}`"
    if kind == "embedded":
        hint += " (maintainers) or reinstall seofp-lab"
    if not path.is_file():
        raise layout_error(kind, root, "MANIFEST.tsv, speech/<speaker>/*.flac, noise/<type>/*.flac",
                           found(root), hint)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    want = COLUMNS + (("split",) if kind == "lab" else ())
    have = tuple(rows[0].keys()) if rows else ()
    missing = [c for c in want if c not in have]
    if missing or not rows:
        raise layout_error(kind, root, f"MANIFEST.tsv columns {', '.join(want)} and rows",
                           f"columns {', '.join(have) or '(none)'}", hint)
    absent = [r["file"] for r in rows if not (root / r["file"]).is_file()]
    if absent:
        raise layout_error(kind, root, "every file of MANIFEST.tsv",
                           f"{len(absent)} missing: {', '.join(absent[:10])}", hint)
    return rows


def _split(kind: str, row: dict[str, str]) -> str:
    if kind == "lab":
        s = row["split"].strip()
        if row["use"] == "babble":
            return "train" if s == "train" else "test"
        if s not in SPLITS:
            raise layout_error(kind, Path(row["file"]), "split train or test in MANIFEST.tsv",
                               f"{s!r} for {row['file']}")
        return s
    if row["kind"] == "speech":
        test = row["label"] in EMBEDDED_TEST_SPEAKERS or row["use"] == "babble"
        return "test" if test else "train"
    return "test" if row["label"] in EMBEDDED_TEST_NOISES else "train"


def load(kind: str, root: Path | None, cfg: CorpusConfig, channel: int | None) -> Parts:
    root = Path(root).expanduser() if root is not None else default_root(kind)
    parts = Parts(babble_talkers=4 if kind == "embedded" else 6)
    for row in read_manifest(kind, root):
        path = root / row["file"]
        split = _split(kind, row)
        if row["kind"] == "speech":
            utt = Utterance(Path(row["file"]).stem, row["label"], path, channel)
            if row["use"] == "babble":
                parts.babble_pool.setdefault(split, {}).setdefault(row["label"], []).append(utt)
            elif row["use"] == "target":
                parts.utterances.setdefault(split, []).append(utt)
        elif row["kind"] == "noise":
            parts.noise_refs.setdefault(split, {}).setdefault(row["label"], []).append(
                NoiseRef(row["label"], path, channel=channel)
            )
    for split in SPLITS:
        if not parts.utterances.get(split):
            raise layout_error(kind, root, f"{split} target utterances in MANIFEST.tsv",
                               "none", f"run `seofp data build {kind}` again")
    return parts
