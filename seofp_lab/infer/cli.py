"""``seofp export RUN_ID [--out PATH]``: write a tracked run's model as one .seofp file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a run's model as one .seofp file")
    p.add_argument("run_id", help="MLflow run id (or a unique prefix) of a trained model")
    p.add_argument("--out", type=Path, default=None,
                   help="output path (default: <workspace>/exports/<run_id>.seofp)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.infer.export import export_run  # noqa: PLC0415
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    path = export_run(resolve_run_id(args.run_id), args.out)
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0
