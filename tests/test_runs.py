"""Run lifecycle (docs/runs.md): who sets a run's status, signals, checkpoints, the divergence
guard, a store several processes create at once, a workspace that can be copied or moved."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seofp_lab import tracking

ROOT = Path(__file__).resolve().parent.parent

_RACER = """
import sys, time
from pathlib import Path
from seofp_lab import tracking
import mlflow.store.tracking.sqlalchemy_store  # the slow imports before the start line
Path(sys.argv[1], "ready" + sys.argv[2]).touch()
while not Path(sys.argv[1], "go").exists():
    time.sleep(0.005)
with tracking.start_run("race", "racer" + sys.argv[2]) as run_id:
    tracking.log_metrics({"x": 1.0})
print(run_id)
"""


def _env(ws: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(SEOFP_WORKSPACE=str(ws), PYTHONPATH=str(ROOT))
    return env


def test_three_processes_create_one_new_store_at_once(tmp_path: Path) -> None:
    ws, flags = tmp_path / "ws", tmp_path / "flags"
    flags.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(flags), str(i)], env=_env(ws),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    deadline = time.monotonic() + 120
    while len(list(flags.glob("ready*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    (flags / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    os.environ["SEOFP_WORKSPACE"] = str(ws)
    try:
        runs = tracking.find_runs("race")
    finally:
        del os.environ["SEOFP_WORKSPACE"]
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
