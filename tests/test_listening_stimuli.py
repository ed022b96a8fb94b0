"""`seofp study prepare`: loudness matching, catch and ladder stimuli, the frozen manifest, and
byte-unique served buffers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from synthetic_study import make_study

from seofp_lab.cli import main as seofp
from seofp_lab.errors import StudyError
from seofp_lab.listening.stimuli import load_manifest, prepare_study, render_wav


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    study = make_study(tmp_path, utterances=4, ladder={"enabled": True, "levels_db": [0, 12, 24],
                                                       "trials_per_level": 2, "items": 2})
    return study, prepare_study(study)


def test_prepare_loudness_matches_and_records_the_difference(prepared) -> None:
    _, m = prepared
    assert len(m.items) == 12 and len(m.data["ladder"]) == 2 * 3
    meter = pyloudnorm.Meter(48000)
    for item in m.data["items"]:
        for name in ("baseline", "compressed", "catch"):
            x = m.clip(item["item_id"], name)
            assert meter.integrated_loudness(x) == pytest.approx(-26.0, abs=0.1)
            assert 20 * np.log10(np.abs(x).max()) < -1.0
            assert len(x) == 48000  # 1 s at the serving rate, resampled once
        assert abs(item["loudness_diff_db"]) < 0.1  # the -30 dB perturbation barely moves it
        assert item["diff_snr_db"] == pytest.approx(30.0, abs=0.5)
    lad = m.data["ladder"][0]
    ref, probe = (m.clip(lad["item_id"], k, lad["gain_db"]) for k in ("ladder_ref", "ladder"))
    assert meter.integrated_loudness(probe) == pytest.approx(meter.integrated_loudness(ref),
                                                             abs=0.1)


def test_ladder_scales_the_difference_in_db(prepared) -> None:
    _, m = prepared
    item = m.ladder_items[0]
    diffs = {}
    for g in (0.0, 12.0, 24.0):
        ref, probe = m.clip(item, "ladder_ref", g), m.clip(item, "ladder", g)
        # loudness matching rescales the pair, so compare the part of the probe that is not
        # the reference with the part that is: g d against y_b
        along = probe @ ref / (ref @ ref) * ref
        diffs[g] = 20 * np.log10(np.linalg.norm(probe - along) / np.linalg.norm(along))
    assert diffs[12.0] - diffs[0.0] == pytest.approx(12.0, abs=0.3)
    assert diffs[24.0] - diffs[12.0] == pytest.approx(12.0, abs=0.3)


def test_manifest_is_reproducible_and_tamper_evident(prepared, tmp_path: Path) -> None:
    study, m = prepared
    again = prepare_study(study, out_dir=tmp_path / "again")
    assert again.digest == m.digest
    blob = json.loads((m.root / "manifest.json").read_text())
    blob["manifest"]["items"][0]["snr"] = 99.0
    (m.root / "manifest.json").write_text(json.dumps(blob))
    with pytest.raises(StudyError, match="manifest was edited"):
        load_manifest(m.root)


def test_missing_stimuli_are_named(prepared) -> None:
    _, m = prepared
    (m.root / m.data["items"][3]["clips"]["catch"]).unlink()
    with pytest.raises(StudyError, match="more stimulus files"):
        load_manifest(m.root)


def test_changed_study_yaml_needs_a_new_prepare(prepared) -> None:
    study, m = prepared
    (study / "study.yaml").write_text((study / "study.yaml").read_text() + "title: changed\n")
    from seofp_lab.listening.protocol import load_study

    _, new_hash = load_study(study)
    with pytest.raises(StudyError, match="prepare"):
        load_manifest(m.root, new_hash)


def test_misaligned_runs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    study = make_study(tmp_path, utterances=3)
    rows = list(csv.DictReader((study / "runs/compressed/manifest.csv").open()))
    path = Path(study / "runs/compressed" / rows[0]["enhanced"])
    x, sr = sf.read(str(path))
    sf.write(str(path), np.roll(x, 40), sr, subtype="FLOAT")  # 2.5 ms of latency
    with pytest.raises(StudyError, match="lag"):
        prepare_study(study)


def test_too_few_items_for_the_design_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    study = make_study(tmp_path, utterances=2)  # 6 items, 8 test trials per listener
    with pytest.raises(StudyError, match="at least 8 test items"):
        prepare_study(study)


def test_missing_run_dir_is_a_clear_cli_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    study = make_study(tmp_path, utterances=2)
    (study / "runs/baseline/manifest.csv").unlink()
    assert seofp(["study", "prepare", str(study)]) == 2
    assert "Expected an enhanced test set" in capsys.readouterr().err


def test_served_buffers_are_byte_unique_and_equal_in_size() -> None:
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal(48000)
    wavs = [render_wav(x, 48000) for _ in range(3)]  # as for X copying A
    assert len({len(w) for w in wavs}) == 1
    assert len(set(wavs)) == 3
    pcm = [sf.read(io.BytesIO(w), dtype="int16")[0] for w in wavs]
    assert not np.array_equal(pcm[0], pcm[1]) and not np.array_equal(pcm[0], pcm[2])
    assert np.abs(pcm[0].astype(int) - np.round(x * 32767)).max() <= 1  # dither: one LSB
    silent = sf.read(io.BytesIO(render_wav(np.zeros(1000), 48000)), dtype="int16")[0]
    assert set(np.unique(silent)) <= {-1, 0, 1}


def _enhanced_from_test_set(ts, out: Path, diff_db: float | None) -> Path:
    """An enhanced folder exactly as `seofp evaluate` writes one (evaluate.enhanced)."""
    from seofp_lab.evaluate.enhanced import write_manifest

    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for item in ts.items:
        noisy, clean = ts.load(item)
        y = 0.7 * clean + 0.3 * noisy
        if diff_db is not None:
            pert = rng.standard_normal(len(y))
            y = y + pert * np.sqrt(np.mean(y**2) / np.mean(pert**2)) * 10 ** (diff_db / 20)
        path = out / f"{item.id}.wav"
        sf.write(str(path), y.astype(np.float32), 16000, subtype="FLOAT")
        rows.append({"id": item.id, "speaker": item.speaker, "noise": item.noise,
                     "snr": item.snr, "noisy": str(item.noisy_path),
                     "clean": str(item.clean_path), "enhanced": str(path)})
    write_manifest(out, rows)
    return out


def test_a_study_from_a_real_test_set_keeps_sentences_apart_and_balanced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The production path: a test set written by seofp_lab/data/testset.py (one clean file per
    mixture), enhanced folders in evaluate's layout (no utterance column), a prepared study."""
    from collections import Counter

    import yaml
    from _data_trees import make_embedded_tree

    from seofp_lab.config import CorpusConfig
    from seofp_lab.data.testset import prepare_test_set
    from seofp_lab.listening.protocol import build_schedule, load_study

    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    tree = make_embedded_tree(tmp_path / "embedded", targets=4, babble=2)
    ts = prepare_test_set(CorpusConfig(root=tree, test_snrs=[0.0, 5.0, 10.0, 15.0],
                                       test_noises=["rain", "market"],
                                       test_mixtures_per_utterance=4), progress=False)
    assert len({i.clean_path for i in ts.items}) == len(ts.items) == 32  # a file per mixture
    study_dir = tmp_path / "real"
    _enhanced_from_test_set(ts, study_dir / "runs" / "baseline", None)
    _enhanced_from_test_set(ts, study_dir / "runs" / "compressed", -30.0)
    (study_dir / "study.yaml").write_text(yaml.safe_dump({
        "name": "real", "baseline_dir": "runs/baseline", "compressed_dir": "runs/compressed",
        "seed": 5, "items": {"count": None},
        "trials": {"practice": 0, "blocks": 2, "test_per_block": 8, "catch_per_block": 1,
                   "null_per_block": 1, "trap_per_block": 1, "break_seconds": 0},
        "screening": {"headphone_trials": 0, "headphone_pass": 0, "environment_trials": 0,
                      "environment_pass": 0},
        "stimuli": {"side_metrics": False, "max_seconds": 1.0}}))
    m = prepare_study(study_dir)
    truth = {i.id: (i.utterance, i.speaker) for i in ts.items}
    assert {i["item_id"]: (i["utterance_id"], i["speaker"]) for i in m.data["items"]} == truth
    assert len({i.utterance_id for i in m.items}) == 8  # 8 sentences, not 32 file names
    meter = pyloudnorm.Meter(48000)
    trap = m.clip(m.items[0].item_id, "trap")
    assert meter.integrated_loudness(trap) == pytest.approx(-26.0, abs=0.1)
    study, _ = load_study(study_dir)
    utt = {i.item_id: i.utterance_id for i in m.items}
    snr = {i.item_id: i.snr for i in m.items}
    for seed in range(12):
        specs = build_schedule(study, m.items, 1000 + seed, seed, m.ladder_items)
        main = [s for s in specs if s.trial_type == "main"]
        assert len({s.item_id for s in main}) == 16
        assert Counter(s.trial_type for s in specs) == {"main": 16, "catch": 2, "null": 2,
                                                        "trap": 2}
        per_snr = Counter(snr[s.item_id] for s in main)
        assert max(per_snr.values()) - min(per_snr.values()) <= 1
        per_utt = Counter(utt[s.item_id] for s in main)  # 16 trials over 8 sentences
        assert set(per_utt.values()) == {2}
        for block in (1, 2):
            b = [s for s in specs if s.block == block]
            assert all(utt[x.item_id] != utt[y.item_id] for x, y in zip(b, b[1:], strict=False))
            # per-block balance: a sentence heard twice is heard once in each block
            assert max(Counter(utt[s.item_id] for s in b if s.trial_type == "main").values()) == 1
