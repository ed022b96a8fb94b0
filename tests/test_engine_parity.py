"""The C engine against the PyTorch models (docs/engine.md#correctness-tests,
docs/method.md#the-integer-add-identity)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from random_models import seofp_model

from seofp_lab.data import features
from seofp_lab.infer import engine, stft
from seofp_lab.infer import kernels as K
from seofp_lab.infer.export import export_model
from seofp_lab.infer.kernels import KernelError
from tests.engine_models import FAMILIES, tiny_model
from tests.kernel_data import PACKINGS

pytestmark = pytest.mark.kernel


def _rel(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(y - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_engine_matches_torch_and_kernels_are_bit_identical(name: str, tmp_path: Path) -> None:
    model = tiny_model(name)
    path = export_model(model, tmp_path / f"{name}.seofp")
    rng = np.random.default_rng(1)
    for length in (3000, 4097):
        wave = (rng.standard_normal(length) * 0.1).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(wave)[None])[0].numpy()
        outs = []
        for kernel, layout in PACKINGS:  # intadd with both weight layouts
            eng = engine.load(path, kernel, layout)  # type: ignore[arg-type]
            if kernel == "intadd":
                assert eng.intadd_layout == layout
            y = eng.enhance(wave)
            assert y.shape == wave.shape and y.dtype == np.float32
            assert _rel(y, ref) < 1e-5, (kernel, layout, _rel(y, ref))
            assert eng.clamps == 0
            outs.append(y.tobytes())
        assert len(set(outs)) == 1


def test_streaming_equals_offline_for_the_unidirectional_lstm(tmp_path: Path) -> None:
    eng = engine.load(export_model(tiny_model("lstm"), tmp_path / "m.seofp"))
    wave = (np.random.default_rng(2).standard_normal(3333) * 0.1).astype(np.float32)
    offline = eng.enhance(wave)
    for chunk in (1, 160, 256, 1000):
        s = eng.stream()
        parts = [s.push(wave[i:i + chunk]) for i in range(0, wave.size, chunk)]
        out = np.concatenate([*parts, s.flush()])
        assert out.tobytes() == offline.tobytes(), chunk
    with pytest.raises(engine.K.KernelError, match="unidirectional"):
        engine.load(export_model(tiny_model("blstm"), tmp_path / "b.seofp")).stream()


@pytest.mark.parametrize("kernel", ["intadd", "fp32"])
def test_the_streaming_step_path_equals_the_checked_path(kernel: str, tmp_path: Path) -> None:
    # the step fast path (stack and output layer bound once, two C calls) against the checked path
    # (a state given as a list of rows takes it): same output and state bits, frame by frame;
    # non-finite features fall back to the checked path with the state untouched
    path = export_model(tiny_model("lstm"), tmp_path / "m.seofp")
    eng = engine.load(path, kernel)
    assert eng._steps is None  # nothing built before the first short call
    # the checked path on the offline layouts (16-bit addends): "addends" keeps no step copy
    checked = engine.load(path, kernel, intadd_layout="addends") if kernel == "intadd" else eng
    wave = (np.random.default_rng(5).standard_normal(4000) * 0.1).astype(np.float32)
    spec = stft.stft(wave, eng.n_fft, eng.hop)
    fast, rows = eng.stack.new_state(), list(eng.stack.new_state())
    for t in range(0, spec.shape[0], 3):
        a = eng.spectral(spec[t:t + 3], fast)
        b = checked.spectral(spec[t:t + 3], rows)
        assert a.tobytes() == b.tobytes(), t
        assert fast.tobytes() == np.stack(rows).tobytes(), t
    assert eng._stepping()[1] is not None
    assert kernel != "intadd" or checked._stepping()[0] is checked.stack
    before = fast.copy()
    bad = spec[:1].copy()
    bad[0, 3] = np.inf
    with pytest.raises(engine.NonFiniteOutput, match="input features"):
        eng.spectral(bad, fast)
    assert fast.tobytes() == before.tobytes()


def test_numpy_stft_matches_torch() -> None:
    wave = np.random.default_rng(3).standard_normal(5000).astype(np.float32)
    spec = stft.stft(wave)
    ref = features.stft(torch.from_numpy(wave)[None])[0].numpy()
    assert spec.shape == ref.shape
    np.testing.assert_allclose(spec, ref, rtol=0, atol=2e-5 * np.abs(ref).max())
    back = stft.istft(spec, wave.size)
    ref_back = features.istft(torch.from_numpy(ref)[None], wave.size)[0].numpy()
    np.testing.assert_allclose(back, ref_back, rtol=0, atol=1e-5)
    np.testing.assert_allclose(back, wave, rtol=0, atol=1e-5)


def test_with_phase_is_the_magnitude_times_the_unit_phase_per_component() -> None:
    # per bin: re * (m / |X|), im * (m / |X|) in float32; a bin where X = 0 takes the magnitude
    # itself (angle 0); the one-frame call (streaming) gives the same bits as the whole spectrum
    rng = np.random.default_rng(4)
    spec = (rng.standard_normal((7, 33)) + 1j * rng.standard_normal((7, 33))).astype(np.complex64)
    m = rng.random((7, 33)).astype(np.float32)
    for zeros in (False, True):
        x = spec.copy()
        if zeros:
            x[2, 5] = 0
        mag = np.abs(x)
        with np.errstate(all="ignore"):
            scale = np.where(mag > 0, m / mag, np.float32(0)).astype(np.float32)
        ref = np.empty_like(x)
        ref.real, ref.imag = x.real * scale, x.imag * scale
        if zeros:
            ref[2, 5] = m[2, 5]
        out = stft.with_phase(m, x)
        assert out.tobytes() == ref.tobytes()
        assert stft.with_phase(m[3:4], x[3:4]).tobytes() == out[3:4].tobytes()


def _imports_torch(module: str) -> bool:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
    return out.stdout.strip() == b"True"


def test_inference_does_not_import_torch(tmp_path: Path) -> None:
    if _imports_torch("seofp_lab.compress"):  # the package __init__ imports its torch modules
        pytest.skip("seofp_lab.compress imports torch; codec.py alone is numpy-only")
    path = export_model(tiny_model("fcn"), tmp_path / "f.seofp")
    code = ("import sys, numpy as np\n"
            "from seofp_lab.infer import engine\n"
            f"y = engine.load({str(path)!r}).enhance(np.ones(500, np.float32) * 0.1)\n"
            "assert y.shape == (500,)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_non_seofp_weights_need_the_fp32_kernel(tmp_path: Path) -> None:
    from seofp_lab.models import build_model

    model = build_model("fcn", layers=1, channels=3, kernel=5).eval()  # a baseline: not rounded
    path = export_model(model, tmp_path / "base.seofp")
    with pytest.raises(engine.K.KernelError, match="net.0.weight"):
        engine.load(path, "intadd")
    wave = np.random.default_rng(0).standard_normal(800).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(wave)[None])[0].numpy()
    assert _rel(engine.load(path, "fp32").enhance(wave), ref) < 1e-5


def test_auto_intadd_layout_follows_the_model_size(tmp_path: Path) -> None:
    path = export_model(tiny_model("blstm"), tmp_path / "b.seofp")
    assert engine.load(path).intadd_layout == "addends"  # a small model stays in cache
    # hidden 128: W_ih (512, 257) is over 256 KiB as addends (codes), W_hh (512, 128) under it
    big = export_model(tiny_model("lstm", hidden=128, layers=1), tmp_path / "l.seofp")
    assert engine.load(big).intadd_layout == "addends+codes"
    # hidden 256: W_hh (1024, 256) is 512 KiB as addends, under the recurrent matrices' budget
    eng = engine.load(export_model(tiny_model("lstm", hidden=256, layers=1), tmp_path / "m.seofp"))
    wih, whh, _ = eng.cells[0][0]
    assert (wih.c_kind, whh.c_kind) == (engine.K.lib.SEOFP_INTADD, engine.K.lib.SEOFP_INTADD16)
    with pytest.raises(KernelError, match="layout"):
        engine.load(path, "intadd", "bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["lstm", "fcn"])
def test_s1e3_model_runs_on_nibbles_bit_identically(name: str, tmp_path: Path) -> None:
    # every tensor in a 7-exponent window: the engine packs intadd weights as 4-bit nibbles
    model = seofp_model(name, FAMILIES[name], exponent_bits=3)
    path = export_model(model, tmp_path / f"{name}.seofp")
    wave = (np.random.default_rng(2).standard_normal(3000) * 0.1).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(wave)[None])[0].numpy()
    nib = engine.load(path, "intadd", "nibbles")
    kinds = {m.c_kind for m in _packed(nib)}
    assert kinds == {K.lib.SEOFP_INTADD4}, kinds
    y = nib.enhance(wave)
    assert _rel(y, ref) < 1e-5
    assert y.tobytes() == engine.load(path, "decode").enhance(wave).tobytes()


def _packed(eng: engine.Engine) -> list[K.PackedLayer]:
    if eng.name == "fcn":
        return [conv for conv, _, _ in eng.convs]
    mats = [m for dirs in eng.cells for wih, whh, _ in dirs for m in (wih, whh)]
    return mats + [eng.out[0]] + ([eng.fc[0]] if eng.fc else [])
