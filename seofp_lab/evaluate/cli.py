"""``seofp evaluate RUN_ID [--engine c] [--metrics pesq_wb,dnsmos_ovrl,...] [--corpus CONFIG
[KEY=VALUE ...] [--corpus-name L]]``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="enhance the test set with a run's model and score it",
        description="Enhance a test set with a run's model, score it and log the scores to the "
        "run. By default the run's own corpus (plain metric names); with --corpus any corpus's "
        "test set, test-only folders included, logged as <corpus>/pesq_wb etc. and under "
        "evaluation/<corpus>/ (docs/corpora.md).",
    )
    p.add_argument("run_id", help="MLflow run id (or a unique prefix) of a training run")
    p.add_argument(
        "--corpus",
        nargs="+",
        default=None,
        metavar=("CONFIG", "KEY=VALUE"),
        help="score this corpus's test set: a corpus YAML (configs/corpus/*.yaml), a name "
        "there (voicebank_demand) or an experiment YAML, then corpus overrides such as "
        "corpus.root=/data/VoiceBank-DEMAND; default: the run's own corpus",
    )
    p.add_argument(
        "--corpus-name",
        default=None,
        metavar="LABEL",
        help="label of that corpus in metric names and artifact folders (default: the "
        "config's name)",
    )
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
    p.add_argument("--max-utterances", type=_positive, default=None, metavar="N",
                   help="score only the first N test items (N >= 1); fewer than the run's own "
                   "evaluation are logged as subset/<metric>, never as its test-set scores")
    p.add_argument("--metrics", default=None, metavar="NAME,NAME",
                   help="comma-separated metric names (docs/metrics.md), e.g. adding DNSMOS: "
                   "pesq_wb,stoi,csig,cbak,covl,dnsmos_sig,dnsmos_bak,dnsmos_ovrl; "
                   "default: the run's evaluation.metrics")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 but got {text!r}")
    return n


def run(args: argparse.Namespace) -> int:
    from seofp_lab.config import ConfigError, load_corpus_config  # noqa: PLC0415
    from seofp_lab.evaluate.metrics import check_metrics  # noqa: PLC0415
    from seofp_lab.evaluate.run import evaluate, results_table  # noqa: PLC0415
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    metrics = None
    if args.metrics is not None:  # checked here too: before the store is touched
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        check_metrics(metrics)
    if args.corpus_name and args.corpus is None:
        raise ConfigError(f"Expected --corpus CONFIG with --corpus-name but got "
                          f"--corpus-name {args.corpus_name} alone")
    corpus = None
    if args.corpus is not None:
        spec, *overrides = args.corpus
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"Expected KEY=VALUE corpus overrides after --corpus {spec} but "
                              f"got {bad[0]!r} (the run id goes before --corpus)")
        corpus = load_corpus_config(spec, overrides)
    args.run_id = resolve_run_id(args.run_id)  # a full id or a unique prefix
    res = evaluate(
        args.run_id,
        engine=args.engine,
        kernel=args.kernel,
        workers=args.workers,
        max_utterances=args.max_utterances,
        corpus=corpus,
        corpus_name=args.corpus_name,
        metrics=metrics,
    )
    where = "" if res.own_corpus else f" (logged as {res.corpus}/...)"
    results_table({"enhanced": res.metrics},
                  title=f"Test set of {res.corpus}, run {args.run_id}{where}").print()
    return 0
