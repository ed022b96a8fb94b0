"""Staged sweeps: baseline -> shared equal-budget control -> variants, tagged, and a re-run that
skips every finished point; configs/sweep/paper_table.yaml plans and validates."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from tiny import TINY_TRAINING

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, ConfigError
from seofp_lab.models import stored_values
from seofp_lab.train.checkpoint import make_model
from seofp_lab.train.control import control_config
from seofp_lab.train.sweep import (
    SweepChain,
    SweepConfig,
    SweepVariant,
    load_sweep,
    plan,
    point_config,
    points,
)

PAPER = CONFIGS_DIR / "sweep" / "paper_table.yaml"
TINY = [
    *TINY_TRAINING,
    "evaluation.audio_examples=0",
    "evaluation.max_utterances=3",
    "evaluation.metrics=[stoi, si_sdr]",
    "evaluation.workers=1",
    "tracking.experiment=sweep-test",
]


def _staged(bench: bool = False) -> SweepConfig:
    return SweepConfig(
        name="tiny",
        overrides=TINY,
        bench=bench,
        bench_seconds=0.5,
        bench_samples=3,
        chains=[SweepChain(
            name="small", experiment="demo_baseline",
            baseline=["train.max_epochs=1"], finetune=["train.max_epochs=1", "train.lr=0.001"],
            variants=[SweepVariant(name="s1e5", compression="s1e5"),
                      SweepVariant(name="pruned", compression="s1e5_pruned50")],
        )],
    )


def test_paper_table_plans_every_point_and_each_loads() -> None:
    sweep = load_sweep(PAPER)
    pts = plan(sweep)
    assert sweep.name == "paper_table" and len(pts) == 10 == len(points(sweep))
    assert [(p.key, p.stage) for p in pts[:5]] == [
        ("blstm/baseline", "baseline"), ("blstm/control", "control"), ("blstm/s1e8", "variant"),
        ("blstm/s1e5", "variant"), ("blstm/s1e5_pruned50", "variant")]
    assert pts[1].control_for == ("blstm/s1e8", "blstm/s1e5", "blstm/s1e5_pruned50")
    assert all(p.needs == ("fcn/baseline", "fcn/control") for p in pts[7:])
    want = {"blstm": 2_877_929, "fcn": 450_301}  # the papers' parameter counts
    for p in pts:
        cfg = point_config(sweep, p, {})  # load_config on every point, with placeholders
        assert cfg.corpus.name == "lab" and cfg.tracking.tags[tracking.TAG_SWEEP_POINT] == p.key
        if p.stage == "baseline":
            assert stored_values(make_model(cfg)) == want[cfg.model.name]
        else:
            assert cfg.compression.init_from == f"<{p.needs[0]}>"
            assert cfg.compression.compressed  # a control's: its variants', removed when run
        if p.stage == "control":
            assert control_config(cfg).compression.role == "control"


def test_grid_form_keeps_working_and_forms_are_exclusive() -> None:
    grid = SweepConfig(experiment="demo_baseline", grid={"train.seed": [0, 1]}, overrides=["x=1"])
    assert [(p.key, p.stage, p.overrides) for p in plan(grid)] == [
        ("train.seed=0", "grid", ("x=1", "train.seed=0")),
        ("train.seed=1", "grid", ("x=1", "train.seed=1"))]
    with pytest.raises(ValueError, match="either 'experiment'"):
        SweepConfig(experiment="demo_baseline", chains=_staged().chains)
    with pytest.raises(ValueError, match="distinct variant names"):
        SweepChain(name="c", experiment="demo_baseline", variants=[SweepVariant(name="control")])


def test_a_fp32_variant_is_refused() -> None:
    sweep = _staged().model_copy(update={"chains": [SweepChain(
        name="c", experiment="demo_baseline", variants=[SweepVariant(name="plain")])]})
    with pytest.raises(ConfigError, match="not compressed"):
        plan(sweep)


def _sweep_runs(name: str = "tiny") -> list:
    return tracking.find_runs("sweep-test", f"tags.`{tracking.TAG_SWEEP}` = '{name}'")


@pytest.mark.slow
@pytest.mark.timeout(600)  # 4 tiny trainings, 4 evaluations, 2 benchmarks: 233 s measured on 2
# cores shared with other jobs (load ~4.5, nice 15); the default 300 s cut it once there
def test_staged_sweep_runs_in_order_tags_and_resumes(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seofp_lab.train.sweep_run import SweepError, list_points, run_sweep

    sweep = _staged(bench=True)
    pts = plan(sweep)
    with pytest.raises(SweepError, match="point 0 \\(small/baseline\\)"):
        run_sweep(sweep, pts, only=2, progress=False)  # its baseline has no run yet
    runs = run_sweep(sweep, pts, progress=False)
    assert list(runs) == ["small/baseline", "small/control", "small/s1e5", "small/pruned"]
    data = {k: tracking.get_run(v).data for k, v in runs.items()}
    base, control = runs["small/baseline"], runs["small/control"]
    assert data["small/control"].tags[tracking.TAG_ROLE] == "control"
    assert data["small/control"].tags[tracking.TAG_BASELINE] == base
    for key, stage in (("small/baseline", "baseline"), ("small/control", "control"),
                       ("small/s1e5", "variant"), ("small/pruned", "variant")):
        tags = data[key].tags
        assert tags[tracking.TAG_SWEEP] == "tiny" and tags[tracking.TAG_SWEEP_POINT] == key
        assert tags[tracking.TAG_SWEEP_STAGE] == stage
        assert "stoi" in data[key].metrics and "size_bytes" in data[key].metrics
    for key in ("small/s1e5", "small/pruned"):  # one control for both: the same recipe
        assert data[key].tags[tracking.TAG_CONTROL] == control
        assert data[key].tags[tracking.TAG_BASELINE] == base
        assert "speedup_vs_fp32" in data[key].metrics  # benchmarked on the C engine
        assert "paired_stoi_delta" in data[key].metrics  # evaluated after its control
    assert "speedup_vs_fp32" not in data["small/baseline"].metrics
    assert len(_sweep_runs()) == 4

    capsys.readouterr()
    list_points(sweep, pts)
    listed = capsys.readouterr().out
    assert listed.count("skipped on re-run") == 4 and "to run" not in listed
    again = run_sweep(sweep, pts, progress=False)  # resumes: nothing left to do
    assert again == runs and len(_sweep_runs()) == 4
    assert run_sweep(sweep, pts, only=3, progress=False)["small/pruned"] == runs["small/pruned"]
    # an --override changes every point's config: no finished run matches any more
    longer = plan(sweep, extra=("train.max_epochs=2",))
    capsys.readouterr()
    list_points(sweep, longer)
    assert capsys.readouterr().out.count("skipped on re-run") == 0  # the baseline changed too

    from seofp_lab.train import sweep_run as sweep_cli
    capsys.readouterr()
    sweep_file = workspace / "tiny.yaml"
    import yaml
    sweep_file.write_text(yaml.safe_dump(sweep.model_dump(mode="json")))
    args = argparse.Namespace(sweep=str(sweep_file), list=True, point=None, no_progress=True,
                              override=[])
    assert sweep_cli.run(args) == 0
    assert capsys.readouterr().out.count("skipped on re-run") == 4
