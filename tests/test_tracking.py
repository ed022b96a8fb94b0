"""The MLflow schema helpers: run ids by prefix, the code commit on every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from seofp_lab import tracking
from seofp_lab.errors import TrackingError


def _run(name: str) -> str:
    with tracking.start_run("prefix-test", run_name=name) as run_id:
        return run_id


def test_run_ids_resolve_from_unique_prefixes(workspace: Path) -> None:
    ids = [_run("first")]
    while not any(i[0] == ids[0][0] for i in ids[1:]):  # until two share the first character
        ids.append(_run(f"run{len(ids)}"))
    other = next(i for i in ids[1:] if i[0] == ids[0][0])
    assert tracking.resolve_run_id(ids[0]) == ids[0]  # a full id
    common = next(k for k in range(1, 33) if ids[0][:k] != other[:k])
    assert tracking.resolve_run_id(ids[0][:common]) == ids[0]  # the shortest unique prefix
    with pytest.raises(TrackingError, match="matches 2"):
        tracking.resolve_run_id(ids[0][: common - 1])
    # the message lists the newest runs (at most 8): the last one created is among them
    with pytest.raises(TrackingError, match=rf"found no run 'zz'.*run{len(ids) - 1}\b"):
        tracking.resolve_run_id("zz")


def test_runs_record_the_code_commit(workspace: Path) -> None:
    run_id = _run("tagged")
    commit = tracking.get_run(run_id).data.tags.get("mlflow.source.git.commit")
    assert commit == tracking.code_commit()
    if commit is not None:  # inside a git checkout: 40 hex digits, maybe +dirty
        assert len(commit.removesuffix("+dirty")) == 40
