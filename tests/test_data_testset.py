"""The test set: written once, reused after its hashes are checked, balanced per SNR."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _data_trees import make_embedded_tree

from seofp_lab.config import CorpusConfig
from seofp_lab.data import testset as T
from seofp_lab.data.level import active_level_db
from seofp_lab.data.mix import measured_snr_db
from seofp_lab.data.testset import TestSetError, prepare_test_set


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedded_tree(tmp_path_factory.mktemp("embedded"), targets=4, babble=2)


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))


def _cfg(tree: Path, **kw) -> CorpusConfig:
    return CorpusConfig(root=tree, test_snrs=[2.5, 7.5, 12.5, 17.5], test_noises=["rain", "market"],
                        test_mixtures_per_utterance=4, **kw)


def test_written_once_balanced_and_at_the_right_snr(tree: Path, tmp_path: Path) -> None:
    ts = prepare_test_set(_cfg(tree), progress=False)
    assert ts.root == tmp_path / "ws" / "testsets" / T.testset_hash(_cfg(tree))
    assert len(ts.items) == 8 * 4 and ts.snrs == [2.5, 7.5, 12.5, 17.5]
    assert set(Counter(i.snr for i in ts.items).values()) == {8}
    assert set(ts.counts().values()) == {4}
    assert len({i.id for i in ts.items}) == len(ts.items)
    for item in ts.items[:6]:
        noisy, clean = ts.load(item)
        assert noisy.dtype == np.float32 and noisy.shape == clean.shape
        assert measured_snr_db(clean, noisy - clean) == pytest.approx(item.snr, abs=0.1)
        assert active_level_db(clean) == pytest.approx(-26.0 + 20 * np.log10(item.gain), abs=0.05)
    stamp = ts.manifest_path.stat().st_mtime_ns
    again = prepare_test_set(_cfg(tree), progress=False)
    assert again.items == ts.items and again.manifest_path.stat().st_mtime_ns == stamp


def test_prefix_of_items_is_balanced(tree: Path) -> None:
    ts = prepare_test_set(_cfg(tree), progress=False)
    first = Counter(i.snr for i in ts.items[:8])
    assert max(first.values()) - min(first.values()) <= 1


def test_a_tampered_file_is_detected(tree: Path) -> None:
    ts = prepare_test_set(_cfg(tree), progress=False)
    path = ts.items[3].noisy_path
    x, fs = sf.read(path, dtype="float32")
    sf.write(path, x * 1.01, fs, subtype="FLOAT")
    with pytest.raises(TestSetError, match=r"sha256 .* \(modified\); delete .* never regenerated"):
        prepare_test_set(_cfg(tree), progress=False)


def test_an_edited_manifest_is_detected(tree: Path) -> None:
    ts = prepare_test_set(_cfg(tree), progress=False)
    ts.manifest_path.write_text(ts.manifest_path.read_text().replace("rain", "wind", 1))
    with pytest.raises(TestSetError, match="manifest.csv"):
        prepare_test_set(_cfg(tree), progress=False)


def test_hash_ignores_training_fields_only(tree: Path) -> None:
    base = T.testset_hash(_cfg(tree))
    assert T.testset_hash(_cfg(tree, train_snrs=[0.0], mixtures_per_epoch=3)) == base
    assert T.testset_hash(_cfg(tree, seed=1)) != base
    assert T.testset_hash(_cfg(tree, clean_floor_dbfs=-65.0)) != base


def test_babble_and_subset(tree: Path) -> None:
    cfg = CorpusConfig(root=tree, test_snrs=[5.0], test_utterances=3)
    ts = prepare_test_set(cfg, progress=False)
    assert len(ts.items) == 3 and {i.noise for i in ts.items} <= {"rain", "market", "babble"}


def test_items_name_their_utterance_and_noise_recording(tree: Path) -> None:
    cfg = CorpusConfig(root=tree, test_snrs=[5.0], test_noises=["rain", "babble"],
                       test_mixtures_per_utterance=2)
    ts = prepare_test_set(cfg, progress=False)
    by_utt = Counter(i.utterance for i in ts.items)
    assert set(by_utt.values()) == {2} and len(by_utt) == len(ts.items) // 2
    for item in ts.items:
        assert item.id.startswith(f"{item.utterance}_{item.noise}_snr")
        if item.noise == "babble":  # mixed per target talker from the other talkers
            assert item.noise_clip == f"babble-not-{item.speaker}#0"
        else:
            assert item.noise_clip.startswith("rain#") and item.noise_clip[5:].isdigit()
    header = ts.manifest_path.read_text().splitlines()[0].split(",")
    assert header[-2:] == ["utterance", "noise_clip"] and T.VERSION == 2
