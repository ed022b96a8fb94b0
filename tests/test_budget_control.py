"""Budgets that reproduce (epochs/steps, a seeded run twice gives the same numbers), the
max_minutes safety cap announced when it cuts, and equal-budget fp32 controls."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import TINY_TRAINING

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, ConfigError, load_config
from seofp_lab.train.control import (
    control_config,
    control_key,
    ensure_control,
    find_control,
    needs_control,
    with_control,
)

TINY = [*TINY_TRAINING, "train.max_epochs=2", "evaluation.audio_examples=0",
        "tracking.experiment=budget"]
EXP = CONFIGS_DIR / "experiment"


def _state(path: Path) -> dict[str, torch.Tensor]:
    from seofp_lab.train.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(path)
    return model.state_dict()


@pytest.mark.slow
def test_same_seed_same_machine_same_numbers(workspace: Path) -> None:
    from seofp_lab.train.run import train

    cfg = load_config(EXP / "demo_baseline.yaml", TINY)
    first, second = train(cfg, progress=False), train(cfg, progress=False)
    assert first.run_id != second.run_id
    for key in ("val_loss", "val_si_sdr", "epochs", "steps"):
        assert first.metrics[key] == second.metrics[key], key
    a, b = _state(first.checkpoint), _state(second.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a different seed is a different run: the test can fail
    other = train(load_config(EXP / "demo_baseline.yaml", [*TINY, "train.seed=1"]),
                  progress=False)
    assert other.metrics["val_loss"] != first.metrics["val_loss"]
    tags = tracking.get_run(first.run_id).data.tags
    assert tags[tracking.TAG_BUDGET] == "2 epochs x 2 steps"
    assert tracking.TAG_BUDGET_CUT not in tags


@pytest.mark.slow
def test_max_steps_and_the_safety_cap(workspace: Path, capsys: pytest.CaptureFixture) -> None:
    from seofp_lab.train.run import train

    steps = train(load_config(EXP / "demo_baseline.yaml", [*TINY, "train.max_epochs=5",
                                                           "train.max_steps=3"]), progress=False)
    assert steps.metrics["steps"] == 3
    assert tracking.TAG_BUDGET_CUT not in tracking.get_run(steps.run_id).data.tags
    cut = train(load_config(EXP / "demo_baseline.yaml", [*TINY, "train.max_epochs=50",
                                                         "train.max_minutes=0.0001"]),
                progress=False)
    assert cut.metrics["epochs"] < 50
    text = tracking.get_run(cut.run_id).data.tags[tracking.TAG_BUDGET_CUT]
    assert "max_minutes=0.0001" in text and "of 50 epochs" in text
    assert "not those of the budgeted run" in capsys.readouterr().err


def test_control_is_the_variant_without_compression() -> None:
    s1e5 = load_config(EXP / "demo_s1e5.yaml", [*TINY, "compression.init_from=abc"])
    pruned = load_config(EXP / "demo_s1e5_pruned50.yaml", [*TINY, "compression.init_from=abc"])
    assert needs_control(s1e5) and s1e5.compression.role == "seofp"
    ctl = control_config(s1e5)
    assert ctl.compression.role == "control" and not ctl.compression.compressed
    assert ctl.compression.init_from == "abc"
    assert (ctl.train, ctl.corpus, ctl.model) == (s1e5.train, s1e5.corpus, s1e5.model)
    # one recipe, one control: the two demo variants share theirs; another lr does not
    assert control_key(s1e5) == control_key(pruned)
    other = load_config(EXP / "demo_s1e5.yaml", [*TINY, "compression.init_from=abc",
                                                  "train.lr=0.01"])
    assert control_key(other) != control_key(s1e5)
    assert control_key(load_config(EXP / "demo_s1e5.yaml", [
        *TINY, "compression.init_from=xyz"])) != control_key(s1e5)
    assert not needs_control(with_control(s1e5, "ctl-run"))
    baseline = load_config(EXP / "demo_baseline.yaml", TINY)
    assert not needs_control(baseline) and baseline.compression.role == "baseline"
    with pytest.raises(ConfigError, match="init_from"):
        control_config(load_config(EXP / "demo_s1e5.yaml", TINY))


@pytest.mark.slow
def test_control_is_trained_once_and_reused(workspace: Path) -> None:
    from seofp_lab.train.run import train

    base = train(load_config(EXP / "demo_baseline.yaml", TINY), progress=False)
    variant = load_config(EXP / "demo_s1e5.yaml", [*TINY, f"compression.init_from={base.run_id}"])
    assert find_control(variant) is None
    control, trained = ensure_control(variant, progress=False)
    assert trained and find_control(variant) == control
    again, trained_again = ensure_control(variant, progress=False)
    assert (again, trained_again) == (control, False)
    tags = tracking.get_run(control).data.tags
    assert tags[tracking.TAG_ROLE] == "control" and tags[tracking.TAG_BASELINE] == base.run_id
    result = train(with_control(variant, control), progress=False)
    vtags = tracking.get_run(result.run_id).data.tags
    assert vtags[tracking.TAG_CONTROL] == control and vtags[tracking.TAG_ROLE] == "seofp"
    assert vtags[tracking.TAG_BUDGET] == tags[tracking.TAG_BUDGET]


def test_a_control_cut_by_the_safety_cap_is_not_reused(workspace: Path) -> None:
    from seofp_lab.train.control import TAG_CONTROL_KEY

    variant = load_config(EXP / "demo_s1e5.yaml", [*TINY, "compression.init_from=abc"])
    key = {TAG_CONTROL_KEY: control_key(variant), tracking.TAG_ROLE: "control"}
    with tracking.start_run("budget", "whole", key, {}) as whole:
        pass
    assert find_control(variant) == whole
    cut = {**key, tracking.TAG_BUDGET_CUT: "max_minutes=1 ended the run after 3 of 10 epochs"}
    with tracking.start_run("budget", "cut", cut, {}):
        pass  # newer than the whole one, yet not the variant's budget
    assert find_control(variant) == whole
    with tracking.start_run("budget", "whole again", key, {}) as newer:
        pass
    assert find_control(variant) == newer


def test_listening_study_reference_is_the_control(workspace: Path) -> None:
    from seofp_lab.listening.stimuli import CONTROL_REF, StudyError, control_of, resolve_run

    with tracking.start_run("seofp-demo", "ctl", {tracking.TAG_ROLE: "control"}, {}) as ctl:
        pass
    tags = {tracking.TAG_ROLE: "seofp", tracking.TAG_CONTROL: ctl}
    with tracking.start_run("seofp-demo", "s1e5", tags, {}) as variant:
        pass
    with tracking.start_run("seofp-demo", "lone", {tracking.TAG_ROLE: "seofp"}, {}) as lone:
        pass
    assert resolve_run(CONTROL_REF, "seofp-demo") == CONTROL_REF  # resolved after the variant
    assert control_of(variant) == ctl
    with pytest.raises(StudyError, match="has none"):
        control_of(lone)
