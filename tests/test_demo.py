"""The demo end to end with a tiny model: every variant trains, exports and evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import TINY_TRAINING

from seofp_lab.demo import print_summary, run_demo, write_report

TINY = (*TINY_TRAINING, "train.max_epochs=1", "evaluation.audio_examples=1",
        "tracking.experiment=demo-test")


@pytest.mark.slow
def test_demo_runs_every_variant(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_demo(max_utterances=4, extra_overrides=TINY, progress=False)
    assert list(result.runs) == ["fp32 baseline", "fp32 control", "SEOFP s1e5",
                                 "pruned 50% + s1e5"]
    base, control, seofp, pruned = result.metrics.values()
    assert control["size_bytes"] == base["size_bytes"]  # fp32, same model
    from seofp_lab import tracking

    runs = {k: tracking.get_run(v).data for k, v in result.runs.items()}
    assert runs["fp32 control"].tags[tracking.TAG_ROLE] == "control"
    assert runs["fp32 control"].tags[tracking.TAG_BASELINE] == result.runs["fp32 baseline"]
    for label in ("SEOFP s1e5", "pruned 50% + s1e5"):  # one control serves both: same recipe
        assert runs[label].tags[tracking.TAG_CONTROL] == result.runs["fp32 control"]
        assert runs[label].tags[tracking.TAG_BUDGET] == runs["fp32 control"].tags[
            tracking.TAG_BUDGET]
        # the primary paired metrics are against the control, the second set against the baseline
        assert runs[label].tags[tracking.TAG_PAIRED_AGAINST] == result.runs["fp32 control"]
        assert "paired_stoi_delta" in runs[label].metrics
        assert "baseline_paired_stoi_delta" in runs[label].metrics
    assert set(result.paired) == {"SEOFP s1e5", "pruned 50% + s1e5"}
    assert seofp["compression_pct"] > 75.0 and seofp["size_bytes"] < base["size_bytes"] / 4
    assert pruned["size_bytes"] < seofp["size_bytes"] and pruned["sparsity"] >= 0.45
    assert "speedup_vs_fp32" in seofp and "pesq_wb" in pruned
    print_summary(result)
    out = capsys.readouterr().out
    assert "pruned 50% + s1e5" in out and "seofp ui" in out
    assert "Δ vs control" in out and "Δ vs baseline" in out
    flat = " ".join(out.split())  # the caption wraps at the console width
    assert "units behind each CI: SEOFP s1e5: 4 mixtures, 4 utterances" in flat, flat[-900:]
    html = Path(write_report(result)).read_text()  # the report of the real demo runs
    assert all(run_id[:8] in html for run_id in result.runs.values())


def test_paired_summary_labels_the_deltas_by_the_runs_control() -> None:
    """The control's comparison is the unprefixed set whether or not the baseline's succeeded."""
    from rich.console import Console

    from seofp_lab.demo import DemoResult, paired_summary

    def shown(result: DemoResult) -> list[str]:
        console = Console(width=250, record=True)
        console.print(paired_summary(result))
        return [line for line in console.export_text().splitlines() if "PESQ-wb" in line]

    only = {"paired_pesq_wb_delta": 0.25, "paired_pesq_wb_ci_low": 0.125,
            "paired_pesq_wb_ci_high": 0.375, "paired_pesq_wb_n_units": 41.0}
    with_control = shown(DemoResult(paired={"v": only}, controls={"v": "ctl"}))
    cells = [c.strip() for c in with_control[0].split("│")]
    assert cells[3].startswith("+0.250 [+0.125, +0.375] non-inferior") and cells[4] == "–"
    no_control = shown(DemoResult(paired={"v": only}))  # --no-control: against the baseline
    cells = [c.strip() for c in no_control[0].split("│")]
    assert cells[3] == "–" and cells[4].startswith("+0.250 [+0.125, +0.375]")
