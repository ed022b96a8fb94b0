"""The demo end to end with a tiny model: every variant trains, exports and evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest

from seofp_lab.demo import print_summary, run_demo, write_report

TINY = (
    "model.hidden=8",
    "model.layers=1",
    "train.max_epochs=1",
    "train.max_minutes=null",
    "train.batch_size=4",
    "train.threads=1",
    "corpus.mixtures_per_epoch=8",
    "corpus.valid_mixtures=4",
    "corpus.segment_seconds=1.0",
    "evaluation.audio_examples=1",
    "tracking.experiment=demo-test",
)


@pytest.mark.slow
def test_demo_runs_every_variant(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_demo(max_utterances=2, extra_overrides=TINY, progress=False)
    assert list(result.runs) == ["fp32 baseline", "SEOFP s1e5", "pruned 50% + s1e5"]
    base, seofp, pruned = result.metrics.values()
    assert seofp["compression_pct"] > 75.0 and seofp["size_bytes"] < base["size_bytes"] / 4
    assert pruned["size_bytes"] < seofp["size_bytes"] and pruned["sparsity"] >= 0.45
    assert "speedup_vs_fp32" in seofp and "pesq_wb" in pruned
    print_summary(result)
    out = capsys.readouterr().out
    assert "pruned 50% + s1e5" in out and "seofp ui" in out
    html = Path(write_report(result)).read_text()  # the report of the real demo runs
    assert all(run_id[:8] in html for run_id in result.runs.values())
