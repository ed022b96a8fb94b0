"""numpy twin of ``seofp_lab.data.features``: the engine's STFT, LPS and inverse, no torch.

Matches ``torch.stft(center=True, pad_mode="reflect", window=hann(periodic))`` and ``torch.istft``
with ``length``: frames ``1 + len // hop``, window-squared overlap-add normalization. The FFTs run
in float32 (``scipy.fft``, pocketfft), as torch's do, on frames windowed in float32; the
overlap-add sums in float64. The offline and the streaming paths share these functions, so they
stay bit-identical to each other (docs/engine.md#the-stft-around-the-network).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

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
def hann32(n_fft: int) -> np.ndarray:
    """:func:`hann` rounded to float32 (the window the FFTs use), cached, read-only."""
    w = hann(n_fft).astype(np.float32)
    w.flags.writeable = False
    return w


def reflect_pad(x: np.ndarray, pad: int) -> np.ndarray:
    """``np.pad(x, pad, mode="reflect")`` of a 1-D array (the same values, without np.pad's
    general machinery)."""
    return np.concatenate([x[pad:0:-1], x, x[-2:-pad - 2:-1]])


@lru_cache(maxsize=8)
def hann_squared(n_fft: int) -> np.ndarray:
    """The synthesis window squared in float64 (the overlap-add envelope's terms), read-only."""
    w2 = hann32(n_fft).astype(np.float64) ** 2
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
    x = np.asarray(wave, np.float32)
    if x.ndim != 1 or x.size <= n_fft // 2:
        raise ValueError(f"Expected a (time,) waveform longer than {n_fft // 2} samples but got "
                         f"shape {x.shape}")
    return frames_to_spec(reflect_pad(x, n_fft // 2), frame_count(x.size, hop), n_fft, hop)


def frames_to_spec(padded: np.ndarray, frames: int, n_fft: int, hop: int) -> np.ndarray:
    """rfft of ``frames`` windowed frames of an already padded float32 signal (streaming uses it
    too): ``(frames, n_fft // 2 + 1)`` complex64."""
    # a strided view instead of a gathered copy: the product below is the only copy
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    if view.shape[0] != frames:
        raise ValueError(f"Expected a padded signal holding {frames} frames but got "
                         f"{padded.shape[0]} samples")
    if view.dtype != np.float32:
        raise ValueError(f"Expected a float32 padded signal but got {view.dtype}")
    return scipy.fft.rfft(view * hann32(n_fft), axis=-1)


def lps(spec: np.ndarray, eps: float = LPS_EPS) -> np.ndarray:
    """Log-power spectrum ``log(|X|^2 + eps)`` float32 (a model file's ``features.eps``)."""
    if spec.dtype != np.complex64:
        spec = spec.astype(np.complex64)
    re, im = spec.real, spec.imag  # float32 views, no copies
    power = re * re
    power += im * im
    power += np.float32(eps)
    return np.log(power, out=power)


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
    # magnitude * (phase_of / |phase_of|), as one real scale per bin times the complex value
    nonzero = bool((mag > 0).all())  # (a NaN bin takes the masked division, as before)
    if nonzero:  # the usual case: a plain division (the masked one below is 5x slower)
        shape = mag.shape if np.shape(magnitude) == mag.shape else np.broadcast_shapes(
            np.shape(magnitude), mag.shape)  # (np.broadcast_shapes costs 4 us per call)
        scale = np.divide(magnitude, mag, out=np.empty(shape, np.float32))
    else:
        scale = np.divide(magnitude, mag, out=np.zeros(mag.shape, np.float32), where=mag > 0)
    spec = np.ascontiguousarray(phase_of, np.complex64)
    # real times complex as two real products per bin (re * scale, im * scale), not a complex
    # product; written through the real and imaginary views (a broadcast over (..., 2) pairs
    # runs 5x slower in numpy)
    out = np.empty(spec.shape if spec.shape == scale.shape else
                   np.broadcast_shapes(spec.shape, scale.shape), np.complex64)
    np.multiply(spec.real, scale, out=out.real)
    np.multiply(spec.imag, scale, out=out.imag)
    if not nonzero:  # angle 0 where the spectrum is 0: the magnitude itself
        zero = mag == 0
        out[zero] = np.broadcast_to(magnitude, mag.shape)[zero]
    return out


def frame_signals(spec: np.ndarray, n_fft: int) -> np.ndarray:
    """Windowed inverse FFT of each frame ``(frames, n_fft)`` float32 (before overlap-add)."""
    sig = scipy.fft.irfft(spec.astype(np.complex64, copy=False), n=n_fft, axis=-1)
    sig *= hann32(n_fft)
    return sig


def istft(spec: np.ndarray, length: int, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    """Inverse of :func:`stft`: ``(frames, bins)`` complex -> ``(length,)`` float32."""
    frames = spec.shape[0]
    total = n_fft + hop * (frames - 1)
    y = _overlap_add(frame_signals(spec, n_fft), hop)
    start = n_fft // 2
    stop = min(total, start + length)
    out = np.zeros(length, np.float32)
    out[: stop - start] = y[start:stop] / _divisor(frames, n_fft, hop)[start:stop]
    return out


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
    env = _overlap_add(np.broadcast_to(hann_squared(n_fft), (frames, n_fft)), hop)
    env.flags.writeable = False
    return env


@lru_cache(maxsize=32)
def _divisor(frames: int, n_fft: int, hop: int) -> np.ndarray:
    """The envelope where it is above 1e-11, else 1 (samples no window reaches), read-only."""
    env = _envelope(frames, n_fft, hop)
    div = np.where(env > 1e-11, env, 1.0)
    div.flags.writeable = False
    return div
