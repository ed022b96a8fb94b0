"""The corpus API on a generated embedded-layout tree (and on the committed corpus when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _data_trees import make_embedded_tree

from seofp_lab.config import CorpusConfig
from seofp_lab.data.corpus import hold_out
from seofp_lab.data.loaders import load_corpus
from seofp_lab.data.loaders.embedded import EMBEDDED_DIR
from seofp_lab.errors import CorpusLayoutError


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedded_tree(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))


def test_embedded_split(tree: Path) -> None:
    c = load_corpus(CorpusConfig(root=tree))
    assert c.speakers("train") == ["ast_fr_f", "ast_it_m", "ast_ru_f"]
    assert c.speakers("test") == ["ast_en_f", "lv_en_m"]
    assert set(c.speakers("valid")) <= set(c.speakers("train"))
    ids = {s: {u.id for u in c.utterances(s)} for s in ("train", "valid", "test")}
    assert not ids["train"] & ids["valid"] and not ids["train"] & ids["test"]
    assert len(ids["valid"]) == 3 * 4  # 4 held out per training speaker
    every = set().union(*ids.values())
    assert not any(i.endswith(("_006", "_007")) for i in every)  # use=babble is never a target
    assert not c.paired and c.pairs("test") == []


def test_noise_split_and_defaults(tree: Path) -> None:
    c = load_corpus(CorpusConfig(root=tree))
    assert c.noise_types("train") == ["machine", "music", "white", "pink", "brown", "ssn",
                                      "modulated", "engine"]
    assert c.noise_types("test") == ["market", "rain", "babble"]
    clips = c.noises("test", ["rain", "market"])
    assert len(clips["rain"]) == 2 and all(x.dtype == np.float32 for x in clips["rain"])
    white = c.noises("train", ["white"])["white"][0]
    again = load_corpus(CorpusConfig(root=tree)).noises("train", ["white"])["white"][0]
    assert np.array_equal(white, again) and white.size == 60 * 16000
    other_seed = load_corpus(CorpusConfig(root=tree, seed=1)).noises("train", ["white"])["white"]
    assert not np.array_equal(white, other_seed[0])


def test_babble_excludes_the_target_speaker(tree: Path) -> None:
    c = load_corpus(CorpusConfig(root=tree))
    for spk in c.speakers("test"):
        talkers = c.babble_talker_ids("test", spk)
        assert spk not in talkers and len(talkers) == 4
    x = c.noises("test", ["babble"], exclude_speaker="ast_en_f")["babble"][0]
    assert np.isfinite(x).all() and x.std() > 0


def test_test_noise_in_training_is_refused(tree: Path) -> None:
    with pytest.raises(CorpusLayoutError, match=r"train_noises among .* got 'rain' \(a test noise"):
        load_corpus(CorpusConfig(root=tree, train_noises=["machine", "rain"]))
    c = load_corpus(CorpusConfig(root=tree, test_noises=["pink", "rain"]))
    assert c.noise_types("test") == ["pink", "rain"]


def test_missing_manifest_names_root_and_build_command(tmp_path: Path) -> None:
    (tmp_path / "speech").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"embedded corpus at .* found: speech/.*seofp "
                                                r"data build embedded"):
        load_corpus(CorpusConfig(root=tmp_path))


def test_lab_uses_its_split_column(tmp_path: Path) -> None:
    root = make_embedded_tree(tmp_path / "lab", lab=True)
    c = load_corpus(CorpusConfig(kind="lab", root=root))
    assert c.speakers("test") == ["ast_en_f", "lv_en_m"] and c.babble_talkers == 6


def test_hold_out_keeps_every_speaker_in_training() -> None:
    items = [(s, i) for s in "abc" for i in range(3)] + [("d", 0)]
    train, valid = hold_out(items, lambda x: x[0], seed=0)
    assert {x[0] for x in train} == set("abcd") and len(valid) == 6
    big = [(f"s{s}", i) for s in range(500) for i in range(8)]
    _, valid = hold_out(big, lambda x: x[0], seed=0)
    assert len(valid) == 48


@pytest.mark.skipif(not (EMBEDDED_DIR / "MANIFEST.tsv").is_file(), reason="corpus not built")
def test_committed_embedded_corpus_loads() -> None:
    c = load_corpus(CorpusConfig())
    assert c.speakers("test") == ["ast_en_f", "lv_en_m"]
    assert c.speakers("train") == ["ast_fr_f", "ast_it_m", "ast_ru_f"]
    x = c.utterances("test")[0].load()
    assert x.dtype == np.float32 and x.ndim == 1 and 1.0 <= x.size / 16000 <= 30.0
