"""Study definitions and schedules: validation, balance, seeds, reproducibility
(docs/listening.md#randomisation-and-counterbalancing)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from seofp_lab.config import ConfigError
from seofp_lab.errors import StudyError
from seofp_lab.listening.protocol import (
    Item,
    StudyDefinition,
    build_schedule,
    load_study,
    schedule_digest,
)

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _items(utterances: int = 16, snrs: tuple[float, ...] = (0.0, 5.0, 10.0)) -> list[Item]:
    return [Item(f"u{u:02d}_snr{s:g}", f"u{u:02d}", s) for u in range(utterances) for s in snrs]


def _study(**kw) -> StudyDefinition:
    return StudyDefinition(name="t", baseline_dir=Path("b"), compressed_dir=Path("c"), **kw)


def test_every_study_yaml_in_the_repo_loads() -> None:
    found = sorted(STUDIES.glob("*/study.yaml"))
    assert found, "expected at least studies/demo/study.yaml"
    for path in found:
        study, digest = load_study(path.parent)
        assert study.name == path.parent.name and len(digest) == 64


@pytest.mark.parametrize(("patch", "fragment"), [
    ({"trials": {"test_per_block": 3, "blocks": 1}}, "divisible by 4"),
    ({"trials": {"practice": 2, "bogus": 1}}, "unknown key"),
    ({"analysis": {"margin": 0.4}}, "margin"),
    ({"screening": {"headphone_trials": 2, "headphone_pass": 3}}, "headphone_pass"),
    ({"baseline_dir": None}, "baseline_run"),
    ({"confidence": 9}, "confidence"),
    ({"confidence": ["only one"]}, "confidence"),
    ({"confidence": ["same", "same"]}, "distinct"),
    ({"crowd": {"confidence_levels": 3}}, "top-level setting `confidence"),
])
def test_bad_definitions_name_the_field(tmp_path: Path, patch: dict, fragment: str) -> None:
    spec = {"name": "bad", "baseline_dir": "b", "compressed_dir": "c", **patch}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=fragment):
        load_study(tmp_path)


@pytest.mark.parametrize(("value", "levels", "labels"), [
    (False, 0, []),
    (True, 3, ["1 - guessing", "2 - fairly sure", "3 - sure"]),
    (5, 5, ["1", "2", "3", "4", "5"]),
    (["unsure", "sure"], 2, ["unsure", "sure"]),
])
def test_one_confidence_setting_gives_the_levels_and_labels(value: object, levels: int,
                                                           labels: list[str]) -> None:
    study = _study(confidence=value)
    assert (study.confidence_levels, study.confidence_labels()) == (levels, labels)


def test_missing_study_yaml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="Expected a study definition"):
        load_study(tmp_path)


@pytest.mark.parametrize("index", range(6))
def test_schedule_is_balanced(index: int) -> None:
    study = _study()
    items = _items()
    specs = build_schedule(study, items, participant_seed=1000 + index, participant_index=index)
    main = [s for s in specs if s.trial_type == "main"]
    assert len(main) == 32
    assert Counter(s.order_cell for s in main) == {1: 8, 2: 8, 3: 8, 4: 8}  # all four orders
    assert Counter(s.x_is for s in main) == {"A": 16, "B": 16}
    snr = {i.item_id: i.snr for i in items}
    counts = Counter(snr[s.item_id] for s in main)
    assert max(counts.values()) - min(counts.values()) <= 1  # SNRs balanced per listener
    assert len({s.item_id for s in main}) == 32  # no item twice
    assert Counter(s.trial_type for s in specs) == {"main": 32, "catch": 4, "null": 4,
                                                    "practice": 6}
    utt = {i.item_id: i.utterance_id for i in items}
    for block in (1, 2):
        b = [s for s in specs if s.block == block]
        assert len(b) == 20
        assert all(s.trial_type == "main" for s in b[:2])  # no catch/null in the first two
        assert all(utt[x.item_id] != utt[y.item_id] for x, y in zip(b, b[1:], strict=False))
    assert [s.index for s in specs] == list(range(len(specs)))
    assert all(s.feedback == (s.trial_type == "practice") for s in specs)


def test_schedule_is_a_pure_function_of_its_seeds() -> None:
    study, items = _study(), _items()
    a = build_schedule(study, items, 42, 3)
    assert schedule_digest(a) == schedule_digest(build_schedule(study, items, 42, 3))
    assert schedule_digest(a) != schedule_digest(build_schedule(study, items, 43, 3))
    other = _study(seed=1)
    assert schedule_digest(a) != schedule_digest(build_schedule(other, items, 42, 3))
    assert schedule_digest(a) == schedule_digest(build_schedule(study, items[::-1], 42, 3))


def test_latin_rotation_spreads_items_over_listeners() -> None:
    study, items = _study(items={"assignment": "rotation"}), _items()
    uses = Counter(s.item_id for i in range(3) for s in build_schedule(study, items, i, i)
                   if s.trial_type == "main")
    assert len(uses) == 48 and set(uses.values()) == {2}  # 3 x 32 = 96 = 48 items x 2


def test_each_listener_hears_a_random_snr_balanced_subset_of_the_pool() -> None:
    study, items = _study(items={"count": 48}), _items()  # pool 48, 32 per listener
    snr = {i.item_id: i.snr for i in items}
    subsets = []
    for seed in range(40):
        main = [s.item_id for s in build_schedule(study, items, seed, 0)
                if s.trial_type == "main"]
        assert len(set(main)) == 32
        per_snr = Counter(snr[i] for i in main)
        assert max(per_snr.values()) - min(per_snr.values()) <= 1
        subsets.append(frozenset(main))
    assert len(set(subsets)) == 40  # the same slot, yet every listener another subset
    uses = Counter(i for sub in subsets for i in sub)
    assert len(uses) == 48  # the whole pool is heard
    # 40 x 32 / 48 = 26.7 uses per item expected; binomial sd ~ 3
    assert 14 < min(uses.values()) and max(uses.values()) < 40


def test_pool_smaller_than_a_listener_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="items.count"):
        _study(items={"count": 20})


def test_trap_trials_are_scheduled_per_block_with_the_trap_probe() -> None:
    study = _study(trials={"practice": 0, "blocks": 2, "test_per_block": 16,
                           "catch_per_block": 1, "null_per_block": 1, "trap_per_block": 2})
    specs = build_schedule(study, _items(), 5, 1)
    traps = [s for s in specs if s.trial_type == "trap"]
    assert len(traps) == 4 and Counter(s.block for s in traps) == {1: 2, 2: 2}
    assert all((s.ref, s.probe) == ("baseline", "trap") for s in traps)
    assert {s.clip_a for s in traps} | {s.clip_b for s in traps} == {"baseline", "trap"}
    for block in (1, 2):  # never among the first two trials of a block
        first = [s for s in specs if s.block == block][:2]
        assert all(s.trial_type == "main" for s in first)


def test_ladder_trials_follow_the_main_blocks() -> None:
    study = _study(ladder={"enabled": True, "levels_db": [0, 6, 12], "trials_per_level": 4})
    specs = build_schedule(study, _items(), 1, 0, ladder_items=["u00_snr0", "u01_snr5"])
    lad = [s for s in specs if s.trial_type == "ladder"]
    assert Counter(s.gain_db for s in lad) == {0.0: 4, 6.0: 4, 12.0: 4}
    assert min(s.index for s in lad) > max(s.index for s in specs if s.trial_type == "main")
    practice = [s for s in specs if s.trial_type == "practice"]
    assert any(s.probe == "ladder" and s.gain_db == 12.0 for s in practice)  # ladder top


def test_too_few_items_is_refused() -> None:
    with pytest.raises(StudyError, match="at least 32 items"):
        build_schedule(_study(), _items(utterances=4), 1, 0)
