"""``seofp report [--experiment NAME | --sweep NAME | RUN_ID ...] [--study NAME] [--out PATH]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML report (+ CSV table) from MLflow runs",
        description="Compare runs in one HTML file (results table, per-SNR, size/quality and "
        "speed plots, audio examples, listening-study analysis) and write the table "
        "as CSV next to it.",
    )
    p.add_argument(
        "run_ids",
        nargs="*",
        metavar="RUN_ID",
        help="compare exactly these runs (full ids or unique prefixes)",
    )
    p.add_argument(
        "--experiment",
        default=None,
        help="compare the newest run of each variant of this MLflow experiment "
        "(default: the demo's experiment)",
    )
    p.add_argument(
        "--sweep",
        default=None,
        help="compare the runs of this sweep (tag seofp.sweep, e.g. paper_table), the newest "
        "per point; with the papers' models it adds the 'paper vs this reproduction' table",
    )
    p.add_argument(
        "--all-runs",
        action="store_true",
        help="with an experiment: every finished run, not only the newest per variant",
    )
    p.add_argument(
        "--study",
        default=None,
        help="listening study whose analysis to include (default: any analysis of "
        "the compared runs)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output .html file or folder (default: <workspace>/reports/<name>.html)",
    )
    p.add_argument("--title", default=None, help="page title")
    p.add_argument(
        "--audio-items",
        type=int,
        default=2,
        help="utterances with audio players (default 2; 0 for none)",
    )
    p.add_argument(
        "--audio-max-kb",
        type=int,
        default=400,
        help="cap per embedded WAV in KiB; longer clips keep their start (default 400)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.report.build import ReportError, build_report  # noqa: PLC0415

    if sum(bool(x) for x in (args.experiment, args.run_ids, args.sweep)) > 1:
        raise ReportError("Expected one of --experiment NAME, --sweep NAME or run ids but got "
                          "several")
    if args.audio_items < 0 or args.audio_max_kb <= 0:
        raise ReportError(
            f"Expected --audio-items >= 0 and --audio-max-kb > 0 but got "
            f"{args.audio_items} and {args.audio_max_kb}"
        )
    result = build_report(
        args.experiment,
        args.run_ids,
        study=args.study,
        out=args.out,
        title=args.title,
        audio_items=args.audio_items,
        audio_max_bytes=1024 * args.audio_max_kb,
        all_runs=args.all_runs,
        sweep=args.sweep,
    )
    if result.paper_markdown:
        print(result.paper_markdown)
        print(f"paper vs this reproduction as CSV: {result.paper_csv}")
    print(result.html)
    print(
        f"table as CSV: {result.csv} ({len(result.runs)} runs"
        + (f", {len(result.listening)} listening analysis" if result.listening else "")
        + ")"
    )
    if result.corpora_csv is not None:
        print(f"runs x corpora as CSV: {result.corpora_csv}")
    return 0
