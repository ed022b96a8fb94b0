"""STFT features at 16 kHz: log-power spectrum (LPS) and its exact inverse with the noisy phase.

All functions take waveforms ``(batch, time)`` or ``(time,)`` and are torch-only, so models import
them without the data pipeline. The numpy twin used by the C engine lives in ``seofp_lab.infer``.
"""

from __future__ import annotations

import torch
from torch import Tensor

LPS_EPS = 1e-8  # keeps log() finite on digital silence; -80 dB below a full-scale bin


def _window(n_fft: int, like: Tensor) -> Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=like.dtype, device=like.device)


def stft(wave: Tensor, n_fft: int = 512, hop: int = 256) -> Tensor:
    """Complex spectrum ``(batch, frames, n_fft//2+1)`` of ``(batch, time)`` (centered frames)."""
    spec = torch.stft(
        wave, n_fft, hop, window=_window(n_fft, wave), center=True, pad_mode="reflect",
        return_complex=True,
    )
    return spec.transpose(-1, -2)


def istft(spec: Tensor, length: int, n_fft: int = 512, hop: int = 256) -> Tensor:
    """Inverse of :func:`stft`: ``(batch, frames, bins)`` complex -> ``(batch, length)``."""
    return torch.istft(
        spec.transpose(-1, -2), n_fft, hop, window=_window(n_fft, spec.real), center=True,
        length=length,
    )


def lps(spec: Tensor) -> Tensor:
    """Log-power spectrum ``log(|X|^2 + eps)`` of a complex spectrum."""
    return torch.log(spec.real.square() + spec.imag.square() + LPS_EPS)


def lps_to_magnitude(lps_values: Tensor) -> Tensor:
    """Inverse of :func:`lps` up to ``eps``: ``sqrt(max(exp(lps) - eps, 0))``."""
    return (torch.exp(lps_values) - LPS_EPS).clamp_min(0.0).sqrt()


def with_phase(magnitude: Tensor, phase_of: Tensor) -> Tensor:
    """A complex spectrum with ``magnitude`` and the phase of ``phase_of`` (the noisy spectrum)."""
    unit = phase_of / phase_of.abs().clamp_min(1e-12)
    unit = torch.where(phase_of.abs() > 0, unit, torch.ones_like(unit))
    return magnitude * unit


def reconstruct(lps_values: Tensor, noisy_spec: Tensor, length: int, n_fft: int = 512,
                hop: int = 256) -> Tensor:
    """Waveform from an LPS estimate and the noisy phase (spectral-mapping models' output)."""
    return istft(with_phase(lps_to_magnitude(lps_values), noisy_spec), length, n_fft, hop)
