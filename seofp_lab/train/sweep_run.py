"""Running a sweep's points in order, skipping the finished ones (``seofp sweep``).

A point is *done* when its run is FINISHED in MLflow and has every result the sweep asks for: the
test-set scores (``pesq_wb``), the exported size (``size_bytes``) and, for a compressed run with
``bench: true``, the C engine's speed (``speedup_vs_fp32``). A finished run that misses one of them
gets only the missing steps. A baseline, variant or grid run is found by its sweep tags and its
``seofp.config_digest`` (so a changed budget trains anew); a control by its recipe key
(``seofp_lab.train.control``), so a control with the same recipe made elsewhere is reused too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from seofp_lab import tracking
from seofp_lab.config import ConfigError, ExperimentConfig
from seofp_lab.console import console as make_console
from seofp_lab.errors import SeofpError
from seofp_lab.train.launch import launch, point_states, status_table
from seofp_lab.train.sweep import Point, SweepConfig, load_sweep, plan, point_config
from seofp_lab.train.sweep_state import (
    attempt_runs,
    end_dead_attempts,
    find_point_run,
    missing_steps,
    process_alive,
)


class SweepError(SeofpError):
    """A point cannot run: a point it starts from has no finished run."""


def finish_run(run_id: str, steps: list[str], bench_seconds: float = 2.0,
               bench_samples: int = 31) -> None:
    """Evaluate (PyTorch, the run's own test set), export (exact size) and benchmark a run."""
    if "evaluate" in steps:
        from seofp_lab.evaluate.run import evaluate  # noqa: PLC0415

        evaluate(run_id)
    if "export" in steps:
        from seofp_lab.infer.export import export_run  # noqa: PLC0415

        path = export_run(run_id)
        make_console().print(f"exported {path} ({path.stat().st_size:,} bytes)")
    if "bench" in steps:  # the C integer-adder engine against PyTorch fp32 and C fp32, 1 thread
        from seofp_lab.infer.bench import bench_run  # noqa: PLC0415

        bench_run(run_id, seconds=bench_seconds, samples=bench_samples)


def _resolve(sweep: SweepConfig, pts: list[Point]) -> dict[str, tuple[ExperimentConfig, Any]]:
    """Point key -> (config, finished run or None), dependencies first (they fix the configs)."""
    runs: dict[str, str] = {}
    out: dict[str, tuple[ExperimentConfig, Any]] = {}
    for p in pts:
        cfg = point_config(sweep, p, runs)
        ready = all(n in runs for n in p.needs)
        run = find_point_run(sweep, p, cfg) if ready else None
        if run is not None:
            runs[p.key] = run.info.run_id
        out[p.key] = (cfg, run)
    return out


def list_points(sweep: SweepConfig, pts: list[Point]) -> None:
    """One line per point: index, key, stage, what it starts from, and its state in MLflow."""
    state = _resolve(sweep, pts)
    print(f"sweep {sweep.name}: {len(pts)} points (experiment "
          f"{next(iter(state.values()))[0].tracking.experiment}, store {tracking.tracking_uri()})")
    for p in pts:
        cfg, run = state[p.key]
        if run is not None:
            todo = missing_steps(sweep, run, cfg.compression.compressed and p.stage != "control")
            status = f"done: run {run.info.run_id[:8]}, skipped on re-run" + (
                f" (still to do: {', '.join(todo)})" if todo else "")
        elif any(state[n][1] is None for n in p.needs):
            status = "to run (after " + ", ".join(n for n in p.needs if state[n][1] is None) + ")"
        else:
            status = "to run"
        start = f"  from {' + '.join(p.needs)}" if p.needs else ""
        shared = f"  shared by {', '.join(p.control_for)}" if p.control_for else ""
        print(f"{p.index:3d}  {p.key:<24} {p.stage:<8} {cfg.train.max_epochs:>3} epochs{start}"
              f"{shared}  [{status}]")
        shown = [o for o in p.overrides if not o.startswith("compression")] if (
            p.stage == "control") else p.overrides
        print(f"       {' '.join(shown)}" + ("  (the variants' recipe without compression)"
                                             if p.stage == "control" else ""))


def run_sweep(sweep: SweepConfig, pts: list[Point], only: int | None = None,
              progress: bool = True) -> dict[str, str]:
    """Run the points in order (or point ``only``), skipping finished ones.

    Returns:
        point key -> run id of every point visited.

    Raises:
        SweepError: with ``only``, a point it starts from has no finished run.
    """
    from seofp_lab.train.control import ensure_control  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    console = make_console()
    runs: dict[str, str] = {}
    t0 = time.perf_counter()
    chosen = [pts[only]] if only is not None else pts
    if only is not None:  # the points it needs must be done already
        state = _resolve(sweep, pts[: only + 1])
        for n in pts[only].needs:
            if state[n][1] is None:
                idx = next(q.index for q in pts if q.key == n)
                raise SweepError(
                    f"Expected a finished run of point {idx} ({n}) in experiment "
                    f"{state[n][0].tracking.experiment} tagged {tracking.TAG_SWEEP}={sweep.name} "
                    f"before point {only} ({pts[only].key}) but got none; run "
                    f"`seofp sweep FILE --point {idx}` first")
            runs[n] = state[n][1].info.run_id
    for i, p in enumerate(chosen):
        cfg = point_config(sweep, p, runs)
        compressed = cfg.compression.compressed and p.stage != "control"
        console.rule(f"[bold][{i + 1}/{len(chosen)}] point {p.index} {p.key}[/bold] ({p.stage}, "
                     f"{cfg.train.max_epochs} epochs)")
        found = find_point_run(sweep, p, cfg)
        if found is not None:
            run_id = found.info.run_id
            steps = missing_steps(sweep, found, compressed)
            console.print(f"finished run {run_id} found: skipped"
                          + (f"; still to do: {', '.join(steps)}" if steps else ""))
        else:
            for dead in end_dead_attempts(sweep, p, cfg):
                console.print(f"run {dead[:8]} of an earlier attempt lost its process: KILLED")
            if p.stage == "control":
                run_id, _ = ensure_control(cfg, progress=progress)
            else:
                run_id = train(cfg, progress=progress).run_id
            steps = missing_steps(sweep, tracking.get_run(run_id), compressed)
        finish_run(run_id, steps, sweep.bench_seconds, sweep.bench_samples)
        runs[p.key] = run_id
        console.print(f"point {p.index} {p.key}: run {run_id}")
    console.print(f"sweep {sweep.name}: {len(chosen)} point(s) in "
                  f"{(time.perf_counter() - t0) / 60:.1f} min; runs: "
                  + ", ".join(f"{k}={v[:8]}" for k, v in runs.items()))
    return runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of experiments, or staged baseline -> variant "
                       "chains, from configs/sweep/",
                       description="Run every point of a sweep file; points with a finished, "
                       "evaluated run in MLflow (same sweep, point and config) are skipped, so a "
                       "re-run resumes where the last one stopped.")
    p.add_argument("sweep", help="a sweep YAML, e.g. configs/sweep/paper_table.yaml")
    p.add_argument("--list", action="store_true",
                   help="print the points (stage, what each starts from, done or not) and exit")
    p.add_argument("--point", type=int, default=None,
                   help="run only point I (0-based); the points it starts from must be done")
    p.add_argument("--status", action="store_true",
                   help="print a table of the points (done, running, failed, killed, pending, "
                   "blocked) from the MLflow store and exit")
    p.add_argument("--launcher", choices=("local", "ray", "slurm"), default="local",
                   help="where the points run: local processes (default), Ray tasks, or a Slurm "
                   "job array through submitit (docs/sweeps.md#launchers)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="points at a time (local processes, Ray cluster size, array parallelism)")
    p.add_argument("--address", default=None,
                   help="--launcher ray: a running cluster (`ray start --head`), e.g. auto or "
                   "HOST:6379; default: a new local cluster")
    p.add_argument("--cluster", choices=("slurm", "local", "debug"), default=None,
                   help="--launcher slurm: submitit's executor; local runs the job array on "
                   "this machine (default: slurm, needs sbatch)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per point (default: the sweep's resources.cpus)")
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override for every point, after the sweep's own (repeatable), "
                   "e.g. --override train.max_epochs=1; it changes the points' configs, so runs "
                   "made without it are not reused")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.sweep)
    pts = plan(sweep, tuple(args.override))
    for p in pts:  # validate every point before the first run starts
        point_config(sweep, p, {})
    if args.list:
        list_points(sweep, pts)
        return 0
    if args.status:
        states = point_states(sweep, pts)
        make_console().print(status_table(sweep, states))
        return 0 if all(st.state == "done" for st in states) else 1
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise ConfigError(f"Expected --jobs and --threads >= 1 but got {args.jobs}, "
                          f"{args.threads}")
    if args.point is None:  # every point, each in its own process under one parent run
        return launch(sweep, Path(args.sweep), pts, args.launcher, args.jobs,
                      tuple(args.override), args.address, args.cluster, args.threads)
    if not 0 <= args.point < len(pts):
        raise ConfigError(f"Expected --point in [0, {len(pts) - 1}] but got {args.point}")
    runs = run_sweep(sweep, pts, only=args.point, progress=not args.no_progress)
    if args.result_file:  # read by the launcher that started this point
        Path(args.result_file).write_text(json.dumps({"run_id": runs[pts[args.point].key]}))
    return 0


__all__ = ["SweepError", "add_parser", "attempt_runs", "end_dead_attempts", "find_point_run",
           "finish_run", "list_points", "missing_steps", "process_alive", "run", "run_sweep"]
