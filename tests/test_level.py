"""Active speech level (P.56 approximation): convention, silence invariance, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.data.level import active_level_db, normalize_active_level
from seofp_lab.errors import AudioError

FS = 16000


def _sine(seconds: float, amp: float = 1.0, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.sin(2 * np.pi * f * t)


def _noise(seconds: float, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return rms * np.random.default_rng(seed).standard_normal(int(seconds * FS))


def _rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x**2))


def _speechlike(seed: int = 0) -> np.ndarray:
    """Bursts of noise at 4 Hz syllable rate with pauses and a -90 dB gated floor, 4 s."""
    rng = np.random.default_rng(seed)
    x = _noise(4.0, 0.2, seed)
    t = np.arange(x.size) / FS
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    env[FS : 2 * FS] = 0.0  # a one-second pause
    return x * env + 10 ** (-90 / 20) * rng.standard_normal(x.size)


def test_full_scale_sine_is_minus_3_dbov() -> None:
    assert active_level_db(_sine(2.0)) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("make", [lambda: _sine(3.0, 0.3), lambda: _noise(3.0, 0.05)], ids=str)
@pytest.mark.parametrize("floor_db", [None, -90.0])  # digital zeros, or a G.722-like gated floor
def test_inserted_silence_leaves_the_level(make, floor_db: float | None) -> None:
    x = make()
    gap = np.zeros(4 * FS)
    if floor_db is not None:
        gap = 10 ** (floor_db / 20) * np.random.default_rng(9).standard_normal(gap.size)
    half = x.size // 2
    gapped = np.concatenate([gap, x[:half], gap, x[half:], gap])
    assert _rms_db(x) - _rms_db(gapped) > 5.0  # the plain RMS falls a lot...
    assert active_level_db(gapped) == pytest.approx(active_level_db(x), abs=0.1)  # ...P.56 does not


def test_speech_like_level_exceeds_rms() -> None:
    x = _speechlike()
    assert active_level_db(x) > _rms_db(x) + 2.0  # pauses and troughs are not active


@pytest.mark.parametrize("gain_db", [-40.0, -6.0, 12.0])
def test_level_follows_gain(gain_db: float) -> None:
    x = _speechlike(1)
    shifted = active_level_db(x * 10 ** (gain_db / 20))
    assert shifted == pytest.approx(active_level_db(x) + gain_db, abs=1e-6)


@pytest.mark.parametrize("target", [-26.0, -33.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_hits_target(target: float, dtype: type) -> None:
    x = _speechlike(2).astype(dtype)
    y = normalize_active_level(x, target)
    assert y.dtype == dtype
    assert active_level_db(y) == pytest.approx(target, abs=0.1)
    assert np.allclose(y / y.max(), x / x.max(), atol=1e-5)  # only a gain


def test_silence_has_no_level() -> None:
    assert active_level_db(np.zeros(FS)) == float("-inf")
    with pytest.raises(AudioError, match="digital silence"):
        normalize_active_level(np.zeros(FS))


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.array([]), np.array([0.1, np.nan])])
def test_bad_input_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(AudioError, match="Expected"):
        active_level_db(bad)
