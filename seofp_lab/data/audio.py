"""Reading and writing audio at 16 kHz mono float32, with errors that name the file
(docs/data.md#rate-and-format).

Every corpus goes through :func:`read_audio`: it refuses what cannot be used (an unreadable or empty
file, a wrong rate when resampling is off, a missing channel) with an :class:`AudioError` naming the
path, downmixes multichannel audio by the mean (or takes one channel), and resamples once with
``resample_poly``. Files not at 16 kHz are resampled once and cached in the workspace
(:func:`read_cached`), so a 48 kHz corpus costs its resampling only the first time.
"""

from __future__ import annotations

import errno
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


MAX_CHANNELS = 256
MAX_SAMPLES = 1 << 28  # per file, all channels: 1 GiB as float32
MAX_RATIO_TERM = 1 << 16  # resample_poly's filter has about 20 * max(up, down) taps


def check_rate(rate: int, path: str | Path, fs: int = FS) -> None:
    """Refuse a sample rate that cannot be resampled to ``fs`` at a bounded cost.

    Every common rate reduces to a small ratio (44.1 kHz to 16 kHz is 160/441); a header claiming
    2,147,483,647 Hz would ask ``resample_poly`` for a 43-billion-tap filter.
    """
    if not isinstance(rate, int) or rate < 1:
        raise AudioError(f"Expected a positive sample rate in {path} but got {rate!r}")
    ratio = Fraction(fs, rate)
    if max(ratio.numerator, ratio.denominator) > MAX_RATIO_TERM:
        raise AudioError(f"Expected a sample rate whose ratio to {fs} Hz reduces to terms of at "
                         f"most {MAX_RATIO_TERM} (every common rate does) but {path} has "
                         f"{rate} Hz ({ratio.numerator}/{ratio.denominator})")


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


def _read_blocks(path: Path) -> tuple[np.ndarray, int]:
    """(samples (time,) or (time, channels) float32, rate), read block by block.

    A header's frame count is not trusted (``sf.read`` would allocate it up front: a 44-byte WAV
    header can claim gigabytes); what is allocated grows with the data actually decoded, up to
    :data:`MAX_SAMPLES`.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            if not 1 <= channels <= MAX_CHANNELS:
                raise AudioError(f"Expected 1..{MAX_CHANNELS} channels in {path} but the header "
                                 f"says {channels}")
            blocks, total = [], 0
            for block in f.blocks(blocksize=max(1, (1 << 20) // channels), dtype="float32",
                                  always_2d=True):
                total += block.size
                if total > MAX_SAMPLES:
                    raise AudioError(f"Expected at most {MAX_SAMPLES:,} samples in {path} (about "
                                     f"{MAX_SAMPLES // FS // 3600} h at 16 kHz); split the file")
                blocks.append(block)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError, MemoryError) as exc:
        msg = f"Expected an audio file soundfile can read but got {path} ({exc})"
        raise AudioError(msg) from None
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return (data[:, 0] if channels == 1 else data), rate


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
    data, rate = _read_blocks(path)
    if data.size == 0:
        raise AudioError(f"Expected audio samples in {path} but the file is empty")
    if not np.isfinite(data).all():  # before resampling spreads one NaN over its neighbours
        raise AudioError(f"Expected finite samples in {path} but got NaN or inf")
    x = _downmix(data, path, channel)
    if rate != fs:
        if not resample:
            raise AudioError(f"Expected a sample rate of {fs} Hz in {path} but got {rate} Hz")
        check_rate(rate, path, fs)
        x = resample_audio(x, rate, fs)
    if not np.isfinite(x).all():
        raise AudioError(f"Expected finite samples in {path} but got NaN or inf")
    return np.ascontiguousarray(x, dtype=np.float32)


def write_audio(path: str | Path, x: np.ndarray, fs: int = FS, subtype: str = "FLOAT") -> Path:
    """Write (time,) samples; ``FLOAT`` WAV keeps float32 exactly, ``PCM_16`` FLAC for corpora.

    The file is written beside its target and renamed (``fsutil.atomic_path``): an interrupted
    or refused write leaves no half file and no temporary.

    Raises:
        AudioError: the folder cannot be created or written, or ``path`` is a folder; the
            message names the path and the system's reason.
    """
    path = Path(path)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "the output name is a folder", str(path))
        with atomic_path(path) as tmp:
            sf.write(str(tmp), np.asarray(x, dtype=np.float32), fs, subtype=subtype, format=fmt)
    except OSError as exc:
        raise AudioError(f"Cannot write {path}: {exc.strerror or exc}"
                         f"{f' ({exc.filename})' if exc.filename else ''}") from None
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
