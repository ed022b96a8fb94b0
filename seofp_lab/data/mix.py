"""Mixing clean speech with noise at a given SNR (docs/data.md#mixing).

- **SNR** = 10·log10(P_speech,active / P_noise): the speech power is the active level of P.56
  (:mod:`seofp_lab.data.level`), the noise power is the mean power of the segment actually added.
  Only the noise is scaled.
- **Segment**: from a random offset into the clip made periodic with a 50 ms equal-power crossfade
  (:func:`loop_unit`), so a short clip is looped and never zero-padded.
- **Clipping**: a noisy peak above -1 dBFS scales noisy and clean by one common factor (the SNR is
  unchanged); the factor is returned as ``gain``. Nothing is hard-clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seofp_lab.data.audio import FS
from seofp_lab.data.level import active_level_db
from seofp_lab.errors import AudioError

CROSSFADE_S = 0.05
PEAK_DBFS = -1.0
# float32 rounding must not push a protected peak back over the limit
_PEAK_MARGIN = 1.0 - 1e-5


def loop_unit(noise: np.ndarray, fs: int = FS, crossfade_s: float = CROSSFADE_S) -> np.ndarray:
    """One period of the clip looped with an equal-power crossfade of its tail into its head.

    Tiling the result is seamless: its end is followed by its start, which fades the clip's tail
    out while its head fades in. Equal power (sin/cos) keeps the variance of uncorrelated noise.

    Args:
        noise: (L,) samples.
        fs: rate in Hz.
        crossfade_s: crossfade length; at most a quarter of the clip for very short clips.

    Returns:
        (L - crossfade,) float32 samples.
    """
    x = np.asarray(noise, dtype=np.float32)
    if x.ndim != 1 or x.size < 8:
        raise AudioError(f"Expected a noise clip of at least 8 samples but got shape {x.shape}")
    xf = min(int(round(crossfade_s * fs)), x.size // 4)
    if xf == 0:
        return x.copy()
    t = (np.arange(xf, dtype=np.float64) + 0.5) / xf
    fade_in, fade_out = np.sin(0.5 * np.pi * t), np.cos(0.5 * np.pi * t)
    unit = x[: x.size - xf].copy()
    unit[:xf] = x[:xf] * fade_in + x[x.size - xf :] * fade_out
    return unit


def segment(unit: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``n`` samples of the periodic ``unit`` starting at ``offset`` (wrapping as often as needed).

    >>> segment(np.arange(4.0), 6, 3).tolist()
    [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    """
    p = unit.size
    offset %= p
    if offset + n <= p:
        return unit[offset : offset + n]
    reps = -(-(offset + n) // p)
    return np.tile(unit, reps)[offset : offset + n]


@dataclass(frozen=True)
class Mixture:
    """One mixture: ``noisy = clean + noise`` (after the common clipping gain)."""

    noisy: np.ndarray  # (time,) float32
    clean: np.ndarray  # (time,) float32, the level-normalised clean times gain
    noise: np.ndarray  # (time,) float32, the scaled noise times gain
    snr_db: float
    gain: float  # 1.0 unless clipping protection scaled both signals


def noise_gain(speech_power: float, noise_seg: np.ndarray, snr_db: float) -> float:
    """Amplitude factor that puts ``noise_seg`` at ``snr_db`` below ``speech_power``."""
    p_noise = float(np.dot(noise_seg, noise_seg)) / max(noise_seg.size, 1)
    if p_noise <= 0.0:
        raise AudioError("Expected a noise segment with power but got digital silence")
    return float(np.sqrt(speech_power / (p_noise * 10 ** (snr_db / 10))))


def protection_gain(noisy: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> float:
    """1.0, or the factor that brings the peak of ``noisy`` down to ``peak_dbfs``."""
    peak = float(np.max(np.abs(noisy))) if noisy.size else 0.0
    limit = 10 ** (peak_dbfs / 20)
    return 1.0 if peak <= limit else limit * _PEAK_MARGIN / peak


def mix_at_snr(
    clean: np.ndarray,
    noise_seg: np.ndarray,
    snr_db: float,
    *,
    speech_power: float | None = None,
    fs: int = FS,
    peak_dbfs: float = PEAK_DBFS,
) -> Mixture:
    """Add ``noise_seg`` to ``clean`` at ``snr_db``, then protect against clipping.

    Args:
        clean: (time,) speech (normally at -26 dBov active level).
        noise_seg: (time,) the noise samples to add, already cut to length.
        snr_db: wanted SNR: active speech power over the mean power of ``noise_seg``.
        speech_power: active power of ``clean`` if known (saves the P.56 measurement).
        fs: rate in Hz, for the level measurement.
        peak_dbfs: the noisy peak allowed before both signals are scaled down.

    Returns:
        The :class:`Mixture`; its SNR equals ``snr_db`` whatever the gain.
    """
    clean = np.asarray(clean, dtype=np.float32)
    noise_seg = np.asarray(noise_seg, dtype=np.float32)
    if clean.shape != noise_seg.shape or clean.ndim != 1:
        raise AudioError(
            "Expected clean and noise of equal 1-D shape but got "
            f"{clean.shape} and {noise_seg.shape}"
        )
    if speech_power is None:
        speech_power = 10 ** (active_level_db(clean, fs) / 10)
    noise = noise_seg * np.float32(noise_gain(speech_power, noise_seg, snr_db))
    noisy = clean + noise
    gain = protection_gain(noisy, peak_dbfs)
    if gain != 1.0:
        g = np.float32(gain)
        noisy, clean, noise = noisy * g, clean * g, noise * g
    return Mixture(noisy=noisy, clean=clean, noise=noise, snr_db=float(snr_db), gain=gain)


def measured_snr_db(clean: np.ndarray, noise: np.ndarray, fs: int = FS) -> float:
    """SNR as docs/data.md#mixing defines it: active level of ``clean`` over the mean power of
    ``noise``."""
    p_noise = float(np.dot(noise.astype(np.float64), noise.astype(np.float64))) / noise.size
    return active_level_db(clean, fs) - 10 * np.log10(p_noise)
