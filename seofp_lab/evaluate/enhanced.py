"""Where a run's enhanced test set lives: ``<workspace>/enhanced/<run_id>[-<engine>]/``, and
``<workspace>/enhanced/<run_id>[-<engine>]@<corpus>/`` for another corpus's test set
(``seofp evaluate RUN --corpus``).

The folder holds one float32 WAV per test item and ``manifest.csv`` with the columns
``id, speaker, noise, snr, noisy, clean, enhanced`` (absolute paths). Listening studies read it.

On a shared tracking server (docs/team.md) evaluation also logs the folder as the run's
``enhanced/<folder name>/`` artifact, and :func:`enhanced_dir` fetches it into this workspace
when it is not here: another machine's workspace is never assumed.
"""

from __future__ import annotations

import csv
import os
import shutil
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
        fetch_enhanced(run_id, path)
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
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:  # unique: processes race
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS} for r in rows)
    return path


ARTIFACT_DIR = "enhanced"  # the run's artifact folder: enhanced/<folder name>/


def log_enhanced(folder: Path, run_id: str) -> bool:
    """Log an enhanced folder to the active run when the store is shared (a tracking server, whose
    artifacts other workspaces read); a local store's folder is already where readers look.

    Returns whether it was logged."""
    from seofp_lab import tracking  # noqa: PLC0415

    if tracking.artifact_root() is not None:
        return False
    tracking.client().log_artifacts(run_id, str(folder), f"{ARTIFACT_DIR}/{folder.name}")
    return True


def fetch_enhanced(run_id: str, path: Path) -> bool:
    """Download a run's ``enhanced/<path.name>/`` artifact to ``path`` (another workspace
    evaluated it); the manifest's paths are rewritten to this workspace: the enhanced WAVs to the
    download, noisy and clean to this workspace's build of the run's own test set (left empty for
    another corpus's set: the listening study needs only the enhanced audio).

    Returns False when the run has no such artifact (nothing is written then)."""
    from seofp_lab import tracking  # noqa: PLC0415

    client = tracking.client()
    try:
        listed = client.list_artifacts(run_id, f"{ARTIFACT_DIR}/{path.name}")
    except Exception:  # an unknown run or store: the caller's error says what to run
        return False
    if not any(a.path.endswith("/manifest.csv") for a in listed):
        return False
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    got = Path(tracking.download_artifact(run_id, f"{ARTIFACT_DIR}/{path.name}", tmp))
    rows = read_manifest(got)
    local = _test_set_paths(run_id) if "@" not in path.name else {}
    for row in rows:
        row["enhanced"] = str(path / Path(row["enhanced"]).name)
        for kind in ("noisy", "clean"):
            if not Path(row[kind]).is_file():
                row[kind] = local.get(row["id"], {}).get(kind, "")
    write_manifest(got, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        got.replace(path)
    except OSError:  # a concurrent fetch (or evaluation) got there first
        if not (path / "manifest.csv").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _test_set_paths(run_id: str) -> dict[str, dict[str, str]]:
    """Item id -> local noisy and clean paths of the run's own test set (built if needed)."""
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.config import ExperimentConfig  # noqa: PLC0415
    from seofp_lab.data.testset import prepare_test_set  # noqa: PLC0415

    cfg = ExperimentConfig.model_validate(tracking.run_config_dict(run_id))
    test_set = prepare_test_set(cfg.corpus)
    return {it.id: {"noisy": str(it.noisy_path), "clean": str(it.clean_path)}
            for it in test_set.items}
