"""Reading and writing audio at 16 kHz mono float32, with errors that name the file
(docs/data.md#rate-and-format).

Every corpus goes through :func:`read_audio`: it refuses what cannot be used (an unreadable or empty
file, a wrong rate when resampling is off, a missing channel) with an :class:`AudioError` naming the
path, downmixes multichannel audio by the mean (or takes one channel), and resamples once with
``resample_poly``. Files not at 16 kHz are resampled once and cached in the workspace
(:func:`read_cached`), so a 48 kHz corpus costs its resampling only the first time.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from seofp_lab.errors import AudioError
from seofp_lab.fsutil import atomic_path

FS = 16000  # every corpus, model and metric works at this rate (docs/data.md#rate-and-format)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".sph", ".aiff", ".aif")  # what soundfile reads


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """soundfile's header information (rate, channels, frames), or an AudioError naming the file."""
    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        msg = f"Expected an audio file soundfile can read but got {path} ({exc})"
        raise AudioError(msg) from None


def resample_audio(x: np.ndarray, fs_in: int, fs_out: int = FS) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) by the exact rational ratio.

    Args:
        x: (time,) samples.
        fs_in: rate of ``x`` in Hz.
        fs_out: wanted rate in Hz.

    Returns:
        (round(time * fs_out / fs_in),) float32 samples.
    """
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(fs_out, fs_in)
    y = resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


def _downmix(data: np.ndarray, path: Path, channel: int | None) -> np.ndarray:
    """(time, channels) -> (time,): the mean of the channels, or the chosen one."""
    if data.ndim == 1:
        if channel not in (None, 0):
            raise AudioError(f"Expected channel {channel} in {path} but the file is mono")
        return data
    n_ch = data.shape[1]
    if channel is None:
        return data.mean(axis=1) if n_ch > 1 else data[:, 0]
    if not 0 <= channel < n_ch:
        raise AudioError(
            f"Expected channel {channel} (0-based) in {path} but the file has {n_ch} channels"
        )
    return data[:, channel]


def read_audio(
    path: str | Path, fs: int = FS, resample: bool = True, channel: int | None = None
) -> np.ndarray:
    """Read one file as mono float32 at ``fs``.

    Args:
        path: any file soundfile reads (WAV, FLAC, OGG, NIST SPHERE, ...).
        fs: wanted rate in Hz.
        resample: if False, a file at another rate is an error instead of being resampled.
        channel: take this 0-based channel of multichannel audio; None averages the channels.

    Returns:
        (time,) float32 samples, nominally in [-1, 1].

    Raises:
        AudioError: unreadable, empty, non-finite, wrong rate (with ``resample=False``) or a
            channel the file does not have; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"Expected an audio file at {path} but it does not exist")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        msg = f"Expected an audio file soundfile can read but got {path} ({exc})"
        raise AudioError(msg) from None
    if data.size == 0:
        raise AudioError(f"Expected audio samples in {path} but the file is empty")
    x = _downmix(data, path, channel)
    if rate != fs:
        if not resample:
            raise AudioError(f"Expected a sample rate of {fs} Hz in {path} but got {rate} Hz")
        x = resample_audio(x, rate, fs)
    if not np.isfinite(x).all():
        raise AudioError(f"Expected finite samples in {path} but got NaN or inf")
    return np.ascontiguousarray(x, dtype=np.float32)


def write_audio(path: str | Path, x: np.ndarray, fs: int = FS, subtype: str = "FLOAT") -> Path:
    """Write (time,) samples; ``FLOAT`` WAV keeps float32 exactly, ``PCM_16`` FLAC for corpora.

    The file is written beside its target and renamed: an interrupted run leaves no half file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(x, dtype=np.float32), fs, subtype=subtype, format=fmt)
    return path


def read_cached(
    path: str | Path, cache_dir: Path | None, fs: int = FS, channel: int | None = None
) -> np.ndarray:
    """Like :func:`read_audio`, but a file at another rate is resampled once and cached.

    The cache key is the absolute path, size, modification time and channel choice, so an edited
    source file is resampled again. The cached copy is 32-bit float WAV (nothing lost).
    """
    path = Path(path)
    info = audio_info(path)
    if cache_dir is None or (info.samplerate == fs and info.channels == 1):
        return read_audio(path, fs, resample=True, channel=channel)
    st = path.stat()
    key = hashlib.sha1(
        f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{channel}|{fs}".encode()
    ).hexdigest()
    cached = cache_dir / key[:2] / f"{key}.wav"
    if cached.is_file():
        return read_audio(cached, fs, resample=False)
    x = read_audio(path, fs, resample=True, channel=channel)
    write_audio(cached, x, fs)
    return x
