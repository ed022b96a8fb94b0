"""Signal work on study clips, shared by ``stimuli`` and ``build``: reading, loudness matching,
alignment, fades, side metrics and catch stimuli (docs/listening.md#stimuli)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy import signal

from seofp_lab.errors import AudioError
from seofp_lab.evaluate.metrics import si_sdr


def read_audio(path: str | Path, rate: int = 16000) -> np.ndarray:
    """A mono float64 signal at ``rate``; refuses NaN, clipping and other rates."""
    if not Path(path).is_file():
        raise AudioError(f"Expected an audio file at {path} but it does not exist")
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    if sr != rate:
        raise AudioError(f"Expected {rate} Hz audio in {path} but got {sr} Hz")
    x = x.mean(axis=1)
    if not np.isfinite(x).all() or np.abs(x).max() > 1.0:
        raise AudioError(f"Expected finite, unclipped audio in {path} but got NaN/inf or |x| > 1")
    return x


def loudness_match(x: np.ndarray, rate: int, target_lufs: float) -> tuple[np.ndarray, float, float]:
    """ITU-R BS.1770-4 integrated loudness normalisation (pyloudnorm).

    Returns:
        (normalised signal, loudness before in LUFS, gain applied in dB).
    """
    meter = pyloudnorm.Meter(rate)
    before = float(meter.integrated_loudness(x))
    if not np.isfinite(before):
        raise AudioError("Expected a clip with measurable loudness but it is silent")
    return x * 10.0 ** ((target_lufs - before) / 20.0), before, target_lufs - before


def match_pair(a: np.ndarray, b: np.ndarray, rate: int, target_lufs: float, peak_dbfs: float
               ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Loudness-match two clips to the target, then lower both equally if a peak is too high."""
    ya, la, ga = loudness_match(a, rate, target_lufs)
    yb, lb, gb = loudness_match(b, rate, target_lufs)
    peak = 20 * np.log10(max(np.abs(ya).max(), np.abs(yb).max(), 1e-12))
    trim = min(0.0, peak_dbfs - 0.01 - peak)
    scale = 10.0 ** (trim / 20.0)
    info = dict(lufs_before_a=la, lufs_before_b=lb, gain_applied_a=ga + trim,
                gain_applied_b=gb + trim, peak_dbfs=float(peak + trim), loudness_diff_db=la - lb)
    return ya * scale, yb * scale, info


def lag_samples(a: np.ndarray, b: np.ndarray) -> int:
    """The lag of the cross-correlation peak of b against a (0: aligned)."""
    c = signal.correlate(b, a, mode="full", method="fft")
    return int(np.argmax(np.abs(c))) - (len(a) - 1)


def fade(x: np.ndarray, rate: int, ms: float = 5.0) -> np.ndarray:
    """Raised-cosine fades at both ends, identical for every clip (clean loop edges)."""
    n = min(int(rate * ms / 1000), len(x) // 2)
    w = np.ones(len(x))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
    w[:n], w[len(x) - n:] = ramp, ramp[::-1]
    return x * w


def side_metrics(yb: np.ndarray, yc: np.ndarray, clean: np.ndarray | None) -> dict:
    """PESQ/STOI/SI-SDR of both outputs and PESQ(y_b -> y_c), at 16 kHz; None where undefined."""
    from pesq import pesq  # noqa: PLC0415
    from pystoi import stoi  # noqa: PLC0415

    def safe(fn, *args):
        try:
            return float(fn(*args))
        except Exception:  # noqa: BLE001 - PESQ refuses some inputs; recorded as None, not dropped
            return None

    out: dict = {"pesq_b_to_c": safe(pesq, 16000, yb, yc, "wb")}
    if clean is not None:
        n = min(len(clean), len(yb))
        for tag, y in (("b", yb), ("c", yc)):
            out[f"pesq_{tag}"] = safe(pesq, 16000, clean[:n], y[:n], "wb")
            out[f"stoi_{tag}"] = safe(stoi, clean[:n], y[:n], 16000, False)
            out[f"si_sdr_{tag}"] = si_sdr(clean[:n], y[:n])
    return out


def catch_clip(y: np.ndarray, rate: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """An easy difference: white noise 20 dB below the speech, or a 3.5 kHz low-pass."""
    if kind == "noise":
        noise = rng.standard_normal(len(y))
        return y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2)) * 10 ** (-20 / 20)
    sos = signal.butter(8, 3500, fs=rate, output="sos")
    return signal.sosfiltfilt(sos, y)


def trap_clip(y: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A gold-item probe nobody listening can miss: 1 kHz low-pass and white noise at 0 dB SNR
    (the pair is loudness-matched afterwards, so level is no cue)."""
    sos = signal.butter(8, 1000, fs=rate, output="sos")
    muffled = signal.sosfiltfilt(sos, y)
    noise = rng.standard_normal(len(y))
    return muffled + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2))
