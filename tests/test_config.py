"""Config loading: every YAML in configs/ loads; bad files are refused naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from seofp_lab.config import (
    CONFIGS_DIR,
    SECTIONS,
    ConfigError,
    CorpusConfig,
    ExperimentConfig,
    load_config,
    load_yaml_model,
)

SECTION_MODELS = {
    "corpus": CorpusConfig,
}


@pytest.mark.parametrize("path", sorted((CONFIGS_DIR / "experiment").glob("*.yaml")), ids=str)
def test_every_experiment_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.flat_params()  # every value renders as an MLflow param


@pytest.mark.parametrize(
    "path",
    sorted(p for s in SECTIONS for p in (CONFIGS_DIR / s).glob("*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_section_config_loads(path: Path) -> None:
    cfg = load_config(None, [f"{path.parent.name}={path.stem}"])
    assert isinstance(cfg, ExperimentConfig)


def test_overrides_apply_and_parse_yaml_values() -> None:
    cfg = load_config(
        CONFIGS_DIR / "experiment" / "blstm_baseline.yaml",
        ["train.max_epochs=3", "corpus.test_snrs=[0, 5]", "model.hidden=64"],
    )
    assert cfg.train.max_epochs == 3
    assert cfg.corpus.test_snrs == [0.0, 5.0]
    assert cfg.model.hidden == 64


def test_unknown_key_names_file_key_and_allowed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    assert str(bad) in msg and "train.max_epoch" in msg and "max_epochs" in msg


def test_wrong_type_and_value_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_size: many\ncompression:\n  mode: fancy\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    assert "train.batch_size" in msg and "compression.mode" in msg and "'paper'" in msg


def test_override_errors_name_the_override() -> None:
    with pytest.raises(ConfigError, match="command-line override 'train.max_epochs=-1'"):
        load_config(None, ["train.max_epochs=-1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["train.max_epochs"])


def test_missing_section_file_lists_choices(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: blstm_huge\n")
    with pytest.raises(ConfigError, match="blstm_paper"):
        load_config(bad)


def test_bad_format_name_and_user_corpus_without_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="s1e1 .. s1e8"):
        load_config(None, ["compression.format=s2e5"])
    with pytest.raises(ConfigError, match="root"):
        load_config(None, ["corpus.kind=timit"])


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)
    p.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_base_with_changes(tmp_path: Path) -> None:
    p = tmp_path / "exp.yaml"
    p.write_text("model:\n  base: blstm_paper\n  hidden: 32\n")
    cfg = load_config(p)
    assert cfg.model.hidden == 32 and cfg.model.fc == 300


def test_load_yaml_model_names_file(tmp_path: Path) -> None:
    p = tmp_path / "corpus.yaml"
    p.write_text("kind: embedded\nsnr: 3\n")
    with pytest.raises(ConfigError, match=str(p)):
        load_yaml_model(p, CorpusConfig)
