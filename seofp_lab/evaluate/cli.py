"""``seofp evaluate RUN_ID [--engine c] [--metrics pesq_wb,dnsmos_ovrl,...]``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="enhance the test set with a run's model and score it")
    p.add_argument("run_id", help="MLflow run id (or a unique prefix) of a training run")
    p.add_argument(
        "--engine",
        choices=["torch", "c"],
        default=None,
        help="enhance with PyTorch or with the C engine (exports the model first); "
        "default: the run's evaluation.engine",
    )
    p.add_argument("--kernel", choices=["intadd", "decode", "fp32"], default=None,
                   help="C engine kernel; default: the run's evaluation.kernel")
    p.add_argument("--workers", type=int, default=None, help="scoring processes (default: cores)")
    p.add_argument("--max-utterances", type=int, default=None)
    p.add_argument("--metrics", default=None, metavar="NAME,NAME",
                   help="comma-separated metric names (docs/metrics.md), e.g. adding DNSMOS: "
                   "pesq_wb,stoi,csig,cbak,covl,dnsmos_sig,dnsmos_bak,dnsmos_ovrl; "
                   "default: the run's evaluation.metrics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.errors import SeofpError  # noqa: PLC0415
    from seofp_lab.evaluate.metrics import METRICS  # noqa: PLC0415
    from seofp_lab.evaluate.run import evaluate, results_table  # noqa: PLC0415
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise SeofpError(f"Expected --metrics from {', '.join(METRICS)} but got "
                             f"{args.metrics!r}")
        if any(m.startswith("dnsmos_") for m in metrics):  # before the test set is enhanced
            from seofp_lab.evaluate.dnsmos import check_available  # noqa: PLC0415

            check_available()
    args.run_id = resolve_run_id(args.run_id)  # a full id or a unique prefix
    res = evaluate(
        args.run_id,
        engine=args.engine,
        kernel=args.kernel,
        workers=args.workers,
        max_utterances=args.max_utterances,
        metrics=metrics,
    )
    results_table({"enhanced": res.metrics}, title=f"Test set, run {args.run_id}").print()
    return 0
