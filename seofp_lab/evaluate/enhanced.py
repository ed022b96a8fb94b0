"""Where a run's enhanced test set lives: ``<workspace>/enhanced/<run_id>[-<engine>]/``, and
``<workspace>/enhanced/<run_id>[-<engine>]@<corpus>/`` for another corpus's test set
(``seofp evaluate RUN --corpus``).

The folder holds one float32 WAV per test item and ``manifest.csv`` with the columns
``id, speaker, noise, snr, noisy, clean, enhanced`` (absolute paths). Listening studies read it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from seofp_lab.errors import SeofpError
from seofp_lab.fsutil import atomic_path
from seofp_lab.workspace import workspace_dir

COLUMNS = ("id", "speaker", "noise", "snr", "noisy", "clean", "enhanced")


def enhanced_dir(
    run_id: str, engine: str = "torch", must_exist: bool = True, corpus: str | None = None
) -> Path:
    """The enhanced test set of a run; with ``must_exist``, a clear error if not evaluated yet.

    ``corpus``: the label of another corpus's test set (None: the run's own)."""
    name = run_id if engine == "torch" else f"{run_id}-{engine}"
    path = workspace_dir() / "enhanced" / (name if corpus is None else f"{name}@{corpus}")
    if must_exist and not (path / "manifest.csv").is_file():
        how = f"seofp evaluate {run_id}" + ("" if corpus is None else f" --corpus CONFIG "
                                              f"--corpus-name {corpus}")
        raise SeofpError(f"Expected an enhanced test set at {path} but found none; run `{how}`")
    return path


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """Rows of an enhanced folder's manifest.csv, checked for the expected columns."""
    path = folder / "manifest.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and set(COLUMNS) - set(rows[0]):
        raise SeofpError(f"{path}: expected columns {COLUMNS} but got {tuple(rows[0])}")
    return rows


def write_manifest(folder: Path, rows: list[dict[str, object]]) -> Path:
    path = folder / "manifest.csv"
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS} for r in rows)
    return path
