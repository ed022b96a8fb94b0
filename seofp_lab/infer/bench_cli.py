"""``seofp bench RUN_ID``: latency and real-time factor, PyTorch and the C kernels side by side."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="latency and real-time factor, side by side")
    p.add_argument("run_id", help="MLflow run id (or a unique prefix) of a trained model")
    p.add_argument("--seconds", type=float, default=4.0, help="utterance length (s)")
    p.add_argument("--samples", type=int, default=31, help="timed samples per contender (>= 31)")
    p.add_argument("--kernel", choices=["intadd", "decode", "fp32"], default="intadd",
                   help="the engine kernel whose numbers are logged unprefixed")
    p.add_argument("--no-log", action="store_true", help="print only, log nothing to the run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.infer.bench import bench_run  # noqa: PLC0415
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    bench_run(resolve_run_id(args.run_id), args.seconds, args.samples, args.kernel,
              log=not args.no_log)
    return 0
