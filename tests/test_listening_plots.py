"""The figures of docs/listening.md#figures: written as valid PNGs from a simulated study, and
robust to empty groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_listening_analysis import STUDY, _tables

from seofp_lab.listening.analysis import analyze
from seofp_lab.listening.plots import (
    _plt,
    confusion_figure,
    items_figure,
    plot_all,
    trial_log_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _texts(fig) -> list[str]:  # noqa: ANN001 - a matplotlib Figure
    """Every text drawn inside the figure's axes; closes the figure."""
    out = [t.get_text() for ax in fig.axes for t in ax.texts]
    _plt().close(fig)
    return out


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 100


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, object]:
    """Eight simulated listeners (Pc 0.7) whose log has plays, switches and confidence."""
    trials, parts = _tables([0.7] * 8, seed=11)
    rng = np.random.default_rng(1)
    trials["plays_a"], trials["plays_b"] = rng.integers(1, 4, (2, len(trials)))
    trials["plays_x"] = 1 + trials.correct
    trials["switches"] = rng.integers(0, 6, len(trials))
    trials["confidence"] = rng.integers(1, 4, len(trials))
    return trials, analyze(trials, parts, STUDY, boot=50)


def test_plot_all_writes_every_figure_as_a_png(study: tuple, tmp_path: Path) -> None:
    _, result = study
    paths = plot_all(result, tmp_path / "plots", STUDY.analysis.margin)
    names = {p.name for p in paths}
    assert {"items_by_snr.png", "confusion_bias.png", "rt_plays_switches.png",
            "equivalence.png", "listeners.png", "power.png"} <= names
    assert len(names) == len(paths)  # no figure overwrites another
    for p in paths:
        assert p.parent == tmp_path / "plots"
        _assert_png(p)


def test_figures_draw_the_analysis_numbers(study: tuple) -> None:
    _, result = study
    items = result.tables["items"]
    fig = items_figure(items, 0.575)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{r.item} ({r.k}/{r.n})" for r in items.itertuples()]
    assert {round(line.get_xdata()[0], 3) for line in ax.lines[:2]} == {0.5, 0.575}
    _plt().close(fig)
    conf = result.tables["confusion"]
    counts = conf[["answered_A", "answered_B"]].to_numpy().ravel()
    texts = _texts(confusion_figure(conf, result.tables["bias"], result.metrics["bias_c"]))
    assert [int(t.split("\n")[0]) for t in texts] == counts.tolist()
    assert counts.sum() == result.metrics["n"]


def test_empty_groups_give_annotated_panels(study: tuple) -> None:
    trials, result = study
    log = result.tables["trial_log"].assign(correct=1)  # nobody wrong: no incorrect group
    texts = _texts(trial_log_figure(log))
    assert texts.count("no trials") == 3
    unrecorded = log.drop(columns=["switches", "confidence"]).assign(rt_ms=np.nan)
    fig = trial_log_figure(unrecorded, confidence=False)
    assert {"rt_ms not recorded", "switches not recorded"} <= set(_texts(fig))
    assert len(fig.axes) == 3  # no confidence asked: no accuracy-by-confidence panel at all
    assert "confidence not recorded" in _texts(trial_log_figure(unrecorded, confidence=True))
    assert len(trial_log_figure(log.assign(correct=[0, 1] * (len(log) // 2) + [1] * (
        len(log) % 2))).axes) == 4
    assert _texts(trial_log_figure(None)).count("plays_a + plays_b + plays_x not recorded") == 1
    assert "no main trials: no items to show" in _texts(items_figure(result.tables["items"][:0],
                                                                     0.575))
    texts = _texts(confusion_figure(None, None, None))
    assert "no main trials" in texts and "no listener with main trials" in texts


def test_a_study_without_main_trials_writes_nothing(tmp_path: Path) -> None:
    trials, parts = _tables([0.5] * 3, seed=2)
    result = analyze(trials[trials.trial_type != "main"], parts, STUDY, boot=10)
    assert plot_all(result, tmp_path, 0.575) == []


def test_accuracy_by_confidence_only_when_the_design_asks(study: tuple, tmp_path: Path) -> None:
    trials, result = study  # STUDY asks no confidence rating (the default)
    assert "confidence" not in result.tables and "confidence" not in result.text
    fig = trial_log_figure(result.tables["trial_log"], confidence=False)
    assert len(fig.axes) == 3 and "confidence" not in " ".join(_texts(fig))
    _plt().close(fig)
    parts = pd.DataFrame({"listener": range(8), "status": "done", "screen_exclusion": None})
    asked = analyze(trials, parts, STUDY.model_copy(update={"confidence": 3}), boot=20)
    table = asked.tables["confidence"].set_index("confidence")
    main = trials[trials.trial_type == "main"]
    by_hand = main.groupby("confidence").correct.agg(["sum", "count"])
    assert table.k.tolist() == by_hand["sum"].tolist() and table.n.sum() == asked.metrics["n"]
    assert "Accuracy by confidence" in asked.text
    assert asked.metrics["pc_confidence_2"] == pytest.approx(
        by_hand.loc[2, "sum"] / by_hand.loc[2, "count"])
    assert len(trial_log_figure(asked.tables["trial_log"], True).axes) == 4
