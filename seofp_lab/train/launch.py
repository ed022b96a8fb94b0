"""Sweeps that survive: every point a child process under one MLflow parent run, launched on a
real engine (``seofp sweep FILE --launcher local|ray|slurm``).

How it works (docs/sweeps.md):

- The sweep gets one **parent run** (tags ``seofp.sweep``, ``seofp.sweep_role=parent`` and
  ``seofp.sweep_digest``, the hash of the planned points and their configs); a rerun of the same
  plan reopens it. It carries the sweep file, the plan, and at the end a summary table.
- Each point runs as ``seofp sweep FILE --point I`` in its own process, whose MLflow run is a
  **child** of the parent (``mlflow.parentRunId``) and carries ``seofp.config_digest``. Its output
  goes to a log file that is kept as the artifact ``logs/<index>-<point>.log`` of its run.
- Points run in **waves**: a point starts once the points it starts from (a chain's baseline and
  control) are done. Each wave goes to the launcher: ``local`` (N processes on this machine, a
  thread pool waiting on them), ``ray`` (one Ray task per point with the CPUs/GPUs of the sweep's
  ``resources``; a local Ray cluster, or ``--address`` of one started with ``ray start``) or
  ``slurm`` (one submitit job array per wave; ``--cluster local`` runs submitit's local executor).
- A point that fails is recorded (its run FAILED with the tag ``seofp.sweep_error`` and its log;
  the parent keeps ``failures/<point>.log``) and the others go on; points that start from it are
  reported as blocked. A rerun skips finished points and retries failed or killed ones; an attempt
  whose process died (a killed worker) is closed as KILLED by the next attempt
  (:func:`seofp_lab.train.sweep_state.end_dead_attempts`), so no point ends with two finished runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import ctypes
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seofp_lab import tracking
from seofp_lab.console import console as make_console
from seofp_lab.errors import SeofpError
from seofp_lab.train.sweep import Point, SweepConfig, point_config
from seofp_lab.train.sweep_state import attempt_runs, find_point_run, missing_steps, process_alive
from seofp_lab.workspace import workspace_dir

LAUNCHERS = ("local", "ray", "slurm")
TAG_ROLE = "seofp.sweep_role"  # "parent" on a sweep's parent run
TAG_DIGEST = "seofp.sweep_digest"
TAG_ERROR = "seofp.sweep_error"


class LaunchError(SeofpError):
    """A launcher cannot start (engine missing, bad address, no Slurm)."""


@dataclass(frozen=True)
class PointSpec:
    """Everything a worker needs to run one point, as plain data (pickled to Ray / submitit)."""

    index: int
    key: str
    sweep_file: str
    overrides: tuple[str, ...]
    log: str
    env: tuple[tuple[str, str], ...]
    cwd: str


# ------------------------------------------------------------------------------------- worker
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the point's process gets SIGKILL when the worker that started it dies, so a killed
    Ray/submitit worker never leaves a training running on beside its retry."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def execute_point(spec: PointSpec) -> dict[str, Any]:
    """Run ``seofp sweep FILE --point I`` in a child process, its output appended to the log.

    Returns ``{"index", "key", "rc", "run_id", "error"}``; the log becomes an artifact of the
    point's run, and a failed run gets the tag ``seofp.sweep_error``. Runs on the launcher's
    worker (a thread, a Ray task, a Slurm job).
    """
    log = Path(spec.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    result_file = log.with_suffix(".result.json")
    result_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items()  # not the Ray worker's own settings
           if not k.startswith("RAY_") and k != "PYTHONBREAKPOINT"} | dict(spec.env)
    os.environ.update({k: v for k, v in spec.env  # this worker's own MLflow calls: same store
                       if k in ("MLFLOW_TRACKING_URI", "SEOFP_WORKSPACE")})
    cmd = [sys.executable, "-m", "seofp_lab.cli", "sweep", spec.sweep_file,
           "--point", str(spec.index), "--no-progress", "--result-file", str(result_file),
           *[f"--override={o}" for o in spec.overrides]]
    started = time.time()
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n===== attempt at {time.strftime('%Y-%m-%d %H:%M:%S')} on pid {os.getpid()}: "
                 f"{' '.join(cmd[1:])}\n")
        fh.flush()
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=spec.cwd,
                            preexec_fn=_die_with_parent, check=False).returncode
    run_id = None
    if result_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            run_id = json.loads(result_file.read_text()).get("run_id")
    error = None if rc == 0 else _last_error(log)
    if run_id is None:
        run_id = _attempt_run(spec, started)
    if run_id is not None:
        _record(run_id, log, error)
    return {"index": spec.index, "key": spec.key, "rc": rc, "run_id": run_id, "error": error}


def _last_error(log: Path) -> str:
    """The point's error line: the last line the CLI printed (``error: ...``), else the last one."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("====="):
            break
        if "error:" in ln or re.match(r"\w*(Error|Exception)\b", ln):
            return ln[:500]
    return (lines[-1] if lines else "no output")[:500]


def _attempt_run(spec: PointSpec, started: float) -> str | None:
    """The run a failed attempt created (newest run of the point started after the attempt)."""
    from seofp_lab.train.sweep import load_sweep  # noqa: PLC0415

    sweep = load_sweep(spec.sweep_file)
    c = tracking.client()
    with contextlib.suppress(Exception):
        exps = [e.experiment_id for e in c.search_experiments()]
        runs = c.search_runs(
            exps, f"tags.`{tracking.TAG_SWEEP}` = '{sweep.name}' and "
            f"tags.`{tracking.TAG_SWEEP_POINT}` = '{spec.key}'",
            order_by=["attributes.start_time DESC"], max_results=1)
        if runs and runs[0].info.start_time >= started * 1000 - 1000:
            return runs[0].info.run_id
    return None


def _record(run_id: str, log: Path, error: str | None) -> None:
    c = tracking.client()
    with contextlib.suppress(Exception):  # a log that cannot be kept must not fail the point
        c.log_artifact(run_id, str(log), "logs")
    if error is not None:
        with contextlib.suppress(Exception):
            c.set_tag(run_id, TAG_ERROR, error)
            if c.get_run(run_id).info.status == "RUNNING":  # the process died inside the run
                c.set_terminated(run_id, "FAILED")


# ----------------------------------------------------------------------------------- launchers
@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 2  # Ray: re-runs of a task whose worker died; Slurm: requeues


def _local(specs: Sequence[PointSpec], jobs: int, **_: Any) -> list[dict[str, Any]]:
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(execute_point, specs))


def _ray(specs: Sequence[PointSpec], jobs: int, res: Resources, address: str | None = None,
         **_: Any) -> list[dict[str, Any]]:
    try:
        import ray  # noqa: PLC0415
        from ray.exceptions import RayError  # noqa: PLC0415
    except ImportError:
        raise LaunchError("Expected the Ray package for --launcher ray but it is not installed; "
                          "pip install 'seofp-lab[ray]'") from None
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            else:  # a local cluster sized for `jobs` points at a time
                ray.init(num_cpus=max(1, jobs) * res.cpus, num_gpus=None,
                         log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError
            raise LaunchError(f"Expected a Ray cluster at {address or 'a new local cluster'} but "
                              f"ray.init failed: {exc}") from None
    task = ray.remote(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=res.retries)(
        execute_point)
    refs = [task.remote(s) for s in specs]
    out = []
    for s, ref in zip(specs, refs, strict=True):
        try:
            out.append(ray.get(ref))
        except RayError as exc:  # the task's worker died more than `retries` times
            out.append({"index": s.index, "key": s.key, "rc": -1, "run_id": None,
                        "error": f"Ray task failed: {str(exc).splitlines()[0][:400]}"})
    return out


def _slurm(specs: Sequence[PointSpec], jobs: int, res: Resources, cluster: str | None = None,
           slurm: dict[str, Any] | None = None, folder: Path | None = None,
           **_: Any) -> list[dict[str, Any]]:
    try:
        import submitit  # noqa: PLC0415
    except ImportError:
        raise LaunchError("Expected the submitit package for --launcher slurm but it is not "
                          "installed; pip install 'seofp-lab[slurm]'") from None
    if cluster is None and not _has_sbatch():
        raise LaunchError("Expected Slurm (sbatch on PATH) for --launcher slurm but found none; "
                          "--cluster local runs the same job array with submitit's local "
                          "executor")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": 24 * 60, "cpus_per_task": max(1, int(res.cpus)),
                              "slurm_array_parallelism": max(1, jobs)}
    if res.gpus:
        params["gpus_per_node"] = int(res.gpus)
    params.update({f"slurm_{k}": v for k, v in (slurm or {}).items()})
    ex.update_parameters(**params)
    jobs_ = ex.map_array(execute_point, list(specs))  # one job array per wave
    out = []
    for s, job in zip(specs, jobs_, strict=True):
        try:
            out.append(job.result())
        except Exception as exc:  # submitit raises FailedJobError with the job's stderr
            out.append({"index": s.index, "key": s.key, "rc": -1, "run_id": None,
                        "error": f"job {job.job_id} failed: {str(exc).splitlines()[0][:400]}"})
    return out


def _has_sbatch() -> bool:
    import shutil  # noqa: PLC0415

    return shutil.which("sbatch") is not None


RUNNERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "local": _local, "ray": _ray, "slurm": _slurm}


# ------------------------------------------------------------------------------------ the store
def plan_digest(sweep: SweepConfig, pts: Sequence[Point]) -> str:
    """A hash of the plan: the points and each one's config (so a changed grid is a new sweep)."""
    blob = json.dumps([(p.key, p.stage, list(p.overrides)) for p in pts], sort_keys=True)
    return hashlib.sha256(f"{sweep.name}\n{blob}".encode()).hexdigest()[:12]


def ensure_parent(sweep: SweepConfig, sweep_file: Path, pts: Sequence[Point],
                  experiment: str) -> str:
    """The sweep's parent run (reopened on a rerun of the same plan), status RUNNING."""
    c = tracking.client()
    digest = plan_digest(sweep, pts)
    found = tracking.find_runs(
        experiment, f"tags.`{TAG_ROLE}` = 'parent' and tags.`{TAG_DIGEST}` = '{digest}'")
    if found:
        run_id = found[0].info.run_id
        c.update_run(run_id, status="RUNNING")
        return run_id
    run = c.create_run(tracking.experiment_id(experiment), run_name=f"sweep {sweep.name}",
                       tags={tracking.TAG_SWEEP: sweep.name or "", TAG_ROLE: "parent",
                             TAG_DIGEST: digest, "seofp.role": "sweep"})
    run_id = run.info.run_id
    c.log_param(run_id, "points", len(pts))
    for k, values in sweep.grid.items():
        c.log_param(run_id, f"grid.{k}"[:250], json.dumps(values)[:6000])
    if sweep.chains:
        c.log_param(run_id, "chains", ",".join(ch.name for ch in sweep.chains))
    c.log_artifact(run_id, str(sweep_file), "sweep")
    c.log_text(run_id, json.dumps([{"index": p.index, "key": p.key, "stage": p.stage,
                                    "needs": list(p.needs), "overrides": list(p.overrides)}
                                   for p in pts], indent=2), "sweep/plan.json")
    return run_id


@dataclass
class PointState:
    point: Point
    state: str  # done | running | failed | killed | pending | blocked
    run_id: str | None = None
    detail: str = ""
    metrics: dict[str, float] | None = None


def point_states(sweep: SweepConfig, pts: Sequence[Point]) -> list[PointState]:
    """Each point's state from the store (dependencies first: they fix the later configs)."""
    runs: dict[str, str] = {}
    out: dict[str, PointState] = {}
    for p in pts:
        if any(n not in runs for n in p.needs):
            bad = [n for n in p.needs if out[n].state in ("failed", "killed", "blocked")]
            waits = ", ".join(n for n in p.needs if n not in runs)
            out[p.key] = PointState(p, "blocked" if bad else "pending", detail=f"after {waits}")
            continue
        cfg = point_config(sweep, p, runs)
        done = find_point_run(sweep, p, cfg)
        compressed = cfg.compression.compressed and p.stage != "control"
        if done is not None:
            todo = missing_steps(sweep, done, compressed)
            runs[p.key] = done.info.run_id
            out[p.key] = PointState(p, "pending" if todo else "done", done.info.run_id,
                                    f"still to do: {', '.join(todo)}" if todo else "",
                                    dict(done.data.metrics))
            continue
        tried = attempt_runs(sweep, p, cfg)
        if not tried:
            out[p.key] = PointState(p, "pending")
            continue
        r = tried[0]
        status = r.info.status
        if status == "RUNNING":
            alive = process_alive(r)
            state = "running" if alive is not False else "killed"
            detail = "" if alive is not False else "its process is gone"
        elif status == "KILLED":
            state, detail = "killed", r.data.tags.get("seofp.killed_reason", "")
        else:  # FAILED, or FINISHED but cut by the safety cap
            state = "failed"
            detail = r.data.tags.get(TAG_ERROR) or r.data.tags.get(tracking.TAG_BUDGET_CUT, "")
        out[p.key] = PointState(p, state, r.info.run_id, detail[:200])
    return [out[p.key] for p in pts]


def status_table(sweep: SweepConfig, states: Sequence[PointState]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    counts = {s: sum(st.state == s for st in states)
              for s in ("done", "running", "failed", "killed", "pending", "blocked")}
    table = Table(title=f"sweep {sweep.name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()
                                                          if v),
                  title_justify="left")
    shown = next((k for k in ("pesq_wb", "stoi", "si_sdr", "val_si_sdr")
                  if any(k in (st.metrics or {}) for st in states)), "pesq_wb")
    for col in ("#", "point", "stage", "state", "run", shown, "detail"):
        table.add_column(col, justify="right" if col in ("#", shown) else "left")
    colour = {"done": "green", "running": "cyan", "failed": "red", "killed": "red",
              "blocked": "yellow", "pending": "white"}
    for st in states:
        m = st.metrics or {}
        table.add_row(str(st.point.index), st.point.key, st.point.stage,
                      f"[{colour[st.state]}]{st.state}[/]", (st.run_id or "")[:8],
                      f"{m[shown]:.3f}" if shown in m else "", st.detail)
    return table


def summary_rows(states: Sequence[PointState]) -> list[dict[str, Any]]:
    keys = ("pesq_wb", "pesq_nb", "stoi", "si_sdr", "size_bytes", "speedup_vs_fp32", "epochs")
    return [{"index": st.point.index, "point": st.point.key, "stage": st.point.stage,
             "state": st.state, "run_id": st.run_id or "", "detail": st.detail,
             **{k: (st.metrics or {}).get(k, "") for k in keys}} for st in states]


# -------------------------------------------------------------------------------- orchestration
def _failed_run(sweep: SweepConfig, pts: Sequence[Point], spec: PointSpec, experiment: str,
                error: str) -> None:
    """A FAILED child run for a point that failed before it opened one (bad init_from, a corpus
    that does not load), so --status and the next rerun see the failure in the store."""
    p = pts[spec.index]
    runs = {st.point.key: st.run_id for st in point_states(sweep, pts) if st.run_id}
    cfg = point_config(sweep, p, runs)
    c = tracking.client()
    parent = dict(spec.env).get(tracking.ENV_PARENT_RUN, "")
    run = c.create_run(tracking.experiment_id(experiment), run_name=f"{p.key} (failed)",
                       tags={**cfg.tracking.tags, "seofp.config_digest": cfg.digest(),
                             TAG_ERROR: error, "mlflow.parentRunId": parent,
                             "seofp.role": p.stage if p.stage != "grid" else "sweep_point"})
    with contextlib.suppress(Exception):
        c.log_artifact(run.info.run_id, spec.log, "logs")
    c.set_terminated(run.info.run_id, "FAILED")


def waves(pts: Sequence[Point]) -> list[list[Point]]:
    """Points grouped so that every point comes after the points it starts from."""
    level: dict[str, int] = {}
    for p in pts:
        level[p.key] = 1 + max((level[n] for n in p.needs), default=-1)
    out: list[list[Point]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for p in pts:
        out[level[p.key]].append(p)
    return out


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", key)[:120]


def launch(sweep: SweepConfig, sweep_file: Path, pts: Sequence[Point], launcher: str = "local",
           jobs: int = 1, overrides: Sequence[str] = (), address: str | None = None,
           cluster: str | None = None, threads: int | None = None) -> int:
    """Run every point that is not done on ``launcher``; return 0 when all end done, else 1."""
    if launcher not in RUNNERS:
        raise LaunchError(f"Expected --launcher in {LAUNCHERS} but got {launcher!r}")
    console = make_console()
    experiment = point_config(sweep, pts[0], {}).tracking.experiment
    parent = ensure_parent(sweep, sweep_file, pts, experiment)
    folder = workspace_dir() / "sweeps" / _safe(sweep.name or "sweep")
    res = Resources(**sweep.resources.model_dump())
    per_point = threads or max(1, int(res.cpus))
    env = {tracking.ENV_PARENT_RUN: parent, "SEOFP_WORKSPACE": str(workspace_dir()),
           "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
           "OMP_NUM_THREADS": str(per_point), "OPENBLAS_NUM_THREADS": str(per_point),
           "MKL_NUM_THREADS": str(per_point)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    console.print(f"sweep {sweep.name}: {len(pts)} points on launcher {launcher} "
                  f"({jobs} at a time); parent run {parent}; logs in {folder / 'logs'}")
    t0 = time.perf_counter()
    c = tracking.client()
    for wave in waves(pts):
        states = {st.point.key: st for st in point_states(sweep, pts)}
        todo = [p for p in wave if states[p.key].state in ("pending", "failed", "killed")
                and all(states[n].state == "done" for n in p.needs)]
        if not todo:
            continue
        specs = [PointSpec(p.index, p.key, str(Path(sweep_file).resolve()), tuple(overrides),
                           str(folder / "logs" / f"{p.index:03d}-{_safe(p.key)}.log"),
                           tuple(sorted(env.items())), os.getcwd()) for p in todo]
        console.print(f"starting {len(specs)} point(s): {', '.join(p.key for p in todo)}")
        results = RUNNERS[launcher](specs, jobs=jobs, res=res, address=address,
                                    cluster=cluster, slurm=sweep.slurm, folder=folder / "submitit")
        for r, spec in zip(results, specs, strict=True):
            ok = r["rc"] == 0
            console.print(f"point {r['index']} {r['key']}: "
                          + ("[green]done[/]" if ok else f"[red]failed[/] ({r['error']})")
                          + (f", run {r['run_id'][:8]}" if r.get("run_id") else ""))
            if not ok:
                with contextlib.suppress(Exception):
                    c.log_artifact(parent, spec.log, "failures")
                if not r.get("run_id"):  # it failed before opening a run: the store still says so
                    _failed_run(sweep, pts, spec, experiment, r["error"] or "failed")
    states_list = point_states(sweep, pts)
    rows = summary_rows(states_list)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    c.log_text(parent, buf.getvalue(), "summary.csv")
    done = sum(st.state == "done" for st in states_list)
    c.log_metric(parent, "points_done", done)
    c.log_metric(parent, "points_failed", sum(st.state in ("failed", "killed", "blocked")
                                              for st in states_list))
    c.log_metric(parent, "wall_minutes", (time.perf_counter() - t0) / 60)
    c.set_terminated(parent, "FINISHED" if done == len(pts) else "FAILED")
    console.print(status_table(sweep, states_list))
    console.print(f"sweep {sweep.name}: {done}/{len(pts)} points done in "
                  f"{(time.perf_counter() - t0) / 60:.1f} min"
                  + ("" if done == len(pts) else "; rerun the same command to retry the rest"))
    return 0 if done == len(pts) else 1


__all__ = ["LAUNCHERS", "LaunchError", "PointSpec", "PointState", "Resources", "ensure_parent",
           "execute_point", "launch", "plan_digest", "point_states", "status_table", "waves"]
