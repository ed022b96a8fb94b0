"""The workspace: corpora cache, MLflow store, exported models, study databases, reports.

``./workspace`` by default; ``SEOFP_WORKSPACE`` moves it. Nothing here creates files until asked.
"""

from __future__ import annotations

import os
from pathlib import Path


def workspace_dir(create: bool = True) -> Path:
    """The workspace root (``$SEOFP_WORKSPACE`` or ``./workspace``), made absolute."""
    root = Path(os.environ.get("SEOFP_WORKSPACE", "workspace")).expanduser().resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def workspace_path(*parts: str, create_parent: bool = True) -> Path:
    """A path inside the workspace; its parent folder is created."""
    path = workspace_dir().joinpath(*parts)
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path
