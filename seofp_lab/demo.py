"""``seofp demo``: the project's main job on the embedded corpus.

Trains the small BLSTM baseline for a fixed CPU budget, fine-tunes its SEOFP variants from it,
evaluates all of them on the fixed test set, and prints one comparison table (noisy input vs each
model: PESQ, STOI, SI-SDR, size, compression), the command that opens the MLflow UI, and writes
the runs' HTML report (``seofp report``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from seofp_lab.config import CONFIGS_DIR, load_config
from seofp_lab.console import console as make_console

DEMO_BASELINE = CONFIGS_DIR / "experiment" / "demo_baseline.yaml"


@dataclass(frozen=True)
class Variant:
    label: str
    config: str  # experiment YAML under configs/experiment/
    overrides: tuple[str, ...] = ()
    from_baseline: bool = False  # fine-tune from the baseline's checkpoint


VARIANTS = (
    Variant("fp32 baseline", "demo_baseline"),
    Variant("SEOFP s1e5", "demo_s1e5", from_baseline=True),
    Variant("pruned 50% + s1e5", "demo_s1e5_pruned50", from_baseline=True),
)


@dataclass
class DemoResult:
    runs: dict[str, str] = field(default_factory=dict)  # label -> run id
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    minutes: float = 0.0


def run_demo(
    minutes: float | None = None,
    max_utterances: int | None = None,
    extra_overrides: tuple[str, ...] = (),
    progress: bool = True,
    variants: tuple[Variant, ...] = VARIANTS,
) -> DemoResult:
    """Train, export, evaluate and benchmark every variant; returns run ids and metrics."""
    from seofp_lab.evaluate.run import evaluate  # noqa: PLC0415
    from seofp_lab.infer.bench import bench_run  # noqa: PLC0415
    from seofp_lab.infer.export import export_run  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    console = make_console()
    t0 = time.perf_counter()
    result = DemoResult()
    baseline_run: str | None = None
    for i, v in enumerate(variants):
        overrides = list(v.overrides) + list(extra_overrides)
        if minutes is not None:
            share = minutes if i == 0 else 0.4 * minutes
            overrides.append(f"train.max_minutes={share}")
        if v.from_baseline and baseline_run:
            overrides += [
                f"compression.init_from={baseline_run}",
                f"tracking.baseline_run={baseline_run}",
            ]
        cfg = load_config(CONFIGS_DIR / "experiment" / f"{v.config}.yaml", overrides)
        console.rule(
            f"[bold]{v.label}[/bold]: training ({cfg.train.max_minutes or '?'} min budget)"
        )
        trained = train(cfg, progress=progress)
        if i == 0:
            baseline_run = trained.run_id
        console.print(f"run {trained.run_id}: {trained.minutes:.1f} min")
        path = export_run(trained.run_id)
        nbytes = float(path.stat().st_size)
        size = {
            "size_bytes": nbytes,
            "compression_pct": 100.0 * (1.0 - nbytes / (4.0 * trained.metrics["stored_values"])),
        }
        console.print(f"exported {path} ({path.stat().st_size:,} bytes)")
        console.rule(f"[bold]{v.label}[/bold]: evaluating the test set")
        ev = evaluate(trained.run_id, max_utterances=max_utterances)
        speed: dict[str, float] = {}
        if cfg.compression.format:  # the C integer-adder engine against PyTorch fp32, one thread
            speed = bench_run(trained.run_id, seconds=2.0, samples=31).metrics
        result.runs[v.label] = trained.run_id
        result.metrics[v.label] = {**trained.metrics, **size, **ev.metrics, **speed}
    result.minutes = (time.perf_counter() - t0) / 60
    return result


def print_summary(result: DemoResult) -> None:
    from seofp_lab.evaluate.run import results_table  # noqa: PLC0415
    from seofp_lab.tracking import tracking_uri  # noqa: PLC0415

    extra = [
        k
        for k in ("size_bytes", "compression_pct", "bits_per_weight", "speedup_vs_fp32")
        if any(k in m for m in result.metrics.values())
    ]
    results_table(result.metrics, extra=extra, title="seofp demo: embedded test set").print()
    console = make_console()
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
        "browse and compare the runs:  [bold]seofp ui[/bold]  (or `make ui`), "
        "then open http://127.0.0.1:5000"
    )


def write_report(result: DemoResult) -> str:
    """The demo's runs as one self-contained HTML report (``seofp report``); returns its path."""
    from seofp_lab.report import build_report  # noqa: PLC0415

    report = build_report(run_ids=tuple(result.runs.values()), title="seofp demo: embedded corpus")
    make_console().print(f"report (tables, plots, audio): {report.html}")
    return str(report.html)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, compress, evaluate and compare on the embedded corpus")
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training budget of the baseline (each variant gets 40 %%); default: the configs",
    )
    p.add_argument("--max-utterances", type=int, default=None, help="evaluate fewer test items")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every variant")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        args.minutes, args.max_utterances, tuple(args.overrides), progress=not args.no_progress
    )
    print_summary(result)
    write_report(result)
    return 0
