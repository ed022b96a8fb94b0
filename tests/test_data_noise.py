"""Synthetic noises: finite, right length, seeded, and with the spectra
docs/data.md#synthetic-noises asks for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from seofp_lab.data import noise as N

FS = 16000


def _speechlike(seed: int = 0, seconds: float = 4.0) -> np.ndarray:
    """Low-passed, amplitude-modulated noise with a speech-like tilt (no real corpus needed)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / FS) ** 2
    return (0.05 * x * env / x.std()).astype(np.float32)


def _slope_db_per_decade(x: np.ndarray, lo: float = 50.0, hi: float = 6000.0) -> float:
    f, p = welch(x, FS, nperseg=4096)
    keep = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log10(f[keep]), 10 * np.log10(p[keep]), 1)[0])


@pytest.mark.parametrize("kind", N.SYNTHETIC)
def test_each_type_is_finite_sized_and_seeded(kind: str) -> None:
    psd = N.speech_psd([_speechlike()])
    a = N.synthesize(kind, 12345, N.noise_rng(3, "train", kind), psd=psd)
    b = N.synthesize(kind, 12345, N.noise_rng(3, "train", kind), psd=psd)
    c = N.synthesize(kind, 12345, N.noise_rng(4, "train", kind), psd=psd)
    assert a.shape == (12345,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(N.NOISE_RMS, rel=1e-3)


def test_pink_and_brown_slopes() -> None:
    rng = np.random.default_rng(0)
    assert _slope_db_per_decade(N.pink(FS * 8, rng)) == pytest.approx(-10.0, abs=1.0)
    assert _slope_db_per_decade(N.brown(FS * 8, rng)) == pytest.approx(-20.0, abs=1.5)
    assert _slope_db_per_decade(N.white(FS * 8, rng)) == pytest.approx(0.0, abs=1.0)


def test_ssn_matches_the_speech_spectrum() -> None:
    speech = _speechlike(seconds=8.0)
    psd = N.speech_psd([speech])
    x = N.ssn(FS * 8, np.random.default_rng(1), psd)
    _, p_noise = welch(x, FS, window="hann", nperseg=1024, noverlap=512)
    band = slice(8, 448)  # 125 Hz .. 7 kHz
    ref = 10 * np.log10(psd[band] / psd[band].mean())
    got = 10 * np.log10(p_noise[band] / p_noise[band].mean())
    assert np.median(np.abs(ref - got)) < 1.0
    assert np.max(np.abs(ref - got)) < 4.0


def test_engine_has_its_fundamental_and_hum_variant() -> None:
    x = N.engine(FS * 4, np.random.default_rng(2), hum=True)
    f, p = welch(x, FS, nperseg=8192)
    peak = f[np.argmax(p[f > 20]) + np.count_nonzero(f <= 20)]
    assert min(abs(peak - 50), abs(peak - 60)) < 3.0


def test_modulated_envelope_fluctuates() -> None:
    x = N.modulated(FS * 4, np.random.default_rng(5)).astype(np.float64)
    frames = (x[: FS * 4 // 400 * 400].reshape(-1, 400) ** 2).mean(1)  # 25 ms frames
    assert 10 * np.log10(np.percentile(frames, 95) / np.percentile(frames, 5)) > 6.0


def test_babble_sums_talkers_at_equal_rms() -> None:
    talkers = [_speechlike(s, 2.0) * g for s, g in enumerate([1.0, 0.1, 3.0, 0.5])]
    x = N.babble(talkers, FS * 3, np.random.default_rng(0))
    assert x.shape == (FS * 3,) and np.isfinite(x).all()
    with pytest.raises(ValueError, match="at least one babble talker"):
        N.babble([], 10, np.random.default_rng(0))
