"""Test-only corpora (docs/corpora.md): accepted for evaluation, refused for training with a message
naming the root and what training needs; wrong layouts still name the path and the pattern."""

from __future__ import annotations

from pathlib import Path

import pytest
from _data_trees import dns_pairs, folder_test_only, speechlike, vb_test_only, write

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, ConfigError, CorpusConfig, load_corpus_config
from seofp_lab.data.loaders import load_corpus
from seofp_lab.data.testset import prepare_test_set
from seofp_lab.errors import CorpusLayoutError


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _refused(cfg: CorpusConfig, needs: str) -> None:
    from seofp_lab.data.datamodule import MixtureDataModule

    corpus = load_corpus(cfg)
    assert corpus.test_only
    with pytest.raises(CorpusLayoutError, match=rf"training part .* at {cfg.root} .*needs {needs}"):
        MixtureDataModule(corpus, train_snrs=[0.0], segment_seconds=0.5, mixtures_per_epoch=4,
                          valid_mixtures=2, batch_size=2)


def test_voicebank_test_part_evaluates_and_refuses_training(tmp_path: Path) -> None:
    cfg = CorpusConfig(kind="voicebank_demand", root=vb_test_only(tmp_path / "vb"))
    c = load_corpus(cfg)
    assert [p[0] for p in c.pairs("test")] == ["p232_001", "p232_002", "p232_003"]
    assert not c.pairs("train") and not c.utterances("train")
    assert c.pair_meta["p232_002"] == ("bus", 7.5)
    ts = prepare_test_set(cfg, progress=False)
    assert [(i.id, i.noise, i.snr) for i in ts.items][0] == ("p232_001", "living", 2.5)
    _refused(cfg, r"clean_trainset_28spk_wav/ and noisy_trainset_28spk_wav/")


def test_voicebank_without_log_warns_and_wrong_layouts_name_the_path(tmp_path: Path) -> None:
    root = vb_test_only(tmp_path / "vb", log=False)
    with pytest.warns(UserWarning, match=r"log_testset.txt is missing"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"voicebank_demand corpus at .*empty with "
                       r"clean_testset_wav/ and noisy_testset_wav/ \(enough to evaluate on\), "
                       r"plus clean_trainset_28spk_wav/.* found: .*empty is empty"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=tmp_path / "empty"))
    for f in (root / "noisy_testset_wav").iterdir():
        f.unlink()
    (root / "noisy_testset_wav").rmdir()
    with pytest.raises(CorpusLayoutError, match=r"noisy_testset_wav/pNNN_MMM.wav but found"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))


def test_a_half_present_training_part_is_an_error_not_test_only(tmp_path: Path) -> None:
    root = vb_test_only(tmp_path / "vb")
    write(root / "clean_trainset_28spk_wav" / "p226_001.wav", speechlike(9, 0.5, 48000), 48000)
    with pytest.raises(CorpusLayoutError, match=r"noisy_trainset_28spk_wav/pNNN_MMM.wav"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))
    root = folder_test_only(tmp_path / "f")
    write(root / "train" / "clean" / "c" / "u0.wav", speechlike(1, 0.5))
    with pytest.raises(CorpusLayoutError, match=r"folder corpus at .*f/train/noisy does not exist"):
        load_corpus(CorpusConfig(kind="folder", root=root))


def test_folder_test_part_evaluates_and_refuses_training(tmp_path: Path) -> None:
    cfg = CorpusConfig(kind="folder", root=folder_test_only(tmp_path / "f"))
    c = load_corpus(cfg)
    assert [p[0] for p in c.pairs("test")] == ["a_u0", "a_u1", "b_u0", "b_u1"]
    assert len(prepare_test_set(cfg, progress=False).items) == 4
    _refused(cfg, r"train/clean/\*\* and train/noisy/\*\*")


@pytest.mark.parametrize("shape", ["dns_root", "synthetic", "one_folder"])
def test_dns_synthetic_test_set_in_three_shapes(tmp_path: Path, shape: str) -> None:
    synthetic = tmp_path / "DNS-Challenge" / "test_set" / "synthetic"
    dns_pairs(synthetic / "no_reverb")
    root = {"dns_root": tmp_path / "DNS-Challenge", "synthetic": synthetic,
            "one_folder": synthetic / "no_reverb"}[shape]
    cfg = CorpusConfig(kind="dns", root=root)
    c = load_corpus(cfg)
    assert [p[0] for p in c.pairs("test")] == ["no_reverb_fileid_158", "no_reverb_fileid_4"]
    assert c.pair_meta["no_reverb_fileid_4"] == ("no_reverb", 5.0)
    _refused(cfg, r"datasets/clean/ \(speech\) and datasets/noise/")


def test_dns_wrong_layouts_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"dns corpus at .*nothing with .*fileid_<N>.wav "
                       r"but found: .*nothing is empty. Hint: a test-only root"):
        load_corpus(CorpusConfig(kind="dns", root=tmp_path / "nothing"))
    one = dns_pairs(tmp_path / "one")
    (one / "clean" / "clean_fileid_4.wav").unlink()
    with pytest.raises(CorpusLayoutError, match=r"clean partner .* clnsp4_babble"):
        load_corpus(CorpusConfig(kind="dns", root=one))


@pytest.mark.slow
def test_training_on_a_test_only_corpus_stops_before_any_run(tmp_path: Path) -> None:
    from seofp_lab.config import load_config
    from seofp_lab.train.run import train

    root = vb_test_only(tmp_path / "vb")
    cfg = load_config(CONFIGS_DIR / "experiment" / "demo_baseline.yaml",
                      ["corpus=voicebank_demand", f"corpus.root={root}",
                       "tracking.experiment=refused"])
    with pytest.raises(CorpusLayoutError, match=r"only a test part; training needs "
                       r"clean_trainset_28spk_wav/"):
        train(cfg, progress=False)
    assert tracking.find_runs("refused") == []


def test_corpus_config_by_name_path_and_overrides(tmp_path: Path) -> None:
    by_name = load_corpus_config("voicebank_demand", ["corpus.root=/data/vbd", "seed=2"])
    assert by_name.kind == "voicebank_demand" and str(by_name.root) == "/data/vbd"
    assert by_name.seed == 2
    by_path = load_corpus_config(CONFIGS_DIR / "corpus" / "folder.yaml", [f"root={tmp_path}"])
    assert by_path.root == tmp_path
    with pytest.raises(ConfigError, match=r"'voicebank' names no file .*expected one of"):
        load_corpus_config("voicebank")
    with pytest.raises(ConfigError, match=r"command-line override 'corpus.seeds=1': seeds: "
                       r"unknown key"):
        load_corpus_config("embedded", ["corpus.seeds=1"])
    # an experiment YAML gives its corpus section; bare keys are that corpus's keys too
    exp = CONFIGS_DIR / "experiment" / "demo_baseline.yaml"
    from_exp = load_corpus_config(exp, ["seed=3", "corpus.test_utterances=5"])
    assert (from_exp.kind, from_exp.seed, from_exp.test_utterances) == ("embedded", 3, 5)


def test_corpus_labels_and_metric_keys() -> None:
    key = tracking.metric_key("stoi", snr=-2.5, noisy=True, corpus="dns")
    assert key == "dns/noisy_stoi_snr-2.5"
    assert tracking.corpus_prefix("VoiceBank-DEMAND.test") == "VoiceBank-DEMAND.test/"
    for bad in ("", "a b", "../x", "a/b", "-x", "x" * 65):
        with pytest.raises(ValueError, match="Expected a corpus label"):
            tracking.check_corpus_label(bad)
