"""CSIG/CBAK/COVL: the regressions against Loizou's worked example, LLR/WSS/segSNR against an
independent implementation on fixed real pairs, and the analytic limits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz

from seofp_lab.evaluate import composite as C
from seofp_lab.evaluate.metrics import score
from tests.data.make_composite_reference import pairs

REFERENCE = json.loads((Path(__file__).parent / "data" / "composite_reference.json").read_text())


def test_regression_reproduces_the_toolbox_worked_example() -> None:
    # Loizou's composite.m readme: sp09.wav vs enhanced_logmmse.wav (8 kHz)
    r = C.regression(pesq=2.255732, llr=0.681368, wss=49.671978, segsnr=3.991727)
    assert r["csig"] == pytest.approx(3.3050, abs=5e-5)
    assert r["cbak"] == pytest.approx(2.6160, abs=5e-5)
    assert r["covl"] == pytest.approx(2.7133, abs=5e-5)


def test_regression_clips_to_the_rating_scale() -> None:
    assert C.regression(pesq=4.64, llr=0.0, wss=0.0, segsnr=35.0) == dict.fromkeys(
        ("csig", "cbak", "covl"), 5.0)
    assert C.regression(pesq=1.0, llr=3.0, wss=150.0, segsnr=-10.0) == dict.fromkeys(
        ("csig", "cbak", "covl"), 1.0)


@pytest.mark.parametrize("name", sorted(REFERENCE["pairs"]))
def test_measures_match_the_independent_implementation(name: str) -> None:
    clean, processed = pairs()[name]
    got = C.measures(clean, processed, REFERENCE["fs"])
    want = REFERENCE["pairs"][name]
    for k in ("llr", "wss", "segsnr"):
        assert got[k] == pytest.approx(want[k], rel=1e-8, abs=1e-9), k


def test_identical_signals_give_the_limits() -> None:
    clean = pairs()["white_10db"][0].astype(np.float32)
    m = C.measures(clean, clean, 16000)
    assert m == {"llr": 0.0, "wss": 0.0, "segsnr": 35.0}
    assert score(clean, clean, ["csig", "cbak", "covl"]) == dict.fromkeys(
        ("csig", "cbak", "covl"), 5.0)


@pytest.mark.parametrize(
    ("gain", "want_db"), [(1.001, 35.0), (11.0, -10.0), (-1.0, -20 * np.log10(2))]
)
def test_segsnr_clamps_to_its_range(gain: float, want_db: float) -> None:
    x = np.random.default_rng(0).standard_normal(4800)
    frames = C.segsnr_frames(x, gain * x, 16000)  # every frame at the same SNR
    assert frames.shape == (36,)  # floor((4800 - 480) / 120): the reference's count
    assert frames == pytest.approx(want_db, abs=1e-9)


def test_lpc_matches_a_toeplitz_solve() -> None:
    frames = np.random.default_rng(1).standard_normal((4, 480))
    r, a = C._lpc(frames, 16)
    for f in range(4):
        assert -a[f, 1:] == pytest.approx(solve_toeplitz(r[f, :16], r[f, 1:17]), rel=1e-9)


def test_nearest_peaks_follow_the_reference_search() -> None:
    # slope > 0 searches right, else left; the reference takes energy[n - 1] / energy[n + 1]
    energy = np.array([[0.0, 1.0, 3.0, 2.0, 2.0, 5.0]])
    peaks = C._nearest_peaks(energy, np.diff(energy, axis=1))
    assert peaks.tolist() == [[1.0, 1.0, 3.0, 3.0, 2.0]]


def test_short_input_is_refused_and_silence_stays_finite() -> None:
    with pytest.raises(ValueError, match="at least 600 samples"):
        C.measures(np.ones(500), np.ones(500), 16000)
    with pytest.raises(ValueError, match="one length"):
        C.measures(np.ones(16000), np.ones(16001), 16000)
    # the reference's eps offset keeps the LPC model of digital silence defined
    m = C.measures(np.zeros(16000), np.random.default_rng(0).standard_normal(16000), 16000)
    assert m["segsnr"] == -10.0 and np.isfinite(m["llr"]) and m["llr"] > 5


def test_noise_lowers_the_composites() -> None:
    clean, noisy = (x.astype(np.float32) for x in pairs()["machine_5db"])
    mild = (clean + 0.1 * (noisy - clean)).astype(np.float32)
    worse, better = score(clean, noisy, ["csig", "cbak", "covl"]), score(
        clean, mild, ["csig", "cbak", "covl"])
    assert all(1.0 <= worse[k] < better[k] <= 5.0 for k in worse)
