"""``seofp ui``: the MLflow UI on the workspace store (or on $MLFLOW_TRACKING_URI)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from seofp_lab import tracking


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
    print(f"MLflow UI on http://{args.host}:{args.port}  (store: {tracking.tracking_uri()})")
    return subprocess.call(cmd)
