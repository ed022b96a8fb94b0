"""``seofp demo``: the project's main job on the embedded corpus.

Trains the small BLSTM baseline for a fixed budget in epochs, fine-tunes its SEOFP variants from
it together with their equal-budget fp32 control (the same fine-tuning without compression),
evaluates all of them on the fixed test set, and prints one comparison table (noisy input vs each
model: PESQ, STOI, SI-SDR, size, compression), each variant's paired deltas against its control
and against the baseline (clustered CIs with the counts behind them), the command that opens the
MLflow UI, and writes the runs' HTML report (``seofp report``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from rich.table import Table

from seofp_lab.config import CONFIGS_DIR, load_config
from seofp_lab.console import console as make_console


@dataclass(frozen=True)
class Variant:
    label: str
    config: str  # experiment YAML under configs/experiment/
    overrides: tuple[str, ...] = ()
    from_baseline: bool = False  # fine-tune from the baseline's checkpoint, with a control


VARIANTS = (
    Variant("fp32 baseline", "demo_baseline"),
    Variant("SEOFP s1e5", "demo_s1e5", from_baseline=True),
    Variant("pruned 50% + s1e5", "demo_s1e5_pruned50", from_baseline=True),
)
CONTROL_LABEL = "fp32 control"


@dataclass
class DemoResult:
    runs: dict[str, str] = field(default_factory=dict)  # label -> run id
    paired: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> paired_* metrics
    controls: dict[str, str] = field(default_factory=dict)  # variant label -> its control run
    cut: dict[str, str] = field(default_factory=dict)  # label -> why max_minutes ended it early
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    minutes: float = 0.0


def run_demo(
    epochs: int | None = None,
    finetune_epochs: int | None = None,
    max_utterances: int | None = None,
    extra_overrides: tuple[str, ...] = (),
    progress: bool = True,
    variants: tuple[Variant, ...] = VARIANTS,
    bench: bool = True,
) -> DemoResult:
    """Train, export, evaluate and benchmark the baseline, the control and every variant.

    Args:
        epochs: the baseline's budget (default: its config, 40 epochs).
        finetune_epochs: the budget of every fine-tuned variant and of their control (default:
            the configs, 10 epochs).
        bench: benchmark the C engine of compressed runs (``--quick`` skips it).
    """
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.evaluate.run import evaluate  # noqa: PLC0415
    from seofp_lab.train.control import ensure_control, needs_control, with_control  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    console = make_console()
    t0 = time.perf_counter()
    result = DemoResult()
    baseline_run: str | None = None
    for i, v in enumerate(variants):
        overrides = list(v.overrides) + list(extra_overrides)
        budget = epochs if i == 0 else finetune_epochs
        if budget is not None:
            overrides.append(f"train.max_epochs={budget}")
        if max_utterances is not None:  # the runs' own evaluation, so their headline scores
            overrides.append(f"evaluation.max_utterances={max_utterances}")
        if v.from_baseline and baseline_run:
            overrides += [
                f"compression.init_from={baseline_run}",
                f"tracking.baseline_run={baseline_run}",
            ]
        cfg = load_config(CONFIGS_DIR / "experiment" / f"{v.config}.yaml", overrides)
        if needs_control(cfg):
            console.rule(f"[bold]{CONTROL_LABEL}[/bold] for {v.label}: the same fine-tuning "
                         f"without compression ({cfg.train.max_epochs} epochs)")
            control, trained_now = ensure_control(cfg, progress=progress)
            if trained_now:
                _finish(result, CONTROL_LABEL, control, evaluate(control).metrics, compressed=False,
                        bench=bench)
            else:
                console.print(f"control {control} reused (same start and recipe)")
            cfg = with_control(cfg, control)
            result.controls[v.label] = control
        console.rule(f"[bold]{v.label}[/bold]: training ({cfg.train.max_epochs} epochs)")
        trained = train(cfg, progress=progress)
        if i == 0:
            baseline_run = trained.run_id
        console.print(f"run {trained.run_id}: {trained.metrics['epochs']:.0f} epochs, "
                      f"{trained.metrics['steps']:.0f} steps, {trained.minutes:.1f} min")
        console.rule(f"[bold]{v.label}[/bold]: evaluating the test set")
        ev = evaluate(trained.run_id)
        _finish(result, v.label, trained.run_id, ev.metrics,
                compressed=bool(cfg.compression.format), bench=bench)
        paired = {k: val for k, val in tracking.get_run(trained.run_id).data.metrics.items()
                  if k.startswith(("paired_", "baseline_paired_"))}  # own test set, PyTorch
        if paired:
            result.paired[v.label] = paired
    result.minutes = (time.perf_counter() - t0) / 60
    return result


def _finish(result: DemoResult, label: str, run_id: str, ev: dict[str, float],
            compressed: bool, bench: bool = True) -> None:
    """Export (exact size) and, for SEOFP runs, benchmark the C engine as a sweep point does
    (``sweep_run.finish_run``), then keep the row's logged metrics."""
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.train.sweep_run import finish_run  # noqa: PLC0415

    finish_run(run_id, ["export", "bench"] if compressed and bench else ["export"],
               bench_seconds=2.0,
               bench_samples=31)
    run = tracking.get_run(run_id)
    result.runs[label] = run_id
    result.metrics[label] = {**run.data.metrics, **ev}
    if cut := run.data.tags.get(tracking.TAG_BUDGET_CUT):
        result.cut[label] = cut


def print_summary(result: DemoResult) -> None:
    from seofp_lab.evaluate.run import results_table  # noqa: PLC0415
    from seofp_lab.tracking import tracking_uri  # noqa: PLC0415

    extra = [
        k
        for k in ("size_bytes", "compression_pct", "bits_per_weight", "speedup_vs_fp32",
                  "speedup_vs_ort")
        if any(k in m for m in result.metrics.values())
    ]
    results_table(result.metrics, extra=extra, title="seofp demo: embedded test set").print()
    console = make_console()
    if result.paired:
        console.print(paired_summary(result))
    for label, why in result.cut.items():
        console.print(f"[yellow]{label}: {why}; its comparisons are not at equal budget (raise "
                      "train.max_minutes, the safety cap, on a slow machine)[/yellow]")
    first = next(iter(result.metrics.values()))
    gains = {
        k: first.get(k, float("nan")) - first.get(f"noisy_{k}", float("nan"))
        for k in ("pesq_wb", "stoi", "si_sdr")
    }
    console.print("baseline vs noisy: " + ", ".join(f"{k} {v:+.3f}" for k, v in gains.items()))
    console.print(
        f"finished in {result.minutes:.1f} min; runs: "
        + ", ".join(f"{k}={v}" for k, v in result.runs.items())
    )
    console.print(f"tracking store: {tracking_uri()}")
    console.print(
        "browse and compare the runs:  [bold]seofp ui[/bold]  (or `make ui`), then open the "
        "runs-table address it prints (docs/mlflow.md)"
    )


PAIRED_SHOWN = (("pesq_wb", "PESQ-wb", 3), ("stoi", "STOI", 4), ("si_sdr", "SI-SDR dB", 2))
COUNTS = ("mixtures", "utterances", "talkers", "noise_clips")
COUNT_NAMES = {"mixtures": "mixtures", "utterances": "utterances", "talkers": "talkers",
               "noise_clips": "noise recordings"}


def _delta(m: dict[str, float], prefix: str, metric: str, digits: int) -> str:
    """``+0.012 [−0.003, +0.027] non-inferior`` from the logged ``paired_*`` metrics."""
    from seofp_lab.evaluate.paired import DEFAULT_MARGINS, verdict  # noqa: PLC0415

    key = f"{prefix}paired_{metric}"
    if f"{key}_delta" not in m:
        return "–"
    text = f"{m[f'{key}_delta']:+.{digits}f}"
    if f"{key}_ci_low" in m and f"{key}_ci_high" in m:
        low, high = m[f"{key}_ci_low"], m[f"{key}_ci_high"]
        units = m.get(f"{key}_n_units")
        text += f" [{low:+.{digits}f}, {high:+.{digits}f}] " + verdict(
            low, high, m.get(f"{key}_margin", DEFAULT_MARGINS[metric]),
            None if units is None else int(units))
    return text


def _counts(m: dict[str, float], prefix: str) -> str:
    parts = [f"{m[k]:.0f} {COUNT_NAMES[c]}" for c in COUNTS
             if (k := f"{prefix}paired_n_{c}") in m]
    return ", ".join(parts) or "–"


def paired_summary(result: DemoResult) -> Table:
    """Each variant's paired mean difference with its 95 % CI against its equal-budget control
    (the cost of compression) and against the baseline (compression plus the extra epochs)."""
    t = Table(title="Paired deltas: variant − equal-budget control (the cost of compression), "
              "variant − baseline; mean over test mixtures [95 % CI clustered by utterance], "
              "non-inferiority verdict")
    t.add_column("variant", no_wrap=True)
    t.add_column("metric", no_wrap=True)
    t.add_column("Δ vs control", justify="right", no_wrap=True)
    t.add_column("Δ vs baseline", justify="right", no_wrap=True)
    captions = []
    for label, m in result.paired.items():
        # a run with a control logs paired_* against it and baseline_paired_* against the
        # baseline (evaluate/paired_runs.py), whichever of the two comparisons succeeded
        has_control = label in result.controls
        control_prefix, baseline_prefix = ("", "baseline_") if has_control else (None, "")
        for j, (metric, name, digits) in enumerate(PAIRED_SHOWN):
            t.add_row(
                label if j == 0 else "", name,
                _delta(m, control_prefix, metric, digits) if control_prefix is not None else "–",
                _delta(m, baseline_prefix, metric, digits),
            )
        units = _counts(m, baseline_prefix if control_prefix is None else control_prefix)
        captions.append(f"{label}: {units}")
    t.caption = "units behind each CI: " + "; ".join(captions)
    return t


def write_report(result: DemoResult) -> str:
    """The demo's runs as one self-contained HTML report (``seofp report``); returns its path."""
    from seofp_lab.report import build_report  # noqa: PLC0415

    report = build_report(run_ids=tuple(result.runs.values()), title="seofp demo: embedded corpus")
    make_console().print(f"report (tables, plots, audio): {report.html}")
    return str(report.html)


DEMO_MODEL = "seofp-demo"  # the registered model the demo's SEOFP run becomes a version of
DEMO_REGISTERED = "SEOFP s1e5"  # the variant it registers
# --quick: a one-minute smoke run of the whole pipeline (install checks, CI): a 1-layer 8-unit
# LSTM, eight 1-s mixtures per epoch, one epoch each, four test mixtures; its numbers mean nothing
QUICK_OVERRIDES = ("model.hidden=8", "model.layers=1", "train.max_minutes=null",
                   "train.batch_size=4", "train.threads=1", "corpus.mixtures_per_epoch=8",
                   "corpus.valid_mixtures=4", "corpus.segment_seconds=1.0",
                   "evaluation.audio_examples=1", "tracking.experiment=seofp-demo-quick")
QUICK_UTTERANCES = 4


def register_candidate(result: DemoResult, name: str = DEMO_MODEL):  # noqa: ANN201 - Registered
    """Register the demo's SEOFP run as a version of ``name``; alias ``candidate`` only when its
    verdict against its equal-budget control is non-inferior (docs/mlflow.md#registry)."""
    from seofp_lab.registry import CANDIDATE_ALIAS, register  # noqa: PLC0415

    if DEMO_REGISTERED not in result.runs:
        return None
    reg = register(result.runs[DEMO_REGISTERED], name, alias=CANDIDATE_ALIAS)
    console = make_console()
    console.print(f"registered {reg.name} version {reg.version} ({DEMO_REGISTERED}, run "
                  f"{reg.run_id[:8]}); verdict against its control: {reg.verdict.overall}")
    if reg.alias:
        console.print(f"alias @{reg.alias} set; serve it: [bold]mlflow models serve -m "
                      f"models:/{reg.name}@{reg.alias} --env-manager local -h 127.0.0.1 -p 5001"
                      "[/bold] (docs/mlflow.md#serving)")
    else:
        console.print(f"alias @{CANDIDATE_ALIAS} not set: the verdict is not non-inferior")
    return reg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, compress, evaluate and compare on the embedded corpus")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="the baseline's training budget in epochs (default: its config, 40)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=None,
        help="the budget of each fine-tuned variant and of their fp32 control (default: 10)",
    )
    p.add_argument("--max-utterances", type=int, default=None, help="evaluate fewer test items")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="a one-minute smoke run: a tiny model, one epoch, the baseline, its "
                        "control and SEOFP s1e5, four test mixtures (numbers mean nothing)")
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every variant")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.quick:
        result = run_demo(1, 1, args.max_utterances or QUICK_UTTERANCES,
                          (*QUICK_OVERRIDES, *args.overrides), progress=not args.no_progress,
                          variants=VARIANTS[:2], bench=False)
    else:
        result = run_demo(
            args.epochs, args.finetune_epochs, args.max_utterances, tuple(args.overrides),
            progress=not args.no_progress,
        )
    print_summary(result)
    write_report(result)
    register_candidate(result, DEMO_MODEL + ("-quick" if args.quick else ""))
    return 0
