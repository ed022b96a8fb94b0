"""Read a run's artifacts: in place for a local store (even a moved one), else via MLflow.

A local store records absolute artifact URIs (``file:///old/workspace/mlartifacts/EXP/RUN/...``).
A workspace copied or moved elsewhere keeps those URIs, so a missing local path is looked up again
under the current workspace's artifact root before MLflow is asked. Nothing here writes to the
store; downloads (server stores only) go to a temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from seofp_lab import tracking
from seofp_lab.report.runs import RunRecord


def _local_root(run: RunRecord) -> Path | None:
    """The run's artifact folder on this machine, or None when the store is remote."""
    uri = urlparse(run.artifact_uri)
    if uri.scheme not in ("file", ""):
        return None
    path = Path(unquote(uri.path))
    if path.is_dir():
        return path
    root = tracking.artifact_root()
    parts = path.parts
    if root is not None and len(parts) >= 3:  # .../<experiment>/<run id>/artifacts
        moved = root.joinpath(*parts[-3:])
        if moved.is_dir():
            return moved
    return path if path.parent.is_dir() else None


class Artifacts:
    """Listing and reading one run's artifacts; a missing artifact is ``None``/``[]``, not an
    error (a report shows what exists)."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.local = _local_root(run)
        self._tmp: Path | None = None

    def list(self, path: str = "") -> list[str]:
        """Artifact paths directly under ``path`` (files and folders), sorted."""
        if self.local is not None:
            folder = self.local / path
            if not folder.is_dir():
                return []
            return sorted(str(Path(path) / p.name) if path else p.name for p in folder.iterdir())
        try:
            return sorted(f.path for f in tracking.client().list_artifacts(self.run.run_id, path))
        except Exception:  # noqa: BLE001 - a server without this artifact: nothing to show
            return []

    def read(self, path: str) -> bytes | None:
        """One artifact's bytes, or None when it does not exist."""
        if self.local is not None:
            file = self.local / path
            return file.read_bytes() if file.is_file() else None
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="seofp-report-"))
        try:
            local = tracking.client().download_artifacts(self.run.run_id, path, str(self._tmp))
        except Exception:  # noqa: BLE001 - absent on the server
            return None
        file = Path(local)
        return file.read_bytes() if file.is_file() else None
