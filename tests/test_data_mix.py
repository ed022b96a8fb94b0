"""Mixing at an SNR on active speech level, noise looping, clipping protection
(docs/data.md#mixing)."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.data.level import normalize_active_level
from seofp_lab.data.mix import loop_unit, measured_snr_db, mix_at_snr, segment
from seofp_lab.errors import AudioError

FS = 16000


def _speech(seed: int = 0, seconds: float = 3.0, gap: bool = True) -> np.ndarray:
    """Bursts of modulated noise with gated silence between them, at -26 dBov."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * np.arange(n) / FS))
    if gap:
        x[n // 3 : n // 2] = 0.0  # digital silence must not lower the level
    return normalize_active_level(x.astype(np.float32))


@pytest.mark.parametrize("snr", [-10.0, -5.0, -2.5, 0.0, 2.5, 7.5, 12.5, 17.5, 30.0])
def test_measured_snr_matches_target(snr: float) -> None:
    clean = _speech(int(snr * 10) % 7)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(FS) * np.linspace(0.2, 2.0, FS)  # non-stationary, shorter
    unit = loop_unit(noise)
    seg = segment(unit, clean.size, int(rng.integers(unit.size)))
    m = mix_at_snr(clean, seg, snr)
    assert measured_snr_db(m.clean, m.noise) == pytest.approx(snr, abs=0.1)
    np.testing.assert_allclose(m.noisy, m.clean + m.noise, atol=1e-6)


def test_mixing_is_deterministic_with_a_seed() -> None:
    def draw(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        unit = loop_unit(rng.standard_normal(FS))
        seg = segment(unit, 3 * FS, int(rng.integers(unit.size)))
        return mix_at_snr(_speech(), seg, float(rng.choice([0.0, 5.0]))).noisy

    assert np.array_equal(draw(7), draw(7))
    assert not np.array_equal(draw(7), draw(8))


def test_clipping_protection_scales_both_and_keeps_snr() -> None:
    clean = _speech() * np.float32(12.0)  # peaks well above full scale
    noise = np.random.default_rng(2).standard_normal(clean.size).astype(np.float32)
    m = mix_at_snr(clean, noise, -5.0)
    limit = 10 ** (-1 / 20)
    assert m.gain < 1.0
    assert np.abs(m.noisy).max() <= limit and np.abs(m.clean).max() <= limit
    assert measured_snr_db(m.clean, m.noise) == pytest.approx(-5.0, abs=0.1)
    np.testing.assert_allclose(m.clean, clean * np.float32(m.gain), rtol=1e-6)


def test_no_protection_needed_means_unit_gain() -> None:
    clean = _speech()
    m = mix_at_snr(clean, np.random.default_rng(3).standard_normal(clean.size), 20.0)
    assert m.gain == 1.0 and np.array_equal(m.clean, clean)


def test_short_noise_is_looped_never_zero_padded() -> None:
    rng = np.random.default_rng(4)
    short = rng.standard_normal(int(0.3 * FS)).astype(np.float32)  # 300 ms for a 5 s utterance
    unit = loop_unit(short)
    assert unit.size == short.size - int(0.05 * FS)
    seg = segment(unit, 5 * FS, int(0.25 * FS))
    assert seg.shape == (5 * FS,)
    frames = (seg.astype(np.float64).reshape(-1, 160) ** 2).mean(1)  # 10 ms frames
    assert frames.min() > 0.2 * frames.mean()  # no silent stretch anywhere, seams included
    # the crossfade region blends tail into head (continuity at the seam)
    np.testing.assert_array_equal(unit[800:], short[800 : short.size - 800])


def test_equal_power_crossfade_keeps_variance() -> None:
    rng = np.random.default_rng(5)
    units = np.stack([loop_unit(rng.standard_normal(4000)) for _ in range(400)])
    var = units.astype(np.float64).var(0)
    assert var[:800].mean() == pytest.approx(1.0, abs=0.05)


def test_silent_noise_and_shape_mismatch_are_errors() -> None:
    with pytest.raises(AudioError, match="digital silence"):
        mix_at_snr(_speech(), np.zeros(3 * FS, np.float32), 5.0)
    with pytest.raises(AudioError, match="equal 1-D shape"):
        mix_at_snr(_speech(), np.ones(10, np.float32), 5.0)
    with pytest.raises(AudioError, match="at least 8 samples"):
        loop_unit(np.ones(3))
