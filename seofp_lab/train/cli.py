"""``seofp train CONFIG [key=value ...]``.

A compressed variant fine-tuned from a baseline (``compression.init_from``) is trained with its
equal-budget fp32 control (``seofp_lab.train.control``): an existing control with the same recipe
is reused, otherwise it is trained first. ``--no-control`` skips it.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one experiment config (tracked in MLflow)",
                       description="Train one experiment; every run is an MLflow run. A "
                       "compressed variant fine-tuned from a baseline also gets its equal-budget "
                       "fp32 control (reused when one with the same recipe exists).")
    p.add_argument("config", nargs="?", default=None,
                   help="experiment YAML, e.g. configs/experiment/blstm_baseline.yaml")
    p.add_argument("--resume", metavar="RUN_ID", default=None,
                   help="continue a killed or failed run (id or unique prefix) from its last "
                   "epoch checkpoint, into the same MLflow run (docs/runs.md#resume)")
    p.add_argument("--state", metavar="RUN_ID", default=None,
                   help="print where a run stands: its status and, for a RUNNING run, whether "
                   "its process still lives (docs/runs.md#statuses)")
    p.add_argument("--abandon", metavar="RUN_ID", default=None,
                   help="close a RUNNING run whose process is gone (kill -9, power loss) as "
                   "KILLED instead of resuming it")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_epochs=3")
    p.add_argument("--evaluate", action="store_true", help="evaluate the test set afterwards")
    p.add_argument("--no-control", action="store_true",
                   help="do not train or reuse an equal-budget fp32 control for a fine-tuned "
                   "compressed variant (its deltas are then only against the baseline)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _evaluated(run_id: str) -> bool:
    """Whether the run's own test set was scored (``test_utterances`` is logged whatever the
    evaluation's metric list)."""
    from seofp_lab import tracking  # noqa: PLC0415

    return "test_utterances" in tracking.get_run(run_id).data.metrics


def run(args: argparse.Namespace) -> int:
    from seofp_lab.config import ConfigError, load_config  # noqa: PLC0415
    from seofp_lab.train.control import ensure_control, needs_control, with_control  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    progress = not args.no_progress
    if args.state is not None or args.abandon is not None:
        if args.config is not None or args.overrides or args.resume is not None:
            raise ConfigError("Expected --state RUN_ID or --abandon RUN_ID alone but also got "
                              f"{' '.join([args.config or '', *args.overrides])}"
                              + (f" --resume {args.resume}" if args.resume else ""))
        from seofp_lab.train.run import abandon_run, run_state  # noqa: PLC0415

        if args.abandon is not None:
            print(f"run {abandon_run(args.abandon)} is now KILLED")
        if args.state is not None:
            print(run_state(args.state))
        return 0
    if args.resume is not None:
        if args.config is not None or args.overrides:
            raise ConfigError("Expected --resume RUN_ID alone (the run's own config is used) "
                              f"but also got {' '.join([args.config or '', *args.overrides])}")
        from seofp_lab.train.run import resume_training  # noqa: PLC0415

        result = resume_training(args.resume, progress=progress)
        if result.rank:  # a DDP process of rank > 0: rank zero reports (docs/runs.md)
            return 0
        print(result)
        if args.evaluate:
            from seofp_lab.evaluate.run import evaluate, results_table  # noqa: PLC0415

            results_table({"enhanced": evaluate(result.run_id).metrics}).print()
        return 0
    if args.config is None:
        raise ConfigError("Expected an experiment config (or --resume RUN_ID)")
    cfg = load_config(args.config, args.overrides)
    if needs_control(cfg) and not args.no_control:
        control, trained = ensure_control(cfg, progress=progress)
        how = "trained now" if trained else "reused"
        print(f"equal-budget fp32 control: run {control} ({how})")
        if args.evaluate and not _evaluated(control):
            from seofp_lab.evaluate.run import evaluate  # noqa: PLC0415

            evaluate(control)
        cfg = with_control(cfg, control)
    result = train(cfg, progress=progress)
    if result.rank:  # a DDP process of rank > 0: rank zero reports (docs/runs.md)
        return 0
    print(result)
    if args.evaluate:
        from seofp_lab.evaluate.run import evaluate, results_table  # noqa: PLC0415

        results_table({"enhanced": evaluate(result.run_id).metrics}).print()
    return 0
