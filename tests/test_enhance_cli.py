"""``seofp enhance``: a user's own files through the C engine, offline and streaming."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seofp_lab import cli
from seofp_lab.data.audio import read_audio, write_audio
from seofp_lab.errors import AudioError
from seofp_lab.infer import engine
from seofp_lab.infer import kernels as K
from seofp_lab.infer.enhance_cli import enhance_files, input_files
from seofp_lab.infer.export import export_model
from tests.engine_models import tiny_model

pytestmark = pytest.mark.kernel


@pytest.fixture
def lstm_model(tmp_path: Path) -> Path:
    return export_model(tiny_model("lstm"), tmp_path / "lstm.seofp")


def _wav(path: Path, seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Path:
    x = np.random.default_rng(seed).standard_normal((int(seconds * rate), channels)) * 0.1
    sf.write(str(path), x.astype(np.float32), rate, subtype="FLOAT")
    return path


def test_enhance_files_offline_keeps_rate_and_equals_the_engine(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    mono = _wav(src / "a.wav", 0.5, 16000)
    stereo = _wav(src / "b.wav", 0.4, 8000, channels=2, seed=1)
    out = tmp_path / "out"
    assert cli.main(["enhance", str(lstm_model), str(src), "--out", str(out)]) == 0
    assert "RTF" in capsys.readouterr().out
    y, rate = sf.read(str(out / "a.wav"), dtype="float32")
    assert rate == 16000 and y.shape == (8000,)
    ref = engine.load(lstm_model).enhance(read_audio(mono))
    assert y.tobytes() == ref.tobytes()  # FLOAT WAV keeps the engine's samples exactly
    y2, rate2 = sf.read(str(out / "b.wav"), dtype="float32")
    assert rate2 == 8000 and y2.ndim == 1 and abs(y2.size - 3200) <= 1  # back to 8 kHz, mono
    assert sf.info(str(stereo)).channels == 2  # the input is untouched


def test_stream_gives_the_offline_samples_and_reports_chunk_times(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = _wav(tmp_path / "talk.wav", 0.6, 16000)
    off, live = tmp_path / "off", tmp_path / "live"
    assert cli.main(["enhance", str(lstm_model), str(wav), "--out", str(off)]) == 0
    assert cli.main(["enhance", str(lstm_model), str(wav), "--out", str(live), "--stream",
                     "--chunk-ms", "10", "--threads", "2"]) == 0
    K.set_threads(1)  # process-wide: leave it as the other tests expect
    assert (off / "talk.wav").read_bytes() == (live / "talk.wav").read_bytes()
    (done,) = enhance_files(lstm_model, [wav], tmp_path / "again", stream=True, chunk_ms=10.0)
    assert done.seconds == pytest.approx(0.6)
    assert 0 < done.chunk_ms_p50 <= done.chunk_ms_p99  # type: ignore[operator]
    assert 0 <= done.late_chunks <= 60 and done.compute_s > 0


def test_bad_inputs_are_refused_with_the_file_named(
    lstm_model: Path, tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blstm = export_model(tiny_model("blstm"), tmp_path / "b.seofp")
    wav = _wav(tmp_path / "x.wav", 0.3, 16000)
    assert cli.main(["enhance", str(blstm), str(wav), "--stream"]) == 2  # default --out
    assert "unidirectional" in capsys.readouterr().err
    assert not list((workspace / "enhanced_files").rglob("*.wav"))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not audio")
    assert cli.main(["enhance", str(lstm_model), str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "broken.wav" in capsys.readouterr().err
    short = _wav(tmp_path / "short.wav", 0.005, 16000)  # 80 samples: less than one frame
    assert cli.main(["enhance", str(lstm_model), str(wav), str(short),
                     "--out", str(tmp_path / "o2")]) == 2
    assert "short.wav" in capsys.readouterr().err
    assert (tmp_path / "o2" / "x.wav").is_file()  # the file before it is kept
    assert cli.main(["enhance", str(lstm_model), str(wav), "--out", str(tmp_path)]) == 2
    assert "overwrite" in capsys.readouterr().err  # would replace its own input
    assert cli.main(["enhance", str(tmp_path / "none.seofp"), str(wav)]) == 2
    assert "none.seofp" in capsys.readouterr().err


def _speech_in_noise(path: Path) -> Path:
    """2.35 s of embedded-corpus speech with market noise at 5 dB (one DNSMOS window)."""
    embedded = Path(engine.__file__).resolve().parent.parent / "data" / "embedded"
    clean, _ = sf.read(embedded / "speech" / "ast_en_f" / "ast_en_f_002.flac", dtype="float32")
    noise, _ = sf.read(embedded / "noise" / "market" / "market_00.flac", dtype="float32")
    noise = noise[: clean.size]
    noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10**0.5)
    sf.write(str(path), clean + noise, 16000, subtype="FLOAT")
    return path


@pytest.mark.slow
def test_score_rates_each_input_and_output_with_dnsmos(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from seofp_lab.evaluate.dnsmos import NAMES, dnsmos

    wav = _speech_in_noise(tmp_path / "talk.wav")
    out = tmp_path / "out"
    assert cli.main(["enhance", str(lstm_model), str(wav), "--out", str(out), "--score"]) == 0
    text = capsys.readouterr().out
    assert "DNSMOS P.835" in text and "mean of 1" in text and "speechmos 0." in text
    with (out / "dnsmos.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["input"] == str(wav.resolve()) and row["output"] == str(out / "talk.wav")
    assert row["error"] == ""
    want_in = dnsmos(read_audio(wav))
    for name in NAMES:
        assert float(row[f"input_{name}"]) == pytest.approx(want_in[name], abs=1e-9)
        assert 1.0 <= float(row[f"input_{name}"]) <= 5.0
        assert np.isfinite(float(row[f"enhanced_{name}"]))  # a random model: any rating
    assert float(row["enhanced_dnsmos_ovrl"]) == pytest.approx(
        dnsmos(read_audio(out / "talk.wav"))["dnsmos_ovrl"], abs=1e-9)


def test_score_without_the_package_fails_before_enhancing(
    lstm_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from seofp_lab.evaluate import dnsmos

    dnsmos._scorer.cache_clear()
    monkeypatch.setitem(sys.modules, "speechmos", None)  # import fails as if not installed
    wav = _wav(tmp_path / "x.wav", 0.3, 16000)
    try:
        code = cli.main(["enhance", str(lstm_model), str(wav), "--out", str(tmp_path / "o"),
                         "--score"])
    finally:
        dnsmos._scorer.cache_clear()
    assert code == 2
    assert "pip install 'seofp-lab[dnsmos]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------- issue 14: audio in, audio out
def _folder(tmp_path: Path, good: int) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(good):
        _wav(src / f"good{i}.wav", 0.3, 16000, seed=i)
    (src / "bad.wav").write_bytes(b"RIFF....not audio")
    return src


def test_one_bad_file_in_a_folder_does_not_stop_the_others(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: a folder with one bad file stopped at it (1 of 5 good files written)."""
    out = tmp_path / "out"
    assert cli.main(["enhance", str(lstm_model), str(_folder(tmp_path, 5)),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [f"good{i}.wav" for i in range(5)]
    assert "bad.wav" in err and "1 of 6 files failed (listed above); 5 written" in err
    assert "Traceback" not in err
    with pytest.raises(AudioError, match=r"1 of 6 files failed \(the others are written\): .*bad"):
        enhance_files(lstm_model, input_files([tmp_path / "in"]), tmp_path / "lib")
    assert len(list((tmp_path / "lib").iterdir())) == 5


def test_an_existing_unrelated_file_is_not_overwritten_without_asking(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: enhancing song.flac silently replaced an unrelated song.wav in --out."""
    song = tmp_path / "song.flac"
    sf.write(str(song), np.zeros(4000, np.float32) + 0.01, 16000, subtype="PCM_16")
    other = _wav(tmp_path / "other.wav", 0.3, 16000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "song.wav").write_bytes(b"my own recording")
    argv = ["enhance", str(lstm_model), str(other), str(song), "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "1 exist (song.wav); pass --overwrite to replace them" in err
    assert (out / "song.wav").read_bytes() == b"my own recording"
    assert sorted(p.name for p in out.iterdir()) == ["song.wav"]  # nothing written at all
    assert cli.main([*argv, "--overwrite"]) == 0
    assert sf.info(str(out / "song.wav")).frames == 4000


def test_an_output_name_that_is_a_folder_is_refused_and_leaves_no_temporary(
    lstm_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: a traceback that left a .tmp behind."""
    wav = _wav(tmp_path / "song.wav", 0.3, 16000)
    out = tmp_path / "out"
    (out / "song.wav").mkdir(parents=True)
    for extra in ([], ["--overwrite"]):
        assert cli.main(["enhance", str(lstm_model), str(wav), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seofp enhance: error: Cannot write ") and "is a folder" in err
    assert [p.name for p in out.rglob("*")] == ["song.wav"]  # the folder, nothing else
    with pytest.raises(AudioError, match=r"Cannot write .*song.wav: .*folder"):
        write_audio(out / "song.wav", np.zeros(10, np.float32))
    assert [p.name for p in out.rglob("*")] == ["song.wav"]


def _as_unprivileged(argv: list[str]) -> tuple[int, str]:
    """``cli.main(argv)`` where permissions apply: in-process for a normal user; as root (who
    writes anywhere) in a forked child that drops to uid/gid 65534 first."""
    import contextlib
    import io
    import json
    import os
    import traceback

    if os.geteuid() != 0:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return cli.main(argv), err.getvalue()
    import seofp_lab.config  # noqa: F401 - imported before the fork: the child may not read it
    import seofp_lab.console  # noqa: F401
    import seofp_lab.workspace  # noqa: F401

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = cli.main(argv)
            os.write(w, json.dumps([rc, err.getvalue()]).encode())
        except BaseException:  # noqa: BLE001 - reported to the parent as a failure
            os.write(w, json.dumps([99, traceback.format_exc()]).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        rc, text = json.loads(f.read() or b'[98, "no answer"]')
    os.waitpid(pid, 0)
    return rc, text


@pytest.fixture
def open_dir(tmp_path: Path) -> Path:
    """A folder outside pytest's private tmp tree that uid 65534 can traverse."""
    import os
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="seofp-ro-"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(d)
    assert os.path.exists(tmp_path)


@pytest.mark.parametrize("case", ["out", "parent", "workspace"])
def test_read_only_outputs_give_one_clear_line_and_no_temporary(
    lstm_model: Path, open_dir: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: read-only --out, read-only parent or workspace gave tracebacks."""
    model = open_dir / "m.seofp"
    model.write_bytes(lstm_model.read_bytes())
    wav = _wav(open_dir / "x.wav", 0.3, 16000)
    for p in (model, wav):
        p.chmod(0o644)
    ro = open_dir / "ro"
    ro.mkdir()
    argv = ["enhance", str(model), str(wav)]
    if case == "out":
        argv += ["--out", str(ro)]
    elif case == "parent":
        argv += ["--out", str(ro / "new" / "deeper")]
    else:
        monkeypatch.setenv("SEOFP_WORKSPACE", str(ro / "workspace"))
    ro.chmod(0o555)
    rc, err = _as_unprivileged(argv)
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1
    want = "Cannot write into the output folder" if case == "out" else "Cannot create the output"
    assert want in err and "ermission denied" in err
    assert not list(ro.rglob("*"))  # no folder, no .tmp


@pytest.mark.parametrize("rate", [44100, 22050, 11025, 8000, 48000])
def test_the_output_has_exactly_the_inputs_length_and_rate(
    lstm_model: Path, tmp_path: Path, rate: int
) -> None:
    """Issue 14: 44.1 kHz output was 2 samples longer than its input."""
    n = int(0.37 * rate) + 1
    wav = tmp_path / "in.wav"
    sf.write(str(wav), (np.random.default_rng(0).standard_normal(n) * 0.1).astype(np.float32),
             rate, subtype="FLOAT")
    (done,) = enhance_files(lstm_model, [wav], tmp_path / "out")
    info = sf.info(str(done.out))
    assert (info.samplerate, info.frames) == (rate, n)
