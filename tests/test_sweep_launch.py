"""Sweeps that survive (docs/sweeps.md): a parent run with child runs, a failing point recorded
while the others go on, reruns that skip finished points and retry failed ones, parallel points
on one workspace equal to sequential ones, submitit's local executor, and a Ray cluster whose
worker is killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tiny import TINY_TRAINING

from seofp_lab.train.launch import waves
from seofp_lab.train.sweep import Point, SweepConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = [*TINY_TRAINING, "train.max_epochs=1", "evaluation.audio_examples=0",
        "evaluation.metrics=[stoi]", "evaluation.workers=1", "tracking.experiment=launch-test"]


def _sweep(tmp: Path, name: str, grid: dict, evaluate: bool = False) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "experiment": "demo_baseline", "grid": grid,
                                    "overrides": TINY, "bench": False, "evaluate": evaluate}))
    return path


def _seofp(ws: Path, *args: str, timeout: float = 280) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEOFP_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "seofp_lab.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _runs(ws: Path, experiment: str = "launch-test") -> list:
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def _points(ws: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in _runs(ws):
        if r.data.tags.get("seofp.sweep_role") != "parent":
            out.setdefault(r.data.tags["seofp.sweep_point"], []).append(r.info.status)
    return out


def test_waves_put_every_point_after_what_it_starts_from() -> None:
    mk = lambda i, k, needs=(): Point(i, k, "variant", Path("x.yaml"), (), needs)  # noqa: E731
    pts = [mk(0, "a/baseline"), mk(1, "a/control", ("a/baseline",)),
           mk(2, "a/s1e5", ("a/baseline", "a/control")), mk(3, "b/baseline")]
    assert [[p.key for p in w] for w in waves(pts)] == [
        ["a/baseline", "b/baseline"], ["a/control"], ["a/s1e5"]]


def test_sweep_resources_are_validated() -> None:
    with pytest.raises(ValueError, match="cpus"):
        SweepConfig(experiment="demo_baseline", resources={"cpus": 0})


@pytest.mark.slow
def test_failing_point_is_recorded_the_others_go_on_and_a_rerun_retries_only_it(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sweep = _sweep(tmp_path, "fails", {"compression.init_from": [None, "0000dead"]})
    first = _seofp(ws, "sweep", str(sweep), "--jobs", "2")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1/2 points done" in first.stdout
    pts = _points(ws)
    assert pts["compression.init_from=null"] == ["FINISHED"]
    assert pts["compression.init_from=0000dead"] == ["FAILED"]
    failed = next(r for r in _runs(ws) if r.info.status == "FAILED")
    assert "0000dead" in failed.data.tags["seofp.sweep_error"]
    parent = next(r for r in _runs(ws) if r.data.tags.get("seofp.sweep_role") == "parent")
    assert parent.info.status == "FAILED"
    assert {r.data.tags.get("mlflow.parentRunId") for r in _runs(ws)} - {None} == {
        parent.info.run_id}
    status = _seofp(ws, "sweep", str(sweep), "--status")
    assert status.returncode == 1 and "1 done, 1 failed" in status.stdout, status.stdout
    second = _seofp(ws, "sweep", str(sweep), "--jobs", "2")
    assert second.returncode == 1
    pts = _points(ws)  # the finished point is not trained again; the failed one is retried
    assert pts["compression.init_from=null"] == ["FINISHED"]
    assert pts["compression.init_from=0000dead"] == ["FAILED", "FAILED"]


@pytest.mark.slow
def test_two_points_at_once_on_one_workspace_equal_sequential_ones(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, "seeds", {"train.seed": [1, 2]}, evaluate=True)
    par, seq = tmp_path / "parallel", tmp_path / "sequential"
    assert _seofp(par, "sweep", str(sweep), "--jobs", "2").returncode == 0
    assert _seofp(seq, "sweep", str(sweep), "--jobs", "1").returncode == 0

    def metrics(ws: Path) -> dict[str, dict[str, float]]:
        return {r.data.tags["seofp.sweep_point"]: r.data.metrics for r in _runs(ws)
                if r.data.tags.get("seofp.sweep_role") != "parent"}

    a, b = metrics(par), metrics(seq)
    assert set(a) == set(b) == {"train.seed=1", "train.seed=2"}
    for point in a:
        for key in ("val_si_sdr", "stoi", "test_utterances"):
            assert a[point][key] == pytest.approx(b[point][key], abs=1e-6), (point, key)
    assert a["train.seed=1"]["val_si_sdr"] != a["train.seed=2"]["val_si_sdr"]
    sets = list((par / "testsets").iterdir())  # one test set, built once, no partial left over
    assert [p.name for p in sets if not p.name.endswith(".lock")] == [
        p.name for p in (seq / "testsets").iterdir() if not p.name.endswith(".lock")]
    assert not [p for p in sets if ".partial" in p.name]


@pytest.mark.slow
def test_slurm_launcher_runs_a_job_array_with_submitits_local_executor(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sweep = _sweep(tmp_path, "array", {"train.seed": [3]})
    no_slurm = _seofp(ws, "sweep", str(sweep), "--launcher", "slurm")
    assert no_slurm.returncode == 2 and "sbatch" in no_slurm.stderr
    done = _seofp(ws, "sweep", str(sweep), "--launcher", "slurm", "--cluster", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _points(ws) == {"train.seed=3": ["FINISHED"]}
    run = next(r for r in _runs(ws) if r.data.tags.get("seofp.sweep_point"))
    assert run.data.tags.get("mlflow.parentRunId")


def _point_processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of running `seofp sweep ... --point I` processes (from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"seofp_lab.cli" in args and b"--point" in args and b"--result-file" in args:
            found.append((int(proc.name), ppid))
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)  # a Ray cluster starts, four points run, one worker dies, a rerun
def test_ray_sweep_survives_a_killed_worker_and_a_rerun_runs_nothing_twice(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sweep = _sweep(tmp_path, "ray4", {"train.seed": [11, 12, 13, 14]})
    # long enough (8 tiny epochs) that a point's run is open for a few seconds to be killed
    sweep.write_text(sweep.read_text().replace("train.max_epochs=1", "train.max_epochs=8"))
    env = {**os.environ, "SEOFP_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "seofp_lab.cli", "sweep", str(sweep), "--launcher", "ray",
         "--jobs", "2"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 400
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            if not _point_processes():  # the store exists once points run (no race on its schema)
                time.sleep(0.5)
                continue
            # a point inside its training: its run is open (RUNNING, with the process's pid)
            open_runs = {r.data.tags.get("seofp.pid") for r in _runs(ws)
                         if r.info.status == "RUNNING" and r.data.tags.get("seofp.sweep_point")}
            for pid, worker in _point_processes():
                if str(pid) in open_runs:
                    os.kill(worker, signal.SIGKILL)  # the Ray worker running that task
                    killed = worker
                    break
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None, f"no point process seen to kill: {out}"
    assert proc.returncode == 0, out
    pts = _points(ws)
    assert set(pts) == {f"train.seed={s}" for s in (11, 12, 13, 14)}
    statuses = [s for v in pts.values() for s in v]
    assert all(v.count("FINISHED") == 1 for v in pts.values()), pts  # none twice
    assert statuses.count("KILLED") >= 1, pts  # the attempt whose worker died, closed as such
    rerun = _seofp(ws, "sweep", str(sweep), "--launcher", "ray", "--jobs", "2")
    assert rerun.returncode == 0 and "4/4 points done" in rerun.stdout
    assert _points(ws) == pts  # nothing ran again


def test_run_lookups_page_through_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    import mlflow  # noqa: PLC0415

    from seofp_lab import tracking  # noqa: PLC0415

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    client = mlflow.MlflowClient(tracking.tracking_uri())  # not a URI an earlier test set
    exp = client.create_experiment("many")
    monkeypatch.setattr(tracking, "SEARCH_PAGE", 4)  # pages of 4 runs: 11 runs need 3 pages
    ids = {client.create_run(exp, tags={"seofp.sweep": "x"}).info.run_id for _ in range(11)}
    assert {r.info.run_id for r in tracking.find_runs("many", "tags.`seofp.sweep` = 'x'")} == ids
    # a run id prefix and the report's run list find the oldest run too, past the first pages
    oldest = min(ids, key=lambda i: client.get_run(i).info.start_time)  # on the last page
    assert tracking.resolve_run_id(oldest[:12]) == oldest
    assert {r.info.run_id for r in tracking.all_runs()} == ids
    from seofp_lab.report.runs import _all_runs  # noqa: PLC0415

    assert {r.run_id for r in _all_runs()} == ids
