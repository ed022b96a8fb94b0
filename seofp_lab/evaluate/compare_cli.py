"""``seofp compare RUN_A RUN_B [--margin stoi=0.02 ...] [--unit utterance|speaker|mixture]
[--no-log]``: paired per-utterance comparison of two evaluated runs (B - A), logged to RUN_B."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="paired per-utterance comparison of two evaluated runs",
        description="Differences B - A per test mixture: mean, median, a bootstrap CI over "
        "utterances (or talkers), Wilcoxon and t-test p-values on one mean per unit (Holm across "
        "metrics), d_z, a mixed-model estimate, the counts behind each CI, the non-inferiority "
        "verdict and the mean difference per SNR. Both runs need `seofp evaluate` on the same "
        "test set. docs/statistics.md explains the methods.",
    )
    p.add_argument("run_a", help="reference run id (usually the fp32 baseline); a unique prefix "
                   "works")
    p.add_argument("run_b", help="compared run id (e.g. the s1e5 run); results are logged here")
    p.add_argument("--margin", action="append", default=[], metavar="METRIC=VALUE",
                   help="non-inferiority margin, repeatable (defaults: pesq_wb=0.05 "
                   "pesq_nb=0.05 stoi=0.01 estoi=0.01 si_sdr=0.5)")
    p.add_argument("--resamples", type=int, default=9999, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--unit", choices=["utterance", "speaker", "mixture"], default="utterance",
                   help="the independent unit resampled and tested: utterance (default; all "
                   "mixtures of an utterance together), speaker (talkers; needs >= 10 for a "
                   "verdict) or mixture (every mixture independent: too narrow, for comparison "
                   "only)")
    p.add_argument("--no-log", action="store_true", help="print only; log nothing to RUN_B")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.evaluate.paired import PairingError, parse_margins  # noqa: PLC0415
    from seofp_lab.evaluate.paired_runs import (  # noqa: PLC0415
        compare_runs,
        log_comparison,
        print_comparison,
    )

    margins = parse_margins(args.margin)  # bad syntax fails before any store access
    if args.resamples < 100:
        raise PairingError(f"Expected --resamples >= 100 but got {args.resamples}")
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    run_a, run_b = resolve_run_id(args.run_a), resolve_run_id(args.run_b)
    cmp = compare_runs(run_a, run_b, margins, n_resamples=args.resamples, seed=args.seed,
                       unit=args.unit)
    print_comparison(cmp)
    if not args.no_log:
        log_comparison(cmp, run_b)
        print(f"logged paired_* metrics, evaluation/paired.csv and evaluation/paired.png to "
              f"run {run_b}")
    return 0
