"""Synthetic noises, generated at run time from a seed (docs/data.md#synthetic-noises).

Each generator returns float32 samples scaled to :data:`NOISE_RMS`; mixing rescales the noise to
the wanted SNR anyway, the fixed RMS only makes clips comparable. The same seed gives the same
samples on every machine (numpy's PCG64 streams are stable).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from scipy.signal import lfilter, welch

from seofp_lab.data.audio import FS
from seofp_lab.data.mix import loop_unit, segment

SyntheticKind = Literal["white", "pink", "brown", "ssn", "modulated", "engine"]
SYNTHETIC: tuple[str, ...] = ("white", "pink", "brown", "ssn", "modulated", "engine")
NOISE_RMS = 10 ** (-26 / 20)  # the speech level, so an unscaled mixture sits near 0 dB SNR
WELCH_NFFT = 1024


def _scaled(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x * (NOISE_RMS / np.sqrt(np.mean(x * x)))).astype(np.float32)


def _shaped(n: int, rng: np.random.Generator, amplitude: np.ndarray | None, fs: int) -> np.ndarray:
    """White noise whose FFT is multiplied by ``amplitude`` (a function of rfft frequency)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    if amplitude is not None:
        spec *= amplitude
    return np.fft.irfft(spec, n)


def _power_law(n: int, fs: int, exponent: float) -> np.ndarray:
    f = np.fft.rfftfreq(n, 1.0 / fs)
    amp = np.zeros_like(f)
    amp[1:] = f[1:] ** -exponent  # DC is removed: noise with an offset is not what we want
    return amp


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) Gaussian white noise."""
    return _scaled(rng.standard_normal(n))


def pink(n: int, rng: np.random.Generator, fs: int = FS) -> np.ndarray:
    """(n,) noise with 1/f power (-10 dB per decade): amplitude f^-1/2 in the FFT domain."""
    return _scaled(_shaped(n, rng, _power_law(n, fs, 0.5), fs))


def brown(n: int, rng: np.random.Generator, fs: int = FS) -> np.ndarray:
    """(n,) noise with 1/f^2 power (-20 dB per decade): amplitude f^-1 in the FFT domain."""
    return _scaled(_shaped(n, rng, _power_law(n, fs, 1.0), fs))


def speech_psd(signals: Iterable[np.ndarray], fs: int = FS) -> np.ndarray:
    """Long-term power spectrum of speech: Welch, 1024-point Hann, 50 % overlap, length-weighted.

    Returns:
        (513,) power spectral density, averaged over all signals by their length.
    """
    total = np.zeros(WELCH_NFFT // 2 + 1)
    weight = 0
    for x in signals:
        if x.size < WELCH_NFFT:
            continue
        _, p = welch(x, fs, window="hann", nperseg=WELCH_NFFT, noverlap=WELCH_NFFT // 2)
        total += p * x.size
        weight += x.size
    if weight == 0:
        raise ValueError(f"Expected speech of at least {WELCH_NFFT} samples for the SSN spectrum")
    return total / weight


def ssn(n: int, rng: np.random.Generator, psd: np.ndarray, fs: int = FS) -> np.ndarray:
    """(n,) speech-shaped noise: white noise given the long-term spectrum ``psd`` (513 bins)."""
    f_psd = np.linspace(0.0, fs / 2, psd.size)
    amp = np.sqrt(np.interp(np.fft.rfftfreq(n, 1.0 / fs), f_psd, psd))
    return _scaled(_shaped(n, rng, amp, fs))


def modulated(
    n: int, rng: np.random.Generator, psd: np.ndarray | None = None, fs: int = FS
) -> np.ndarray:
    """(n,) white or speech-shaped noise times (1 + m sin 2π f_m t), f_m in 2–8 Hz, m in 0.5–1."""
    base = white(n, rng) if psd is None or rng.random() < 0.5 else ssn(n, rng, psd, fs)
    f_m, m, phase = rng.uniform(2.0, 8.0), rng.uniform(0.5, 1.0), rng.uniform(0, 2 * np.pi)
    t = np.arange(n) / fs
    return _scaled(base * (1.0 + m * np.sin(2 * np.pi * f_m * t + phase)))


def engine(n: int, rng: np.random.Generator, fs: int = FS, hum: bool | None = None) -> np.ndarray:
    """(n,) engine noise: Σ (1/h) sin(h φ(t)) plus one-pole low-passed noise (a = 0.98).

    f0 is drawn in 30–120 Hz and drifts ±10 % at 0.05 Hz; the hum variant (drawn one time in four
    when ``hum`` is None) holds f0 at 50 or 60 Hz.
    """
    if hum is None:
        hum = bool(rng.random() < 0.25)
    t = np.arange(n) / fs
    if hum:
        f = np.full(n, 50.0 if rng.random() < 0.5 else 60.0)
    else:
        f0, ph = rng.uniform(30.0, 120.0), rng.uniform(0, 2 * np.pi)
        f = f0 * (1.0 + 0.1 * np.sin(2 * np.pi * 0.05 * t + ph))
    phi = 2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 2 * np.pi)
    n_harm = int(min(30, (fs / 2) // (f.max() * 1.0001)))
    z = np.exp(1j * phi)  # sin(h φ) = Im(z^h): one complex product per harmonic, no sin calls
    zh = z.copy()
    tonal = np.zeros(n)
    for h in range(1, n_harm + 1):
        tonal += zh.imag / h
        zh *= z
    rumble = lfilter([0.02], [1.0, -0.98], rng.standard_normal(n))
    tonal /= np.sqrt(np.mean(tonal**2))
    rumble /= np.sqrt(np.mean(rumble**2))
    return _scaled(tonal + 0.5 * rumble)


def babble(
    talkers: Sequence[np.ndarray], n: int, rng: np.random.Generator, fs: int = FS
) -> np.ndarray:
    """(n,) babble: each talker's speech looped at equal RMS from its own random offset, summed.

    Args:
        talkers: one (time,) signal per talker (their clips concatenated); never the target's.
        n: output length in samples.
        rng: draws the offsets.
    """
    if not talkers:
        raise ValueError("Expected at least one babble talker")
    out = np.zeros(n)
    for x in talkers:
        unit = loop_unit(x, fs)
        seg = segment(unit, n, int(rng.integers(unit.size))).astype(np.float64)
        out += seg / np.sqrt(np.mean(seg * seg) + 1e-20)
    return _scaled(out)


def noise_rng(seed: int, split: str, kind: str, index: int = 0) -> np.random.Generator:
    """A generator keyed by (seed, split, noise type, clip index), stable across machines."""
    keys = [seed, zlib.crc32(split.encode()), zlib.crc32(kind.encode()), index]
    return np.random.default_rng(keys)


def synthesize(
    kind: str,
    n: int,
    rng: np.random.Generator,
    *,
    psd: np.ndarray | None = None,
    fs: int = FS,
) -> np.ndarray:
    """One synthetic clip of type ``kind`` (one of :data:`SYNTHETIC`); ``ssn`` needs ``psd``."""
    if kind == "white":
        return white(n, rng)
    if kind == "pink":
        return pink(n, rng, fs)
    if kind == "brown":
        return brown(n, rng, fs)
    if kind == "ssn":
        if psd is None:
            raise ValueError("Expected the training speech spectrum (psd) for ssn noise")
        return ssn(n, rng, psd, fs)
    if kind == "modulated":
        return modulated(n, rng, psd, fs)
    if kind == "engine":
        return engine(n, rng, fs)
    raise ValueError(f"Expected a synthetic noise type in {SYNTHETIC} but got {kind!r}")
