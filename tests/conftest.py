"""Shared fixtures: every test writes under tmp_path, with its own workspace and MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace (corpora cache, MLflow store, runs) under tmp_path."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("SEOFP_WORKSPACE", str(ws))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return ws
