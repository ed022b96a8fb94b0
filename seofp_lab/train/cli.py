"""``seofp train CONFIG [key=value ...]``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one experiment config (tracked in MLflow)",
                       description="Train one experiment; every run is an MLflow run.")
    p.add_argument("config", help="experiment YAML, e.g. configs/experiment/blstm_baseline.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_epochs=3")
    p.add_argument("--evaluate", action="store_true", help="evaluate the test set afterwards")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.config import load_config  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, progress=not args.no_progress)
    print(result)
    if args.evaluate:
        from seofp_lab.evaluate.run import evaluate, results_table  # noqa: PLC0415

        results_table({"enhanced": evaluate(result.run_id).metrics}).print()
    return 0
