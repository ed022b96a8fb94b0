"""The engine refuses what it cannot compute honestly: NaN or inf from a layer (named), and an
input whose enhancement would need more memory than its limit (checked before allocating)."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seofp_lab import cli
from seofp_lab.infer import engine, modelfile
from seofp_lab.infer.export import model_header, model_tensors
from seofp_lab.infer.modelfile import Tensor
from tests.engine_models import tiny_model

pytestmark = pytest.mark.kernel

X = (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32)


def _with(family: str, **values: np.ndarray) -> bytes:
    """A tiny model's file with some tensors replaced (stored as fp32): CRC-valid, every field
    in range, and absurd."""
    m = tiny_model(family)
    tensors = {**model_tensors(m), **{n: Tensor(v.astype(np.float32), "fp32")
                                       for n, v in values.items()}}
    return modelfile.serialize(model_header(m), tensors)


def _huge(shape: tuple[int, ...]) -> np.ndarray:
    """±2^127, random signs: any sum of two products overflows."""
    return np.sign(np.random.default_rng(1).standard_normal(shape)) * 2.0**127


def _nan_lstm() -> bytes:
    return _with("lstm", **{"lstm.weight_hh_l1": _huge((40, 10)), "feat_std": np.ones(257)})


@pytest.mark.parametrize("kernel", ["intadd", "fp32"])
def test_a_layer_that_produces_nan_is_named(kernel: str) -> None:
    eng = engine.Engine(modelfile.read(_nan_lstm()), kernel, "nan.seofp")
    with pytest.raises(engine.NonFiniteOutput, match=r"^nan.seofp: layer 1 \(lstm\) produced NaN "
                                                     r"on this input"):
        eng.enhance(X)
    stream = eng.stream()  # the same checks; where the sums overflow can differ (batch 1)
    try:
        y = np.concatenate([stream.push(X[s:s + 160]) for s in range(0, X.size, 160)]
                           + [stream.flush()])
    except engine.NonFiniteOutput as exc:
        assert "layer 1 (lstm) produced NaN" in str(exc)
    else:
        assert np.isfinite(y).all()


@pytest.mark.parametrize(("family", "values", "match"), [
    ("blstm", {"lstm.weight_hh_l1": _huge((48, 12))}, r"layer 1 \(blstm\) produced NaN"),
    ("blstm", {"out.bias": np.full(257, 1e3)}, r"the LPS inverse of layer 3 \(out\) produced inf"),
    ("fcn", {"net.3.weight": _huge((5, 5, 9))}, r"layer 1 \(conv\) produced (NaN|inf)"),
    ("lstm", {"feat_std": np.full(257, 1e-45)}, r"the input features \(feat_mean, feat_std\) "
                                                r"produced inf"),
])
@pytest.mark.parametrize("kernel", ["intadd", "decode", "fp32"])
def test_no_kernel_returns_a_non_finite_output(family: str, values: dict, match: str,
                                               kernel: str) -> None:
    eng = engine.Engine(modelfile.read(_with(family, **values)), kernel)
    try:
        y = eng.enhance(X)
    except engine.NonFiniteOutput as exc:
        assert re.search(match, str(exc)), str(exc)
        return
    assert np.isfinite(y).all()  # decode saturates some of these to finite values


def test_enhance_refuses_a_nan_model_writes_nothing_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: a CRC-valid model that yields NaN made `seofp enhance` write an all-NaN WAV and
    exit 0."""
    model = tmp_path / "nan.seofp"
    model.write_bytes(_nan_lstm())
    wav = tmp_path / "talk.wav"
    sf.write(str(wav), X, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    assert cli.main(["enhance", str(model), str(wav), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "layer 1 (lstm) produced NaN" in err and "talk.wav" in err
    assert "Traceback" not in err
    assert not out.exists() or not list(out.iterdir())


def _cold_peak(eng: engine.Engine, n: int) -> int:
    tracemalloc.start()
    try:
        eng.enhance(X[:1].repeat(n) + np.linspace(-0.1, 0.1, n, dtype=np.float32))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("family", "n"), [("blstm", 48_003), ("lstm", 32_005), ("fcn", 40_007)])
def test_work_bytes_bounds_what_enhance_allocates(family: str, n: int) -> None:
    eng = engine.Engine(modelfile.read(_with(family)), "intadd")
    est = eng.work_bytes(n)
    peak = _cold_peak(eng, n)  # a new length: caches and scratch are allocated in this call
    assert peak <= est <= 3 * peak, (peak, est)


def test_an_input_needing_more_than_the_limit_is_refused_before_allocating() -> None:
    """Issue 14: a 131 KB model with hop 1 asked for 5.4 GiB for 5.5 s of audio. Such a hop is
    refused by the header now; any input too long for the engine's limit is refused up front."""
    eng = engine.Engine(modelfile.read(_with("lstm")), "intadd", "m.seofp")
    n = 88_000
    limit, x = eng.work_bytes(n) - 1, np.zeros(n, np.float32)
    tracemalloc.start()
    try:
        with pytest.raises(engine.WorkTooLarge, match=r"^m.seofp: enhancing 88,000 samples \(5.5 s "
                                                      r"at 16 kHz\) with params.n_fft=512, "
                                                      r"params.hop=256 needs about 0.0\d GiB, over "
                                                      r"the engine's limit of 0.0\d GiB"):
            eng.enhance(x, max_bytes=limit)
        assert tracemalloc.get_traced_memory()[1] < 2 * n  # the finiteness check of x only
    finally:
        tracemalloc.stop()
    assert eng.work_bytes(60 * 60 * 16000 * 3) > engine.MAX_WORK_BYTES  # 3 h: refused by default
