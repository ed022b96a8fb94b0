"""``seofp ui``: the MLflow UI on the workspace store (or on $MLFLOW_TRACKING_URI), pointed at the
runs table (docs/mlflow.md#the-ui-on-the-runs)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from seofp_lab import tracking

# MLflow 3's UI opens an experiment on its GenAI overview unless the workflow is "machine
# learning": the URL parameter selects it (and the experiment-kind tag, for UIs that read it)
WORKFLOW_QUERY = "?workflowType=machine_learning"


def runs_url(base: str, experiment_id: str) -> str:
    """The runs table of one experiment in the MLflow UI at ``base``.

    >>> runs_url("http://127.0.0.1:5000", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning'
    """
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs{WORKFLOW_QUERY}"


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
    return [(name, eid) for eid, name in list(seen.items())[:limit]]


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
