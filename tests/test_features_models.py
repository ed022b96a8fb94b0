"""Features invert exactly; models have the papers' sizes and map (batch, time) to (batch, time)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from seofp_lab.data import features
from seofp_lab.models import build_model, stored_values


def test_lps_with_noisy_phase_reconstructs_the_input() -> None:
    x = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    spec = features.stft(x)
    y = features.reconstruct(features.lps(spec), spec, x.shape[-1])
    assert ((y - x).norm() / x.norm()).item() < 1e-4


def test_paper_sizes_are_exact() -> None:
    assert stored_values(build_model("blstm", hidden=257, layers=2, fc=300)) == 2_877_929
    assert stored_values(build_model("fcn", layers=10, channels=30, kernel=55)) == 450_301


def test_single_gate_bias() -> None:
    m = build_model("blstm", hidden=8, layers=1, fc=0)
    names = [n for n, _ in m.named_parameters()]
    assert not any("bias_hh" in n for n in names)
    assert "bias_hh_l0" not in m.state_dict()


@pytest.mark.parametrize("name,params", [
    ("blstm", {"hidden": 16, "layers": 2, "fc": 8, "target": "lps"}),
    ("blstm", {"hidden": 16, "layers": 1, "fc": 0, "target": "mask"}),
    ("lstm", {"hidden": 16, "layers": 2, "fc": 0, "target": "mask"}),
    ("fcn", {"layers": 3, "channels": 4, "kernel": 9}),
])
def test_models_map_waves_and_train(name: str, params: dict) -> None:
    torch.manual_seed(0)
    m = build_model(name, **params)
    x = torch.randn(2, 4001) * 0.1
    assert m(x).shape == x.shape
    pred, target = m.training_pair(x, x)
    loss = torch.nn.functional.mse_loss(pred, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in m.parameters())


def test_causal_lstm_is_causal_in_frames() -> None:
    torch.manual_seed(0)
    m = build_model("lstm", hidden=8, layers=1, fc=0, target="mask").eval()
    x = torch.randn(1, 8000) * 0.1
    _, f = m.noisy_lps(x)
    y1 = m.network(f)
    f2 = f.clone()
    f2[:, 20:] += 1.0
    y2 = m.network(f2)
    assert torch.equal(y1[:, :20], y2[:, :20]) and not torch.equal(y1[:, 20:], y2[:, 20:])


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="Expected a model name"):
        build_model("transformer")


def test_models_and_compress_import_without_lightning() -> None:
    code = ("import sys, seofp_lab.models, seofp_lab.compress; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning',"
            " 'mlflow', 'streamlit')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
