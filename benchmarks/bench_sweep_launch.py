"""Wall time of one sweep run sequentially against N points at a time (``--launcher local``).

    python benchmarks/bench_sweep_launch.py [--points 12] [--jobs 2] [--epochs 1]

A grid of ``--points`` tiny trainings (seeds; the embedded corpus, evaluation on) runs twice, each
time into a fresh workspace: ``--jobs 1`` and ``--jobs N``, one thread per point. Prints a table
with both wall times and their ratio, and checks both runs reached the same scores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.hidden=8", "model.layers=1", "train.max_minutes=null", "train.batch_size=4",
        "train.threads=1", "corpus.mixtures_per_epoch=8", "corpus.valid_mixtures=4",
        "corpus.segment_seconds=1.0", "evaluation.audio_examples=0",
        "evaluation.metrics=[stoi, si_sdr]", "evaluation.workers=1",
        "tracking.experiment=bench-sweep"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    sweep = tmp / "bench.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "bench", "experiment": "demo_baseline",
        "grid": {"train.seed": list(range(1, args.points + 1))},
        "overrides": [*TINY, f"train.max_epochs={args.epochs}"], "bench": False}))
    walls, scores = {}, {}
    for jobs in (1, args.jobs):
        ws = tmp / f"ws-{jobs}"
        env = {**os.environ, "SEOFP_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
        env.pop("MLFLOW_TRACKING_URI", None)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, "-m", "seofp_lab.cli", "sweep", str(sweep),
                             "--jobs", str(jobs), "--threads", "1"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, check=False).returncode
        walls[jobs] = time.perf_counter() - t0
        if rc != 0:
            print(f"sweep with --jobs {jobs} failed (rc {rc}); logs under {ws / 'sweeps'}")
            return 1
        import mlflow  # noqa: PLC0415

        c = mlflow.MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
        exp = c.get_experiment_by_name("bench-sweep")
        scores[jobs] = {r.data.tags["seofp.sweep_point"]: round(r.data.metrics["stoi"], 6)
                        for r in c.search_runs([exp.experiment_id], max_results=1000)
                        if "seofp.sweep_point" in r.data.tags}
    table = Table(title=f"{args.points}-point sweep, {args.epochs} epoch(s) each, "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for col in ("launcher", "points at a time", "wall (min)", "speed-up"):
        table.add_column(col, justify="right")
    for jobs in (1, args.jobs):
        table.add_row("local", str(jobs), f"{walls[jobs] / 60:.2f}",
                      f"{walls[1] / walls[jobs]:.2f}x")
    Console().print(table)
    same = scores[1] == scores[args.jobs]
    print(f"same scores sequential and parallel: {same} ({len(scores[1])} points)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
