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
