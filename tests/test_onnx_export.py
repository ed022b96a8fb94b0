"""The ONNX export: ONNX Runtime's output equals PyTorch's within float tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seofp_lab.infer.onnx_export import OnnxEnhancer, OnnxStepper, export_onnx, session
from tests.engine_models import tiny_model


@pytest.mark.parametrize("name", ["blstm", "lstm", "fcn"])
def test_onnx_runtime_matches_pytorch(name: str) -> None:
    model = tiny_model(name)
    wave = (np.random.default_rng(1).standard_normal(4000) * 0.1).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(wave)[None])[0].numpy()
    got = OnnxEnhancer(model).enhance(wave)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_exported_file_runs_on_other_frame_counts(tmp_path) -> None:
    model = tiny_model("blstm")
    path = export_onnx(model, tmp_path / "m.onnx")
    sess = session(path)
    for frames in (3, 40):  # the frame axis is dynamic
        lps = (np.random.default_rng(frames).standard_normal((1, frames, 257)) - 6.0).astype(
            np.float32)
        with torch.inference_mode():
            ref = model.network(torch.from_numpy(lps)).numpy()
        got = sess.run(None, {"lps": lps})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_onnx_step_carries_the_state_like_the_whole_sequence() -> None:
    model = tiny_model("lstm")
    lps = (np.random.default_rng(2).standard_normal((12, 257)) - 6.0).astype(np.float32)
    with torch.inference_mode():
        ref = model.network(torch.from_numpy(lps)[None])[0].numpy()
    stepper = OnnxStepper(model)
    got = np.concatenate([stepper.step(lps[t:t + 1]) for t in range(12)])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
