"""Smoke training: a tiny model on a handful of embedded clips, logged to a temporary MLflow store
and read back through MlflowClient; then evaluation logs the fixed metric names."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, load_config

TINY = [
    "model=blstm_small",
    "model.hidden=8",
    "model.layers=1",
    "train.max_epochs=2",
    "train.batch_size=4",
    "train.threads=1",
    "corpus.mixtures_per_epoch=8",
    "corpus.valid_mixtures=4",
    "corpus.segment_seconds=1.0",
    "corpus.test_utterances=3",
    "corpus.test_mixtures_per_utterance=1",
    "evaluation.audio_examples=2",
    "tracking.experiment=smoke",
]


@pytest.mark.slow
def test_tiny_training_is_tracked_and_evaluated(workspace: Path) -> None:
    from seofp_lab.evaluate.run import evaluate
    from seofp_lab.train.run import train

    cfg = load_config(CONFIGS_DIR / "experiment" / "demo_baseline.yaml", TINY)
    result = train(cfg, progress=False)
    assert result.checkpoint.is_file()

    client = MlflowClient(tracking.tracking_uri())
    assert tracking.tracking_uri().startswith(f"sqlite:///{workspace}")
    run = client.get_run(result.run_id)
    assert run.data.tags[tracking.TAG_ROLE] == "baseline"
    assert run.data.tags[tracking.TAG_MODEL] == "blstm"
    assert run.data.tags[tracking.TAG_CORPUS] == "embedded"
    assert run.data.params["train.max_epochs"] == "2"
    history = client.get_metric_history(result.run_id, "train_loss")
    assert len(history) == 2 and all(h.value == h.value for h in history)  # finite, per epoch
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "checkpoint", "audio"} <= artifacts
    audio = {Path(a.path).name for a in client.list_artifacts(result.run_id, "audio")}
    assert "examples.html" in audio and "val00_enhanced.wav" in audio

    ev = evaluate(result.run_id, workers=1)
    assert len(ev.rows) == 3
    assert all(r["utterance"] and r["noise_clip"] for r in ev.rows)  # the paired stats' units
    run = client.get_run(result.run_id)
    for name in ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "csig", "cbak", "covl"):
        assert name in run.data.metrics and f"noisy_{name}" in run.data.metrics
        assert run.data.tags[tracking.TAG_METRIC + name]  # the package, version and mode
    assert run.data.tags[tracking.TAG_METRIC + "pesq_wb"].startswith("pesq 0.")
    assert any(k.startswith("stoi_snr") for k in run.data.metrics)
    ev_files = {Path(a.path).name for a in client.list_artifacts(result.run_id, "evaluation")}
    assert {"per_utterance.csv", "per_snr.png"} <= ev_files


@pytest.mark.slow
def test_compressed_run_exports_and_runs_on_the_c_engine(workspace: Path) -> None:
    from seofp_lab.evaluate.run import evaluate
    from seofp_lab.infer.export import export_run
    from seofp_lab.train.run import train

    cfg = load_config(
        CONFIGS_DIR / "experiment" / "demo_s1e5.yaml", [*TINY, "train.max_minutes=null"]
    )
    result = train(cfg, progress=False)
    client = MlflowClient(tracking.tracking_uri())
    run = client.get_run(result.run_id)
    assert run.data.tags[tracking.TAG_ROLE] == "seofp"
    assert run.data.tags[tracking.TAG_FORMAT] == "s1e5"
    assert run.data.metrics["bits_per_weight"] <= 6.0
    assert {"exponent_histogram.png", "layers.csv"} <= {
        Path(a.path).name for a in client.list_artifacts(result.run_id, "compression")
    }

    path = export_run(result.run_id)
    run = client.get_run(result.run_id)
    assert run.data.metrics["size_bytes"] == path.stat().st_size
    assert run.data.metrics["compression_pct"] > 75.0
    # `seofp enhance RUN_ID` uses the cached export, and exports again over an older version
    from seofp_lab.infer import modelfile
    from seofp_lab.infer.enhance_cli import model_path

    assert model_path(result.run_id) == path
    current = path.read_bytes()
    old = current[:6] + struct.pack("<H", 1) + current[8:-4]
    path.write_bytes(old + struct.pack("<I", zlib.crc32(old)))
    assert modelfile.file_version(path) == 1
    assert model_path(result.run_id) == path and path.read_bytes() == current
    torch_scores = evaluate(result.run_id, workers=1).metrics
    c_scores = evaluate(result.run_id, engine="c", workers=1).metrics
    for name in ("pesq_wb", "stoi", "si_sdr"):
        assert c_scores[name] == pytest.approx(torch_scores[name], abs=1e-3)
    run = client.get_run(result.run_id)
    assert "engine_intadd_pesq_wb" in run.data.metrics
