"""read_audio: mono float32 at 16 kHz, or an AudioError that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seofp_lab.data.audio import read_audio, read_cached, resample_audio, write_audio
from seofp_lab.errors import AudioError


def _tone(n: int, fs: int, f: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * f * np.arange(n) / fs)).astype(np.float32)


def test_mono_16k_roundtrip_is_exact(tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(-0.9, 0.9, 1600).astype(np.float32)
    path = write_audio(tmp_path / "a.wav", x)
    y = read_audio(path)
    assert y.dtype == np.float32 and np.array_equal(x, y)


def test_stereo_is_averaged_or_one_channel_taken(tmp_path: Path) -> None:
    left, right = _tone(1600, 16000), _tone(1600, 16000, 1000.0)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-7)
    np.testing.assert_array_equal(read_audio(tmp_path / "s.wav", channel=1), right)
    with pytest.raises(AudioError, match=r"channel 2 .*s\.wav.* 2 channels"):
        read_audio(tmp_path / "s.wav", channel=2)


def test_wrong_rate_is_resampled_or_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "r48.wav", _tone(4800, 48000), 48000, subtype="FLOAT")
    y = read_audio(tmp_path / "r48.wav")
    assert y.shape == (1600,)
    np.testing.assert_allclose(y[200:-200], _tone(1600, 16000)[200:-200], atol=1e-3)
    with pytest.raises(AudioError, match=r"16000 Hz in .*r48\.wav but got 48000 Hz"):
        read_audio(tmp_path / "r48.wav", resample=False)


def test_unreadable_empty_and_missing_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match=r"junk\.wav"):
        read_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav but the file is empty"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match=r"nothere\.wav but it does not exist"):
        read_audio(tmp_path / "nothere.wav")


def test_cache_resamples_once(tmp_path: Path) -> None:
    sf.write(tmp_path / "r44.flac", _tone(4410, 44100), 44100)
    cache = tmp_path / "cache"
    a = read_cached(tmp_path / "r44.flac", cache)
    (cached,) = cache.rglob("*.wav")
    b = read_cached(tmp_path / "r44.flac", cache)
    assert np.array_equal(a, b) and a.size == 1600
    assert sf.info(str(cached)).samplerate == 16000


def test_resample_length() -> None:
    assert resample_audio(np.zeros(44100, np.float32), 44100).shape == (16000,)


def _wav_bytes(rate: int, channels: int = 1, frames: int = 100, bits: int = 16,
               claimed: int | None = None, fmt: int = 1) -> bytes:
    """A hand-made WAV: any rate and channel count, a data chunk that may claim more bytes than
    it holds."""
    import struct

    block = channels * bits // 8
    data = (np.arange(frames * channels) % 50).astype(f"<i{bits // 8}").tobytes()
    size = len(data) if claimed is None else claimed
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, (rate * block) & 0xFFFFFFFF, block,
                            bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data" + struct.pack(
        "<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(("rate", "match"), [
    (2_147_483_647, r"reduces to terms of at most 65536 .* 2147483647 Hz"),
    (999_983, r"reduces to terms of at most 65536"),  # a prime: 16000/999983
])
def test_absurd_sample_rates_are_refused_before_resampling(tmp_path: Path, rate: int,
                                                           match: str) -> None:
    path = tmp_path / "r.wav"
    path.write_bytes(_wav_bytes(rate))
    with pytest.raises(AudioError, match=match):
        read_audio(path)


def test_common_odd_rates_still_resample(tmp_path: Path) -> None:
    for rate in (11025, 11127, 22050, 37800, 44056, 47952, 88200, 192000):
        path = tmp_path / f"{rate}.wav"
        path.write_bytes(_wav_bytes(rate, frames=rate // 10))
        assert abs(read_audio(path).size - 1600) <= 1


def test_a_header_claiming_gigabytes_allocates_only_what_is_there(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "liar.wav"
    path.write_bytes(_wav_bytes(16000, frames=1000, claimed=0xFFFF_FFF0))
    tracemalloc.start()
    try:
        x = read_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.size == 1000 and peak < 16 << 20  # sf.read would have allocated 8 GiB up front


def test_nan_samples_and_absurd_channel_counts_are_refused(tmp_path: Path) -> None:
    nan = tmp_path / "nan.wav"
    x = np.zeros(800, np.float32)
    x[10] = np.nan
    sf.write(str(nan), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"finite samples in .*nan.wav"):
        read_audio(nan)
    many = tmp_path / "many.wav"
    many.write_bytes(_wav_bytes(16000, channels=1000, frames=2))
    with pytest.raises(AudioError, match=r"many.wav"):
        read_audio(many)
