"""The console script: help is fast, expected errors are one line without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seofp_lab.cli import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_bad_config_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "exp.yaml"
    bad.write_text("train:\n  max_epoch: 3\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "train.max_epoch" in err and "Traceback" not in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "no/such.yaml"]) == 2
    assert "no/such.yaml" in capsys.readouterr().err


def test_unknown_run_is_a_clear_error(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "0123456789abcdef"]) == 2
    assert "0123456789abcdef" in capsys.readouterr().err


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("seofp")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "demo" in proc.stdout


@pytest.mark.slow
def test_train_then_evaluate_from_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from seofp_lab.config import CONFIGS_DIR

    tiny = ["model.hidden=8", "model.layers=1", "train.max_epochs=1", "train.max_minutes=null",
            "train.batch_size=4", "train.threads=1", "corpus.mixtures_per_epoch=8",
            "corpus.valid_mixtures=4", "corpus.segment_seconds=1.0", "corpus.test_utterances=2",
            "corpus.test_mixtures_per_utterance=1", "evaluation.workers=1",
            "evaluation.audio_examples=0", "tracking.experiment=cli"]
    config = str(CONFIGS_DIR / "experiment" / "demo_baseline.yaml")
    assert main(["train", config, *tiny, "--evaluate", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "PESQ-wb" in out and "noisy input" in out
