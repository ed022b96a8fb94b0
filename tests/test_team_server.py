"""The team setup (docs/team.md): an `mlflow server` on a PostgreSQL backend store with proxied
artifact storage, used by two workspaces. Workspace A trains, evaluates and exports a tiny baseline
and a tiny s1e5 variant; workspace B starts empty and evaluates (C engine), compares, reports and
prepares a listening study from what the server holds: nothing in A's folder is read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from seofp_lab.config import CONFIGS_DIR
from tests._postgres import free_port, new_database, pg_cluster
from tests.tiny import TINY_TRAINING

ROOT = Path(__file__).resolve().parent.parent
TINY = [*TINY_TRAINING, "train.max_epochs=1", "corpus.test_utterances=4",
        "corpus.test_mixtures_per_utterance=1", "evaluation.workers=1",
        "evaluation.audio_examples=0", "evaluation.metrics=[pesq_wb,stoi,si_sdr]",
        "tracking.experiment=team"]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """`mlflow server` on PostgreSQL with --serve-artifacts on a free loopback port; always
    killed. Yields the tracking URI."""
    with pg_cluster() as server:
        db = new_database(server)
        port = free_port()
        log = (tmp_path / "mlflow-server.log").open("w")
        mlflow = Path(sys.executable).with_name("mlflow")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers
        proc = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", db, "--serve-artifacts",
             "--artifacts-destination", str(tmp_path / "server-artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        uri = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("mlflow server did not become healthy within 60 s:\n"
                                + (tmp_path / "mlflow-server.log").read_text()[-3000:])
                time.sleep(0.5)
            yield uri
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)
            log.close()


def _seofp(ws: Path, uri: str, *args: str) -> str:
    """Run `seofp ARGS` in a fresh process with workspace ``ws`` and the server's tracking URI."""
    env = {**os.environ, "SEOFP_WORKSPACE": str(ws), "MLFLOW_TRACKING_URI": uri,
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "seofp_lab.cli", *args], env=env, cwd=ws.parent,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"seofp {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _newest_run() -> str:
    from seofp_lab import tracking

    return tracking.find_runs("team")[0].info.run_id


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.kernel  # evaluate --engine c
@pytest.mark.timeout(600)  # about 90 s on an idle 2-core machine; seven `seofp` processes
def test_second_empty_workspace_works_from_the_server_alone(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    ws_a, ws_b = tmp_path / "a", tmp_path / "b"
    exp = CONFIGS_DIR / "experiment"
    _seofp(ws_a, mlflow_server, "train", str(exp / "demo_baseline.yaml"), *TINY, "--evaluate",
           "--no-progress")
    base = _newest_run()
    _seofp(ws_a, mlflow_server, "train", str(exp / "demo_s1e5.yaml"), *TINY,
           f"compression.init_from={base}", "--no-control", "--evaluate", "--no-progress")
    variant = _newest_run()
    assert variant != base
    _seofp(ws_a, mlflow_server, "export", variant)
    assert (ws_a / "exports" / f"{variant}.seofp").is_file()
    shutil.rmtree(ws_a)  # the first machine is gone: B may use nothing of it
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    exported = len(client.get_metric_history(variant, "size_bytes"))

    ws_b.mkdir()
    out = _seofp(ws_b, mlflow_server, "evaluate", variant, "--engine", "c", "--workers", "1")
    assert "PESQ-wb" in out
    # the C engine ran A's export, fetched from the run's artifacts, not a new export
    assert (ws_b / "exports" / f"{variant}.seofp").is_file()
    assert len(client.get_metric_history(variant, "size_bytes")) == exported
    out = _seofp(ws_b, mlflow_server, "compare", base, variant, "--resamples", "200")
    assert "stoi" in out.lower()
    report = tmp_path / "report.html"
    _seofp(ws_b, mlflow_server, "report", base, variant, "--out", str(report))
    assert report.is_file() and variant[:8] in report.read_text()

    study = yaml.safe_load((ROOT / "studies" / "demo" / "study.yaml").read_text())
    study.update(name="team", runs_experiment="team", baseline_run="latest:baseline",
                 compressed_run="latest:seofp", items={"count": 4},
                 trials={"practice": 1, "blocks": 2, "test_per_block": 2, "catch_per_block": 1,
                         "null_per_block": 0, "break_seconds": 0},
                 ladder={"enabled": False})
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "study.yaml").write_text(yaml.safe_dump(study))
    out = _seofp(ws_b, mlflow_server, "study", "prepare", str(study_dir))
    assert "Prepared 4 items" in out
    # both enhanced test sets came from the runs' artifacts, their paths rewritten to B
    from seofp_lab.evaluate.enhanced import read_manifest

    for run in (base, variant):
        rows = read_manifest(ws_b / "enhanced" / run)
        assert len(rows) == 4
        assert all(Path(r[k]).is_file() and Path(r[k]).is_relative_to(ws_b)
                   for r in rows for k in ("noisy", "clean", "enhanced"))
    assert not ws_a.exists()
