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
