"""``seofp ui``: the MLflow UI on the workspace store (or on $MLFLOW_TRACKING_URI), pointed at the
runs table (docs/mlflow.md#the-ui-on-the-runs)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from seofp_lab import tracking
from seofp_lab.ui_view import ensure_view, runs_url


def newest_experiments(limit: int = 3) -> list[tuple[str, str]]:
    """(name, id) of the experiments with the newest runs, newest first (none: [])."""
    try:
        c = tracking.client()
        exps = {e.experiment_id: e.name for e in c.search_experiments()}
        runs = c.search_runs(list(exps), max_results=200,
                             order_by=["attributes.start_time DESC"]) if exps else []
    except Exception:  # an unreachable server: the UI command itself will say so
        return []
    seen: dict[str, str] = {}
    for r in runs:
        seen.setdefault(r.info.experiment_id, exps[r.info.experiment_id])
    newest = [(name, eid) for eid, name in list(seen.items())[:limit]]
    for _name, eid in newest:  # experiments made before the view existed get it now
        ensure_view(c, eid)
    return newest


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="open the MLflow UI on the workspace store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cmd = tracking.ui_command(args.host, args.port)
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if exe is None:
        print("seofp ui: error: the mlflow executable is not installed", file=sys.stderr)
        return 2
    cmd[0] = exe
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {base}  (store: {tracking.tracking_uri()})")
    for name, eid in newest_experiments():
        print(f"  runs of {name}: {runs_url(base, eid)}")
    env = dict(os.environ)  # the server starts uvicorn by name: the venv's bin first on PATH
    env["PATH"] = os.path.dirname(exe) + os.pathsep + env.get("PATH", "")
    return subprocess.call(cmd, env=env)
