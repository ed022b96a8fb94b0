"""DDP that logs once (docs/runs.md#several-processes-ddp): ``seofp train`` on 2 CPU processes
(gloo) makes one MLflow run, one checkpoint, and the numbers of one process whose batch holds
both processes' mixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import TINY_TRAINING

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, load_config

ROOT = Path(__file__).resolve().parent.parent
EXP = CONFIGS_DIR / "experiment" / "demo_baseline.yaml"
# 8 mixtures per epoch: 2 processes x 2 steps x batch 2, or 1 process x 2 steps x batch 4
BASE = [*TINY_TRAINING, "train.max_epochs=2", "evaluation.audio_examples=0"]
DDP = ["train.batch_size=2", "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp",
       "tracking.experiment=ddp"]
SINGLE = ["train.batch_size=4", "tracking.experiment=single"]
# The two trainings see the same mixtures in the same steps from the same initial weights; the
# only difference is the order of the sums (two half-batch means averaged by gloo's all-reduce
# against one mean over the whole batch), about 1e-7 relative per step. Measured: after 4 Adam
# steps the weights differ by at most 7.5e-8 and the float32 metrics come out equal. The
# tolerances leave a margin of 100x and more, and stay far below what a real difference makes:
# Lightning's default (shuffled) DistributedSampler, which puts other mixtures into each step,
# moved the final validation SI-SDR by 0.04 dB, and one process with batch 2 (half the global
# batch) by 0.06 dB.
METRIC_TOL_DB = 1e-3
WEIGHT_TOL = 1e-5


def _env(ws: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
    env.update(SEOFP_WORKSPACE=str(ws), PYTHONPATH=str(ROOT))
    return env


def _curve(run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in tracking.client().get_metric_history(run_id, key))


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_logs_one_run_with_the_numbers_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seofp_lab.train.run import train

    ws = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "seofp_lab.cli", "train", str(EXP), *BASE, *DDP,
           "--no-progress"]
    proc = subprocess.run(cmd, env=_env(ws), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr.lower()
    assert proc.stdout.count(" trained in ") == 1  # rank 1 reports nothing

    monkeypatch.setenv("SEOFP_WORKSPACE", str(ws))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    c = tracking.client()
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()])
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    (run,) = runs
    rid = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags[tracking.TAG_BUDGET] == "2 epochs x 2 steps, DDP 2 processes x batch 2"
    assert run.data.params["train.devices"] == "2"
    assert tracking.download_artifact(rid, tracking.CONFIG_ARTIFACT).is_file()
    assert [p.name for p in (ws / "runs").iterdir()] == [rid]  # no folder of a second run
    assert sorted(p.name for p in (ws / "runs" / rid).iterdir()) == ["last.ckpt", "model.pt"]
    for key in ("train_loss", "val_loss", "val_si_sdr"):
        assert [s for s, _ in _curve(rid, key)] == [0, 1], key  # one point per epoch
    assert run.data.metrics["steps"] == 4 and run.data.metrics["epochs"] == 2

    # the same training in one process, batch 4 = 2 processes x batch 2
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "single"))
    ref = train(load_config(EXP, [*BASE, *SINGLE]), progress=False)
    one = tracking.get_run(ref.run_id)
    assert one.data.tags[tracking.TAG_BUDGET] == "2 epochs x 2 steps"
    for key in ("val_si_sdr", "val_loss", "val_noisy_si_sdr"):
        assert run.data.metrics[key] == pytest.approx(one.data.metrics[key], abs=METRIC_TOL_DB)
    for key in ("train_loss", "val_si_sdr"):
        ddp_curve, one_curve = _curve(rid, key), _curve(ref.run_id, key)
        assert [v for _, v in ddp_curve] == pytest.approx([v for _, v in one_curve],
                                                          abs=METRIC_TOL_DB), key
    a = torch.load(ws / "runs" / rid / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(ref.checkpoint, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert diff < WEIGHT_TOL

