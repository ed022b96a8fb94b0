"""Every user-corpus loader on a fake tree of tiny files, and its wrong layouts
(docs/data.md#layout-errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _data_trees import speechlike, tone_noise, write

from seofp_lab.config import CorpusConfig
from seofp_lab.data.loaders import load_corpus
from seofp_lab.errors import AudioError, CorpusLayoutError


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))


def _vb(root: Path, variant: str = "28spk", fs: int = 48000) -> Path:
    for split, spks in (("trainset_" + variant, ("p226", "p227")), ("testset", ("p232",))):
        for k, spk in enumerate(spks):
            for i in range(1, 4):
                x = speechlike(10 * k + i, 0.5, fs)
                write(root / f"clean_{split}_wav" / f"{spk}_{i:03d}.wav", x, fs)
                noisy = x + tone_noise(i, 0.5, fs)
                write(root / f"noisy_{split}_wav" / f"{spk}_{i:03d}.wav", noisy, fs)
    (root / "logfiles").mkdir(parents=True, exist_ok=True)
    (root / "logfiles" / "log_testset.txt").write_text(
        "p232_001 living 2.5\np232_002 bus 7.5\np232_003 cafe 17.5\n")
    return root


def test_voicebank_demand_pairs_speakers_and_logs(tmp_path: Path) -> None:
    c = load_corpus(CorpusConfig(kind="voicebank_demand", root=_vb(tmp_path)))
    assert c.paired and [p[0] for p in c.pairs("test")] == ["p232_001", "p232_002", "p232_003"]
    assert len(c.pairs("train")) + len(c.pairs("valid")) == 6 and c.pairs("valid")
    assert c.pair_meta["p232_002"] == ("bus", 7.5)
    assert c.utterances("test")[0].load().size == 8000  # 48 kHz resampled to 16 kHz


def test_voicebank_variant_hint(tmp_path: Path) -> None:
    root = _vb(tmp_path, "56spk")
    want = r"voicebank_demand corpus at .*clean_trainset_28spk.*found clean_trainset_56spk_wav: "
    with pytest.raises(CorpusLayoutError, match=want + "set variant: 56spk"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))
    assert load_corpus(CorpusConfig(kind="voicebank_demand", root=root, variant="56spk")).paired


def test_voicebank_orphans_and_length_mismatch(tmp_path: Path) -> None:
    root = _vb(tmp_path)
    write(root / "noisy_testset_wav" / "p232_099.wav", np.zeros(100, np.float32), 48000)
    with pytest.raises(CorpusLayoutError, match=r"clean partner .* 1 noisy files without one: "
                                                r"p232_099.wav"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))
    (root / "noisy_testset_wav" / "p232_099.wav").unlink()
    write(root / "noisy_testset_wav" / "p232_001.wav", np.zeros(100, np.float32), 48000)
    with pytest.raises(CorpusLayoutError, match=r"equal length .* p232_001.wav \(100 vs 24000\)"):
        load_corpus(CorpusConfig(kind="voicebank_demand", root=root))


def _timit(root: Path, upper: bool = True) -> Path:
    c = str.upper if upper else str.lower
    for split, spk in (("TRAIN", "FCJF0"), ("TRAIN", "MDAB0"), ("TEST", "MDRW0")):
        for k, utt in enumerate(("SA1", "SI648", "SX109", "SX199")):
            write(root / c(split) / c("DR1") / c(spk) / f"{c(utt)}.{c('wav')}",
                  speechlike(k, 0.4))
            (root / c(split) / c("DR1") / c(spk) / f"{c(utt)}.{c('phn')}").write_text("0 1 h#\n")
    return root


@pytest.mark.parametrize("upper", [True, False])
def test_timit_any_case_without_sa_sentences(tmp_path: Path, upper: bool) -> None:
    c = load_corpus(CorpusConfig(kind="timit", root=_timit(tmp_path, upper)))
    ids = {u.id for s in ("train", "valid", "test") for u in c.utterances(s)}
    assert len(ids) == 9 and not any(i.endswith("sa1") for i in ids)
    assert c.speakers("test") == ["mdrw0"]


def test_timit_nested_root_hint(tmp_path: Path) -> None:
    _timit(tmp_path / "TIMIT")
    with pytest.raises(CorpusLayoutError, match=r"timit corpus at .*found: TIMIT/.*set root to "):
        load_corpus(CorpusConfig(kind="timit", root=tmp_path))


def test_timit_wrong_rate(tmp_path: Path) -> None:
    root = _timit(tmp_path)
    write(root / "TRAIN" / "DR1" / "FCJF0" / "SI648.WAV", speechlike(0, 0.4, 8000), 8000)
    with pytest.raises(CorpusLayoutError, match=r"\[16000\] Hz .*8000"):
        load_corpus(CorpusConfig(kind="timit", root=root))


def _dns(root: Path) -> Path:
    for i in range(3):
        name = f"book_0_chp_1_reader_0{i}123_{i}.wav"
        write(root / "datasets" / "clean" / name, speechlike(i, 0.4))
        write(root / "datasets" / "noise" / f"Door_{i}.wav", tone_noise(i, 0.4))
    for reverb in ("no_reverb", "with_reverb"):
        for i in (4, 158):
            x = speechlike(i, 0.3)
            write(root / "test_set" / "synthetic" / reverb / "clean" / f"clean_fileid_{i}.wav", x)
            write(root / "test_set" / "synthetic" / reverb / "noisy" /
                  f"clnsp{i}_babble_snr10_tl-20_fileid_{i}.wav", x)
    (root / "test_set" / "real_recordings").mkdir()
    return root


def test_dns_pools_and_test_pairs(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="real_recordings"):
        c = load_corpus(CorpusConfig(kind="dns", root=_dns(tmp_path)))
    assert c.paired and len(c.pairs("test")) == 4
    assert c.pair_meta["with_reverb_fileid_158"] == ("with_reverb", 10.0)
    assert "dns" in c.noise_types("train")
    assert {u.speaker for u in c.utterances("train") + c.utterances("valid")} == {
        "reader_00123", "reader_01123", "reader_02123"}


def test_dns_orphan(tmp_path: Path) -> None:
    root = _dns(tmp_path)
    (root / "test_set" / "synthetic" / "no_reverb" / "clean" / "clean_fileid_4.wav").unlink()
    with pytest.raises(CorpusLayoutError, match=r"dns corpus .* noisy files without one: clnsp4"):
        load_corpus(CorpusConfig(kind="dns", root=root))


def _libri(root: Path) -> Path:
    for subset, spk in (("train-clean-100", "19"), ("train-clean-100", "26"), ("test-clean", "61")):
        for u in range(3):
            write(root / subset / spk / "198" / f"{spk}-198-{u:04d}.flac", speechlike(u, 0.4))
    return root


def test_librispeech(tmp_path: Path) -> None:
    c = load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path)))
    assert c.speakers("test") == ["ls61"] and "ls19" in c.speakers("train")


def test_librispeech_missing_test_subset(tmp_path: Path) -> None:
    root = _libri(tmp_path)
    (root / "test-clean").rename(root / "dev-clean")
    with pytest.raises(CorpusLayoutError, match=r"librispeech corpus at .*test-\*.*found: "
                                                r"dev-clean/, train-clean-100/"):
        load_corpus(CorpusConfig(kind="librispeech", root=root))


def _noise_pools(tmp_path: Path) -> dict[str, Path]:
    wham = tmp_path / "wham_noise"
    for sub in ("tr", "cv", "tt"):
        for i in range(2):
            write(wham / sub / f"{sub}{i}.wav", tone_noise(i, 0.5))
    musan = tmp_path / "musan"
    for folder, source in (("noise", "free-sound"), ("music", "jamendo"), ("speech", "librivox")):
        for i in range(10):
            x = speechlike(i, 0.5) if folder == "speech" else tone_noise(i, 0.5)
            write(musan / folder / source / f"{folder}-{source}-{i:04d}.wav", x)
    demand = tmp_path / "demand"
    for env in ("DKITCHEN", "TMETRO"):
        for ch in (1, 2):
            write(demand / env / f"ch{ch:02d}.wav", tone_noise(ch, 1.0))
    return {"wham_noise": wham, "musan": musan, "demand": demand}


@pytest.mark.parametrize("noise_kind", ["wham_noise", "musan", "demand"])
def test_speech_pool_plus_noise_pool(tmp_path: Path, noise_kind: str) -> None:
    roots = _noise_pools(tmp_path)
    cfg = CorpusConfig(kind="librispeech", root=_libri(tmp_path / "ls"), noise_kind=noise_kind,
                       noise_root=roots[noise_kind], channel=1 if noise_kind == "demand" else None)
    if noise_kind == "wham_noise":
        with pytest.warns(UserWarning, match="CC-BY-NC-4.0"):
            c = load_corpus(cfg)
    else:
        c = load_corpus(cfg)
    want = {"wham_noise": {"wham"}, "musan": {"noise", "music"}, "demand": {"dkitchen", "tmetro"}}
    assert want[noise_kind] <= set(c.noise_types("train"))
    assert want[noise_kind] <= set(c.noise_types("test"))
    clip = c.noises("test", sorted(want[noise_kind])[:1])
    assert all(x.size > 0 for v in clip.values() for x in v)


def test_demand_time_split_is_disjoint(tmp_path: Path) -> None:
    roots = _noise_pools(tmp_path)
    c = load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path / "ls"),
                                 noise_kind="demand", noise_root=roots["demand"]))
    tr = c.noises("train", ["tmetro"])["tmetro"][0]
    te = c.noises("test", ["tmetro"])["tmetro"][0]
    assert tr.size == 12800 and te.size == 3200


def test_demand_zip_hint_and_wham_nested_hint(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "DKITCHEN_16k.zip").write_bytes(b"PK")
    with pytest.raises(CorpusLayoutError, match=r"demand corpus .*found DKITCHEN_16k.zip: unzip"):
        load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path / "ls"),
                                 noise_kind="demand", noise_root=tmp_path / "d"))
    _noise_pools(tmp_path / "w")
    with pytest.raises(CorpusLayoutError, match=r"wham_noise corpus .*set root to .*wham_noise"):
        load_corpus(CorpusConfig(kind="wham_noise", root=tmp_path / "w"))


def test_folder_paired_and_pools(tmp_path: Path) -> None:
    paired = tmp_path / "paired"
    for split in ("train", "test"):
        for spk in ("a", "b"):
            x = speechlike(ord(spk), 0.4, 22050)
            write(paired / split / "clean" / spk / "u1.wav", x, 22050)
            write(paired / split / "noisy" / spk / "u1.wav", x, 22050)
    c = load_corpus(CorpusConfig(kind="folder", root=paired))
    assert c.paired and [p[0] for p in c.pairs("test")] == ["a_u1", "b_u1"]
    pools = tmp_path / "pools"
    for split, spks in (("train", "xy"), ("test", "z")):
        for spk in spks:
            write(pools / "speech" / split / spk / "u1.flac", speechlike(ord(spk), 0.4))
        write(pools / "noise" / split / f"hum_{split}" / "n.wav", tone_noise(1, 0.5))
    c = load_corpus(CorpusConfig(kind="folder", root=pools))
    assert not c.paired and c.speakers("test") == ["z"]
    assert c.noise_types("test") == ["hum_test", "babble"]


def test_folder_loose_files_and_shared_speakers(tmp_path: Path) -> None:
    write(tmp_path / "speech" / "train" / "u1.wav", speechlike(1, 0.4))
    write(tmp_path / "speech" / "test" / "s" / "u1.wav", speechlike(1, 0.4))
    with pytest.raises(CorpusLayoutError, match=r"folder corpus .*files lie directly in train/"):
        load_corpus(CorpusConfig(kind="folder", root=tmp_path))
    write(tmp_path / "speech" / "train" / "s" / "u2.wav", speechlike(2, 0.4))
    with pytest.raises(CorpusLayoutError, match=r"disjoint train and test speakers .* s"):
        load_corpus(CorpusConfig(kind="folder", root=tmp_path))


def test_missing_root_and_bad_audio_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusLayoutError, match=r"timit corpus at .*nowhere .*not exist.*edit"):
        load_corpus(CorpusConfig(kind="timit", root=tmp_path / "nowhere"))
    root = _libri(tmp_path)
    (root / "test-clean" / "61" / "198" / "61-198-0001.flac").write_bytes(b"fLaC garbage")
    with pytest.raises(AudioError, match=r"61-198-0001\.flac"):
        load_corpus(CorpusConfig(kind="librispeech", root=root))


def test_noise_root_needs_noise_kind(tmp_path: Path) -> None:
    with pytest.raises(CorpusLayoutError, match="both noise_root and noise_kind"):
        load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path), noise_root=tmp_path))


def test_demand_exclude_removes_environments(tmp_path: Path) -> None:
    roots = _noise_pools(tmp_path)
    c = load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path / "ls"),
                                 noise_kind="demand", noise_root=roots["demand"],
                                 exclude=["tmetro"]))
    assert "tmetro" not in c.noise_types("train") and "dkitchen" in c.noise_types("train")
    with pytest.raises(CorpusLayoutError, match="exclude"):
        load_corpus(CorpusConfig(kind="librispeech", root=_libri(tmp_path / "ls2"),
                                 noise_kind="demand", noise_root=roots["demand"],
                                 exclude=["nosuchplace"]))
