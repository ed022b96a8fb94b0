"""``seofp compare RUN_A RUN_B [--corpus LABEL] [--unit utterance|speaker|mixture] [--margin
stoi=0.02 ...] [--no-log]``: paired per-mixture comparison of two evaluated runs (B - A), logged to
RUN_B, then their runs x corpora table of test-set means.

``seofp compare RUN`` compares a run with its equal-budget control (``seofp.control_run``) and
its baseline (``seofp.baseline_run``), as evaluation does. With RUN_A one of those two, the
results take the names evaluation gives them (``baseline_paired_*`` for the baseline of a run with a
control); any other RUN_A is logged as ``paired_*``."""

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
    p.add_argument("run_a", help="reference run id (the fp32 control or baseline); a unique "
                   "prefix works. Given alone: the compared run, against its control and baseline")
    p.add_argument("run_b", nargs="?", default=None,
                   help="compared run id (e.g. the s1e5 run); results are logged here")
    p.add_argument("--margin", action="append", default=[], metavar="METRIC=VALUE",
                   help="non-inferiority margin, repeatable (defaults: pesq_wb=0.05 "
                   "pesq_nb=0.05 stoi=0.01 estoi=0.01 si_sdr=0.5)")
    p.add_argument("--resamples", type=int, default=9999, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--corpus", default=None, metavar="LABEL",
                   help="pair on this corpus's test set (a label of `seofp evaluate RUN "
                   "--corpus`, or the runs' own corpus name); default: the runs' own test set")
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
        reference_runs,
    )

    margins = parse_margins(args.margin)  # bad syntax fails before any store access
    if args.resamples < 100:
        raise PairingError(f"Expected --resamples >= 100 but got {args.resamples}")
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    if args.run_b is None:
        run_b = resolve_run_id(args.run_a)
        pairs = list(reference_runs(run_b))
        if not pairs:
            raise PairingError(f"Expected run {run_b} to have a seofp.control_run or "
                               "seofp.baseline_run tag but it has neither; name the reference: "
                               f"seofp compare REFERENCE_RUN {run_b}")
    else:
        run_b, run_a = resolve_run_id(args.run_b), resolve_run_id(args.run_a)
        # B's own control or baseline keeps the metric names evaluation gives it (a controlled
        # run's baseline: baseline_paired_*), so it does not replace the control's paired_*
        # Any other reference of a run that has one goes under ref_<id8>_paired_*, so it never
        # replaces the comparison with its control or baseline.
        refs = reference_runs(run_b)
        pairs = [p for p in refs if p[1] == run_a][:1] or [
            ("reference", run_a, f"ref_{run_a[:8]}_" if refs else "")]
    from seofp_lab.evaluate.corpora import is_own  # noqa: PLC0415
    from seofp_lab.tracking import corpus_prefix, get_run  # noqa: PLC0415

    own = args.corpus is None or is_own(get_run(run_b).data.tags, args.corpus)
    where = corpus_prefix(None if own else args.corpus)
    for label, run_a, extra in pairs:
        cmp = compare_runs(run_a, run_b, margins, n_resamples=args.resamples, seed=args.seed,
                           corpus=args.corpus, unit=args.unit)
        print(f"against its {label} {run_a}:")
        print_comparison(cmp)
        if not args.no_log:
            prefix = where + extra
            log_comparison(cmp, run_b, prefix)
            print(f"logged {prefix}paired_* metrics, evaluation/{prefix}paired.csv and "
                  f"evaluation/{prefix}paired.png to run {run_b}")
    _print_corpora(*dict.fromkeys(ref for _, ref, _ in pairs), run_b)  # control, then baseline
    return 0


def _print_corpora(*run_ids: str) -> None:
    """The runs x corpora table of test-set means (every corpus either run was scored on)."""
    from seofp_lab.console import console  # noqa: PLC0415
    from seofp_lab.evaluate.corpora import corpus_table, rich_table  # noqa: PLC0415
    from seofp_lab.tracking import get_run  # noqa: PLC0415

    runs = [get_run(r) for r in run_ids]
    table = corpus_table([(r.info.run_name or r.info.run_id[:8], r.info.run_id,
                           r.data.metrics, r.data.tags) for r in runs])
    if not table.corpora:
        return
    out = console()
    out.print(rich_table(table))
    for note in table.notes:
        out.print(f"[yellow]{note}[/yellow]", soft_wrap=True, highlight=False)
