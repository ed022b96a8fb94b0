"""Run lifecycle (docs/runs.md): who sets a run's status, signals, checkpoints, the divergence
guard, a store several processes create at once, a workspace that can be copied or moved.

One tiny training (module fixture) is made once; each test works on its own copy of that
workspace, so every test also exercises the re-rooting of a copied store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny import TINY_TRAINING

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
EXP = CONFIGS_DIR / "experiment" / "demo_baseline.yaml"
TINY = [*TINY_TRAINING, "train.max_epochs=2", "evaluation.audio_examples=0",
        "evaluation.workers=1", "corpus.test_utterances=3",
        "corpus.test_mixtures_per_utterance=1", "tracking.experiment=runs"]


def _env(ws: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(SEOFP_WORKSPACE=str(ws), PYTHONPATH=str(ROOT))
    return env


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(workspace, run id) of one finished 2-epoch tiny training; copy it, never change it."""
    from seofp_lab.train.run import train

    ws = tmp_path_factory.mktemp("trained") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(ws))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = train(load_config(EXP, TINY), progress=False)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri sets it
    yield ws, result.run_id


@pytest.fixture
def copy(trained: tuple[Path, str], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A copy of the trained workspace, made the current one."""
    ws = tmp_path / "copy"
    shutil.copytree(trained[0], ws)
    monkeypatch.setenv("SEOFP_WORKSPACE", str(ws))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return ws, trained[1]


# ------------------------------------------------------------------------------- shared state
_RACER = """
import sys, time
from pathlib import Path
from seofp_lab import tracking
import mlflow.store.tracking.sqlalchemy_store  # the slow imports before the start line
Path(sys.argv[1], "ready" + sys.argv[2]).touch()
while not Path(sys.argv[1], "go").exists():
    time.sleep(0.005)
with tracking.start_run("race", "racer" + sys.argv[2]) as run_id:
    tracking.log_metrics({"x": 1.0})
print(run_id)
"""


@pytest.mark.slow
def test_three_processes_create_one_new_store_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, flags = tmp_path / "ws", tmp_path / "flags"
    flags.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(flags), str(i)], env=_env(ws),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    deadline = time.monotonic() + 120
    while len(list(flags.glob("ready*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    (flags / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    monkeypatch.setenv("SEOFP_WORKSPACE", str(ws))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier test's store
    runs = tracking.find_runs("race")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3


@pytest.mark.slow
def test_a_copied_workspace_works_after_the_original_is_deleted(
    trained: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seofp_lab.evaluate.run import evaluate
    from seofp_lab.report.build import build_report

    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(trained[0], first)
    monkeypatch.setenv("SEOFP_WORKSPACE", str(first))
    run_id = trained[1]
    tracking.get_run(run_id)  # opened once here: its store now points at first/
    shutil.copytree(first, second)
    shutil.rmtree(first)
    monkeypatch.setenv("SEOFP_WORKSPACE", str(second))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow sets it to the first
    assert tracking.get_run(run_id).info.artifact_uri.startswith((second / "mlartifacts")
                                                                 .as_uri())
    ev = evaluate(run_id, workers=1)
    assert len(ev.rows) == 3 and not first.exists()  # nothing written to the deleted original
    assert (second / "mlartifacts" / "runs" / run_id / "artifacts" / "evaluation"
            / "per_utterance.csv").is_file()
    res = build_report(run_ids=[run_id], out=tmp_path / "r.html")
    assert "PESQ" in res.html.read_text() and not first.exists()


def _hammer_cache(args: tuple[str, int]) -> None:
    from seofp_lab.evaluate.run import _store_noisy

    root, worker = args
    for i in range(40):
        _store_noisy(Path(root), [{"id": f"w{worker}_{i}", "noisy_pesq_wb": float(i)}])


def test_evaluations_finishing_at_once_keep_every_noisy_score(tmp_path: Path) -> None:
    """Four processes update the noisy-score cache of one test set 40 times each: no error
    (a fixed temporary name made one process rename another's file away) and no lost entry."""
    import json
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_hammer_cache, [(str(tmp_path), w) for w in range(4)])
    cache = json.loads((tmp_path / "noisy_scores.json").read_text())
    assert len(cache) == 160 and cache["w3_39"] == {"pesq_wb": 39.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy_scores.json",
                                                          "noisy_scores.json.lock"]


# ------------------------------------------------------------------------------------ statuses
def test_export_leaves_a_failed_run_failed(copy: tuple[Path, str]) -> None:
    from seofp_lab.infer.export import export_run

    ckpt = tracking.download_artifact(copy[1], tracking.CHECKPOINT_ARTIFACT)
    with pytest.raises(RuntimeError), tracking.start_run("runs", "crashed") as crashed:
        tracking.log_artifact(ckpt, "checkpoint")
        raise RuntimeError("a crash after the checkpoint")
    assert tracking.get_run(crashed).info.status == "FAILED"
    export_run(crashed)
    run = tracking.get_run(crashed)
    assert run.info.status == "FAILED" and "size_bytes" in run.data.metrics


_KILL_WHILE_LOGGING = """
import os, signal, sys
from seofp_lab import tracking
from seofp_lab.evaluate.run import evaluate

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # as a kill -9 in the middle of the logging

tracking.log_table = killed
evaluate(sys.argv[1], workers=1)
"""


@pytest.mark.slow
def test_evaluate_killed_while_logging_leaves_the_run_as_it_was(copy: tuple[Path, str]) -> None:
    ws, run_id = copy
    before = tracking.get_run(run_id)
    proc = subprocess.run([sys.executable, "-c", _KILL_WHILE_LOGGING, run_id], env=_env(ws),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    after = tracking.get_run(run_id)
    assert after.info.status == before.info.status == "FINISHED"
    assert after.data.metrics == before.data.metrics  # no partial scores


# ------------------------------------------------------------------------- signals, checkpoints
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed_keeps_the_epoch_checkpoint_and_resume_finishes_it(
    copy: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from seofp_lab.cli import main

    ws, trained_id = copy
    cmd = [sys.executable, "-m", "seofp_lab.cli", "train", str(EXP), *TINY,
           "train.max_epochs=8", "tracking.experiment=killed", "--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(ws), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not [
        p for p in ws.glob("runs/*/last.ckpt") if p.parent.name != trained_id
    ]:  # the new run's first epoch checkpoint
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted by SIGINT" in err and "KILLED" in err and "Traceback" not in err
    (run,) = tracking.find_runs("killed")
    assert run.info.status == "KILLED"
    folder = ws / "runs" / run.info.run_id
    import torch

    state = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    assert 0 <= state["epoch"] < 7 and state["optimizer_states"]
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # no temporary left behind

    # --resume continues it into the same run, from the epoch after the checkpoint's
    assert main(["train", "--resume", run.info.run_id[:8], "--no-progress"]) == 0, \
        capsys.readouterr().err
    (again,) = tracking.find_runs("killed")
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert again.data.metrics["epochs"] == 8
    assert again.data.tags[tracking.TAG_RESUMED].startswith(f"after epoch {state['epoch'] + 1} ")
    steps = {m.step for m in tracking.client().get_metric_history(run.info.run_id, "train_loss")}
    assert steps == set(range(8))
    assert main(["train", "--resume", run.info.run_id]) == 2
    assert "is FINISHED" in capsys.readouterr().err


_KILL_MID_EPOCH = """
import os, signal, sys
from seofp_lab.cli import main
from seofp_lab.train.module import EnhanceModule

step = EnhanceModule.training_step

def killed_in_epoch_1(self, batch, batch_idx):
    if self.current_epoch == 1 and batch_idx == 1:  # one step of epoch 1 done: a kill -9
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, batch, batch_idx)

EnhanceModule.training_step = killed_in_epoch_1
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_leaves_a_running_run_that_resume_finishes_as_if_never_killed(
    copy: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The copied run trained TINY for 2 epochs uninterrupted; the same config killed -9 in the
    middle of epoch 1 and resumed ends with the same curves and numbers."""
    import socket

    import torch

    from seofp_lab.cli import main

    ws, trained_id = copy
    cmd = [sys.executable, "-c", _KILL_MID_EPOCH, "train", str(EXP), *TINY,
           "tracking.experiment=sigkill", "--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(ws), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    (run,) = tracking.find_runs("sigkill")
    rid = run.info.run_id
    assert run.info.status == "RUNNING"  # nobody could say otherwise
    assert run.data.tags[tracking.TAG_PID] == str(proc.pid)
    ckpt = ws / "runs" / rid / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"] == 0
    assert [m.step for m in tracking.client().get_metric_history(rid, "val_si_sdr")] == [0]

    assert main(["train", "--state", rid[:8]]) == 0
    shown = capsys.readouterr().out
    assert (f"{rid} (" in shown and f"RUNNING, but its process {proc.pid} on "
            f"{socket.gethostname()} is gone" in shown and "last.ckpt after epoch 1" in shown
            and f"seofp train --resume {rid[:8]}" in shown), shown

    assert main(["train", "--resume", rid[:8], "--no-progress"]) == 0, capsys.readouterr().err
    again = tracking.get_run(rid)
    assert again.info.status == "FINISHED" and again.data.metrics["epochs"] == 2
    assert again.data.tags[tracking.TAG_PID] == str(os.getpid())  # the resuming process
    assert again.data.tags[tracking.TAG_RESUMED] == "after epoch 1 of 2"
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt", "model.pt"]
    whole = tracking.get_run(trained_id)
    for key in ("train_loss", "val_loss", "val_si_sdr"):
        got = sorted((m.step, m.value) for m in tracking.client().get_metric_history(rid, key))
        want = sorted((m.step, m.value)
                      for m in tracking.client().get_metric_history(trained_id, key))
        assert [s for s, _ in got] == [0, 1], key  # one point per epoch, none twice
        assert [v for _, v in got] == [v for _, v in want], key  # bitwise: the same training
    for key in ("val_si_sdr", "stored_values", "steps"):
        assert again.data.metrics[key] == whole.data.metrics[key], key
    assert main(["train", "--state", rid]) == 0
    assert capsys.readouterr().out.strip().endswith(": FINISHED")


@pytest.mark.slow
def test_a_pruned_seofp_run_interrupted_after_an_epoch_resumes_to_the_same_weights_and_masks(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """s1e5 on one-shot 50% pruning at epoch 0, 2 epochs: stopped by
    SIGINT right after epoch 0's checkpoint and resumed, it ends bitwise equal to the same
    config trained without a stop (weights, pruned positions, format, metrics)."""
    import torch

    from seofp_lab.cli import main
    from seofp_lab.train.run import EpochCheckpoint, train

    comp = [*TINY, "compression=s1e5_pruned50", "compression.pruning.schedule=one_shot",
            "train.max_epochs=2"]
    whole = train(load_config(EXP, [*comp, "tracking.experiment=whole"]), progress=False)

    save = EpochCheckpoint.on_train_epoch_end

    def stopped_after_epoch_0(self, trainer, pl_module):  # noqa: ANN001, ANN202 - the hook
        save(self, trainer, pl_module)
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C once epoch 0 is on disk

    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", stopped_after_epoch_0)
    assert main(["train", str(EXP), *comp, "tracking.experiment=stopped", "--no-progress"]) == 130
    (run,) = tracking.find_runs("stopped")
    rid = run.info.run_id
    assert run.info.status == "KILLED"
    state = torch.load(workspace / "runs" / rid / "last.ckpt", map_location="cpu",
                       weights_only=False)
    saved = state["callbacks"]["CompressionCallback"]
    assert state["epoch"] == 0 and saved["prune_steps"] and saved["masks"]
    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", save)
    capsys.readouterr()

    assert main(["train", "--resume", rid, "--no-progress"]) == 0, capsys.readouterr().err
    again = tracking.get_run(rid)
    assert again.info.status == "FINISHED" and again.data.metrics["epochs"] == 2
    a = torch.load(workspace / "runs" / rid / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(whole.checkpoint, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # the same values, so the same zeros (masks)
    assert sum(int((v == 0).sum()) for v in a.values()) > 0
    m = tracking.get_run(whole.run_id).data.metrics
    for key in ("val_si_sdr", "sparsity", "bits_per_weight", "size_bytes"):
        assert again.data.metrics[key] == m[key], key
    assert again.data.tags[tracking.TAG_FORMAT] == "s1e5"


def test_an_abandoned_run_is_closed_killed_in_one_command_and_a_live_one_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from seofp_lab.cli import main

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = done.stdout.strip()  # a process that has ended
    c = tracking.client()
    host = socket.gethostname()
    dead = c.create_run(tracking.experiment_id("runs"),
                        tags={tracking.TAG_HOST: host, tracking.TAG_PID: dead_pid}).info.run_id
    live = c.create_run(tracking.experiment_id("runs"),
                        tags={tracking.TAG_HOST: host,
                              tracking.TAG_PID: str(os.getpid())}).info.run_id

    assert main(["train", "--state", live]) == 0
    assert f"RUNNING; its process {os.getpid()} on {host} still runs" in capsys.readouterr().out
    assert main(["train", "--abandon", live]) == 2
    assert "still runs: stop it first" in capsys.readouterr().err
    assert main(["train", "--resume", live]) == 2
    assert "is RUNNING and its process" in capsys.readouterr().err
    assert c.get_run(live).info.status == "RUNNING"

    assert main(["train", "--abandon", dead[:8]]) == 0
    assert f"run {dead} is now KILLED" in capsys.readouterr().out
    after = c.get_run(dead)
    assert after.info.status == "KILLED" and after.info.end_time is not None
    assert f"process {dead_pid} on {host} ended" in after.data.tags["seofp.killed_reason"]
    assert main(["train", "--abandon", dead]) == 2
    assert "Expected a RUNNING run to abandon but run" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_during_scoring_ends_the_worker_processes(copy: tuple[Path, str]) -> None:
    ws, run_id = copy
    cmd = [sys.executable, "-m", "seofp_lab.cli", "evaluate", run_id, "--workers", "2"]
    proc = subprocess.Popen(cmd, env=_env(ws), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 180
    workers: list[int] = []
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        workers = [c for c in _children(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        time.sleep(0.02)
    assert len(workers) == 2, "the scoring pool never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "interrupted by SIGTERM" in err, err[-2000:]
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)]
    assert tracking.get_run(run_id).info.status == "FINISHED"


# --------------------------------------------------------------------------- silent wrong numbers
def test_curves_have_one_point_per_epoch_and_the_guard_is_recorded(
    copy: tuple[Path, str]
) -> None:
    _, run_id = copy
    client = tracking.client()
    for key in ("val_si_sdr", "val_loss"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == [0, 1]  # no extra step-0 point from the final summary
    run = tracking.get_run(run_id)
    m = run.data.metrics
    below = m["val_si_sdr"] < m["val_noisy_si_sdr"]
    assert (tracking.TAG_DIVERGED in run.data.tags) == below


def test_divergence_rule() -> None:
    from seofp_lab.train.run import divergence

    assert divergence({"val_si_sdr": 1.9, "val_noisy_si_sdr": 12.7}).startswith(
        "validation SI-SDR 1.90 dB ended below the noisy input's 12.70 dB")
    assert divergence({"val_si_sdr": 13.0, "val_noisy_si_sdr": 12.7}) is None
    assert divergence({"val_si_sdr": 13.0}) is None


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_visibly_and_keeps_the_last_good_checkpoint(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seofp_lab.train.module import EnhanceModule
    from seofp_lab.train.run import TrainingDiverged, train

    step = EnhanceModule._step

    def poisoned(self, batch, stage):  # noqa: ANN001, ANN202 - the patched method
        noisy, clean = batch
        if self.current_epoch >= 1:  # the second epoch goes NaN
            noisy = noisy * float("nan")
        return step(self, (noisy, clean), stage)

    monkeypatch.setattr(EnhanceModule, "_step", poisoned)
    with pytest.raises(TrainingDiverged, match="finite train loss.*last good epoch"):
        train(load_config(EXP, [*TINY, "train.max_epochs=3"]), progress=False)
    (run,) = tracking.find_runs("runs")
    assert run.info.status == "FAILED"
    assert "finite train loss" in run.data.tags[tracking.TAG_DIVERGED]
    ckpt = workspace / "runs" / run.info.run_id / "last.ckpt"
    import torch

    assert torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"] == 0


def test_max_utterances_is_checked_and_a_subset_is_not_the_headline(
    copy: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from seofp_lab.cli import main
    from seofp_lab.errors import SeofpError
    from seofp_lab.evaluate.run import evaluate

    _, run_id = copy
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", run_id, "--max-utterances", "-1"])
    assert exc.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err
    with pytest.raises(SeofpError, match="max_utterances >= 1"):
        evaluate(run_id, max_utterances=-1)
    full = evaluate(run_id, workers=1).metrics
    part = evaluate(run_id, workers=1, max_utterances=1).metrics
    m = tracking.get_run(run_id).data.metrics
    assert m["pesq_wb"] == pytest.approx(full["pesq_wb"]) and m["test_utterances"] == 3
    assert m["subset/pesq_wb"] == pytest.approx(part["pesq_wb"])
    assert m["subset/test_utterances"] == 1


# ---------------------------------------------------------------------------------- config values
@pytest.mark.parametrize(
    ("override", "field", "accepted"),
    [
        ("train.max_minutes=.inf", "train.max_minutes", "finite"),
        ("train.max_minutes=1e300", "train.max_minutes", "<= 43200"),
        ("corpus.segment_seconds=.inf", "corpus.segment_seconds", "finite"),
        ("corpus.segment_seconds=1e12", "corpus.segment_seconds", "<= 60"),
        ("train.lr=.inf", "train.lr", "finite"),
        ("train.lr=1e38", "train.lr", "<= 10"),
        ("train.lr=.nan", "train.lr", "finite"),
        ("train.devices=0", "train.devices", ">= 1 or 'auto'"),
        ("tracking.experiment=''", "tracking.experiment", "1 to 200 characters"),
        ("tracking.experiment='  '", "tracking.experiment", "1 to 200 characters"),
    ],
)
def test_absurd_values_are_refused_naming_field_and_range(
    override: str, field: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(EXP, [override])
    assert f"{field}:" in str(exc.value) and accepted in str(exc.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [("train.strategy=bogus", "train.strategy: 'bogus' is not a Lightning strategy"),
     ("train.strategy=ddp_spawn", "train.strategy: 'ddp_spawn' trains in worker processes"),
     ("train.strategy=ddp_fork", "train.strategy: 'ddp_fork' trains in worker processes"),
     ("train.accelerator=gpu", "train.accelerator: 'gpu' but this machine has no")],
)
def test_machine_settings_are_refused_before_any_run(
    workspace: Path, override: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from seofp_lab.cli import main

    if "gpu" in override and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", str(EXP), *TINY, override, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert tracking.find_runs("runs") == []  # no FAILED run left behind


def test_init_from_takes_a_unique_run_id_prefix(copy: tuple[Path, str]) -> None:
    from seofp_lab.train.run import train

    _, run_id = copy
    cfg = load_config(EXP, [*TINY, "train.max_epochs=1", f"compression.init_from={run_id[:8]}",
                            "tracking.experiment=finetune"])
    result = train(cfg, progress=False)
    assert tracking.get_run(result.run_id).data.tags[tracking.TAG_BASELINE] == run_id
