"""The committed embedded corpus matches its manifest, attribution, licences and audio contract."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seofp_lab.data.build_embedded import (
    ALLOWED_LICENCES,
    BABBLE_PER_SPEAKER,
    CLIPS_PER_SPEAKER,
    MANIFEST_COLUMNS,
    MAX_S,
    MIN_S,
    NOISE_MAX_S,
    SIZE_LIMIT_BYTES,
    SPEAKERS,
    TONE_RUN,
    read_manifest,
    render_attribution,
    tone_run,
)
from seofp_lab.data.level import active_level_db

EMBEDDED = Path(__file__).resolve().parents[1] / "seofp_lab" / "data" / "embedded"
AUDIO = sorted(p for p in EMBEDDED.rglob("*.flac"))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return read_manifest(EMBEDDED / "MANIFEST.tsv")


@pytest.fixture(scope="module")
def audio() -> dict[str, tuple[np.ndarray, int]]:
    return {p.relative_to(EMBEDDED).as_posix(): sf.read(str(p), always_2d=True) for p in AUDIO}


def test_manifest_columns_are_exact() -> None:
    header = (EMBEDDED / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split("\t")) == MANIFEST_COLUMNS


def test_every_file_has_one_row_with_its_hash(rows: list[dict[str, str]]) -> None:
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files))
    assert set(files) == {p.relative_to(EMBEDDED).as_posix() for p in AUDIO}
    for r in rows:
        assert hashlib.sha256((EMBEDDED / r["file"]).read_bytes()).hexdigest() == r["sha256"]


def test_attribution_is_rendered_from_the_manifest(rows: list[dict[str, str]]) -> None:
    assert (EMBEDDED / "ATTRIBUTION.md").read_text(encoding="utf-8") == render_attribution(rows)


def test_licences_are_allowed_and_their_texts_shipped(rows: list[dict[str, str]]) -> None:
    assert {r["licence"] for r in rows} <= set(ALLOWED_LICENCES)
    for package in {r["package"] for r in rows}:
        assert (EMBEDDED / "LICENSES" / f"{package}.copyright").is_file()


def test_total_size_is_under_the_limit() -> None:
    assert sum(f.stat().st_size for f in EMBEDDED.rglob("*") if f.is_file()) < SIZE_LIMIT_BYTES


def test_audio_is_16k_mono_within_durations(rows: list[dict[str, str]], audio) -> None:
    for r in rows:
        x, fs = audio[r["file"]]
        assert (fs, x.shape[1]) == (16000, 1), r["file"]
        dur = x.shape[0] / fs
        assert abs(dur - float(r["duration_s"])) < 1e-3
        lo, hi = (MIN_S, MAX_S) if r["kind"] == "speech" else (1.0, NOISE_MAX_S)
        assert lo <= dur <= hi, r["file"]
        assert np.abs(x).max() < 10 ** (-1 / 20), r["file"]  # no clipping, 1 dB headroom


def test_layout_and_uses(rows: list[dict[str, str]]) -> None:
    for r in rows:
        kind_dir, label, name = r["file"].split("/")
        assert (kind_dir, label) == (r["kind"], r["label"])
        assert name.startswith(label + "_")
        assert r["use"] in (("target", "babble") if r["kind"] == "speech" else ("noise",))
    for src in SPEAKERS:
        uses = [r["use"] for r in rows if r["label"] == src.label]
        assert len(uses) == CLIPS_PER_SPEAKER
        assert uses.count("babble") == BABBLE_PER_SPEAKER
    librivox = [r for r in rows if r["label"] == "lv_en_m"]
    assert len(librivox) == 5
    assert all("/librivox/" in r["source_path"] for r in librivox)
    assert not any("tidigits" in r["source_path"].lower() for r in rows)  # LDC audio, never shipped
    assert {r["label"] for r in rows if r["kind"] == "noise"} == {
        "rain",
        "machine",
        "music",
        "market",
    }


def test_speech_level_and_no_tones(rows: list[dict[str, str]], audio) -> None:
    for r in rows:
        if r["kind"] != "speech":
            continue
        x = audio[r["file"]][0][:, 0]
        assert active_level_db(x) == pytest.approx(-26.0, abs=1.0), r["file"]
        assert tone_run(x) < TONE_RUN, r["file"]
