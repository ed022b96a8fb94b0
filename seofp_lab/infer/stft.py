"""numpy twin of ``seofp_lab.data.features``: the engine's STFT, LPS and inverse, no torch.

Matches ``torch.stft(center=True, pad_mode="reflect", window=hann(periodic))`` and ``torch.istft``
with ``length``: frames ``1 + len // hop``, window-squared overlap-add normalization. FFTs run in
float64 and results are rounded to float32, so they agree with torch to float32 precision.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LPS_EPS = 1e-8  # the same floor as seofp_lab.data.features.LPS_EPS


@lru_cache(maxsize=8)
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window ``(n_fft,)`` float64, as ``torch.hann_window(periodic=True)``.

    Cached (every frame of every call uses it), hence read-only.
    """
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    w.flags.writeable = False
    return w


@lru_cache(maxsize=8)
def _hann_squared(n_fft: int) -> np.ndarray:
    w2 = hann(n_fft) ** 2
    w2.flags.writeable = False
    return w2


def frame_count(length: int, hop: int) -> int:
    """Frames of a centered STFT of ``length`` samples."""
    return 1 + length // hop


def stft(wave: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    """Complex spectrum ``(frames, n_fft//2 + 1)`` complex64 of a waveform ``(time,)``.

    Raises:
        ValueError: the waveform is shorter than ``n_fft // 2 + 1`` samples (reflect padding).
    """
    x = np.asarray(wave, np.float64)
    if x.ndim != 1 or x.size <= n_fft // 2:
        raise ValueError(f"Expected a (time,) waveform longer than {n_fft // 2} samples but got "
                         f"shape {x.shape}")
    padded = np.pad(x, n_fft // 2, mode="reflect")
    return frames_to_spec(padded, frame_count(x.size, hop), n_fft, hop)


def frames_to_spec(padded: np.ndarray, frames: int, n_fft: int, hop: int) -> np.ndarray:
    """rfft of ``frames`` windowed frames of an already padded signal (streaming uses it too)."""
    # a strided view instead of a gathered copy: the product below is the only copy
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    if view.shape[0] != frames:
        raise ValueError(f"Expected a padded signal holding {frames} frames but got "
                         f"{padded.shape[0]} samples")
    return np.fft.rfft(view * hann(n_fft), axis=-1).astype(np.complex64)


def lps(spec: np.ndarray, eps: float = LPS_EPS) -> np.ndarray:
    """Log-power spectrum ``log(|X|^2 + eps)`` float32 (a model file's ``features.eps``)."""
    re, im = spec.real.astype(np.float32), spec.imag.astype(np.float32)
    return np.log(re * re + im * im + np.float32(eps)).astype(np.float32)


def lps_to_magnitude(lps_values: np.ndarray, eps: float = LPS_EPS) -> np.ndarray:
    """Inverse of :func:`lps` up to eps: ``sqrt(max(exp(lps) - eps, 0))``."""
    return np.sqrt(np.maximum(np.exp(lps_values) - np.float32(eps), 0.0)).astype(np.float32)


def with_phase(magnitude: np.ndarray, phase_of: np.ndarray,
               mag: np.ndarray | None = None) -> np.ndarray:
    """Complex spectrum with ``magnitude`` and the phase of ``phase_of`` (angle 0 where it is 0).

    ``mag``: ``np.abs(phase_of)`` when the caller already has it (saves one pass).
    """
    if mag is None:
        mag = np.abs(phase_of)
    unit = np.where(mag > 0, phase_of / np.maximum(mag, 1e-12), 1.0)
    return (magnitude * unit).astype(np.complex64, copy=False)


def frame_signals(spec: np.ndarray, n_fft: int) -> np.ndarray:
    """Windowed inverse FFT of each frame ``(frames, n_fft)`` float64 (before overlap-add)."""
    return np.fft.irfft(spec.astype(np.complex128), n=n_fft, axis=-1) * hann(n_fft)


def istft(spec: np.ndarray, length: int, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    """Inverse of :func:`stft`: ``(frames, bins)`` complex -> ``(length,)`` float32."""
    frames = spec.shape[0]
    total = n_fft + hop * (frames - 1)
    y = _overlap_add(frame_signals(spec, n_fft), hop)
    env = _envelope(frames, n_fft, hop)
    start = n_fft // 2
    out = np.zeros(length)
    stop = min(total, start + length)
    seg_env = env[start:stop]
    out[: stop - start] = y[start:stop] / np.where(seg_env > 1e-11, seg_env, 1.0)
    return out.astype(np.float32)


def _overlap_add(sig: np.ndarray, hop: int) -> np.ndarray:
    """Overlap-add of frames ``(frames, n_fft)`` at ``hop`` -> ``(n_fft + hop * (frames - 1),)``.

    Every sample sums its frames in increasing frame order, as the streaming engine does, so the
    float64 result is the same bit for bit. When hop divides n_fft this is one vectorized add
    per piece of ``hop`` samples: sample block m gets piece p of frame m - p, and increasing
    frame order is decreasing p.
    """
    frames, n_fft = sig.shape
    total = n_fft + hop * (frames - 1)
    y = np.zeros(total)
    if n_fft % hop:
        for t in range(frames):
            y[t * hop:t * hop + n_fft] += sig[t]
        return y
    pieces = n_fft // hop
    blocks = y.reshape(frames - 1 + pieces, hop)
    parts = sig.reshape(frames, pieces, hop)
    for p in range(pieces - 1, -1, -1):
        blocks[p:p + frames] += parts[:, p]
    return y


@lru_cache(maxsize=32)
def _envelope(frames: int, n_fft: int, hop: int) -> np.ndarray:
    """Overlap-added squared window (the istft normalization), cached per shape, read-only."""
    env = _overlap_add(np.broadcast_to(_hann_squared(n_fft), (frames, n_fft)), hop)
    env.flags.writeable = False
    return env
