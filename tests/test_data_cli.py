"""`seofp data info|testset` on a generated tree, and every corpus YAML validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from _data_trees import make_embedded_tree

from seofp_lab.cli import main
from seofp_lab.config import CONFIGS_DIR, CorpusConfig, load_yaml_model
from seofp_lab.data.cli import corpus_config


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))


@pytest.mark.parametrize("path", sorted((CONFIGS_DIR / "corpus").glob("*.yaml")), ids=str)
def test_every_corpus_yaml_validates(path: Path) -> None:
    cfg = load_yaml_model(path, CorpusConfig)
    assert cfg.kind in path.stem or cfg.kind == "timit"


def test_info_and_testset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_embedded_tree(tmp_path / "emb", targets=3, babble=2)
    yml = tmp_path / "c.yaml"
    yml.write_text(f"name: tiny\nkind: embedded\nroot: {tree}\ntest_snrs: [0, 10]\n")
    assert main(["data", "info", str(yml)]) == 0
    out = capsys.readouterr().out
    assert "ast_fr_f" not in out and "train" in out and "rain" in out and "market" in out
    assert main(["data", "testset", str(yml), "test_mixtures_per_utterance=2"]) == 0
    out = capsys.readouterr().out
    assert "12 mixtures" in out and "babble" in out


def test_overrides_of_a_corpus_yaml(tmp_path: Path) -> None:
    yml = tmp_path / "c.yaml"
    yml.write_text("kind: timit\nroot: /x\n")
    assert corpus_config(yml, ["corpus.seed=3", "test_snrs=[1, 2]"]).seed == 3
    assert corpus_config(yml, ["test_snrs=[1, 2]"]).test_snrs == [1.0, 2.0]


def test_bad_root_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yml = tmp_path / "c.yaml"
    yml.write_text(f"kind: timit\nroot: {tmp_path / 'missing'}\n")
    assert main(["data", "info", str(yml)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seofp data: error: Expected a timit corpus at")
    assert "Traceback" not in err
