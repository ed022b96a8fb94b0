"""Every model config in configs/model/ runs the same on PyTorch and on each C kernel.

Each config (the folder is globbed: a new config is covered without editing this file), plus every
mask config with a mask floor of 0.1 and 0.3, is built with random weights, exported and run on
0.5 s of audio. Agreement: max |C - torch| <= 1e-5 * max |torch| (as in test_engine_parity.py),
and the kernels and intadd layouts agree bit for bit with each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from random_models import random_model, seofp_model
from torch import nn

from seofp_lab.config import CONFIGS_DIR, load_config
from seofp_lab.infer import engine, modelfile
from seofp_lab.infer.export import export_model
from seofp_lab.infer.kernels import KernelError
from seofp_lab.train.checkpoint import model_params
from tests.kernel_data import PACKINGS

pytestmark = pytest.mark.kernel

REL_TOL = 1e-5  # max |C - torch| / max |torch|
CONFIGS = sorted((CONFIGS_DIR / "model").glob("*.yaml"))
FLOORS = (0.1, 0.3)  # extra variants of every mask config


def _cases() -> list[object]:
    cases: list[object] = []
    for path in CONFIGS:
        cases.append(pytest.param(path.stem, None, id=path.stem))
        if (yaml.safe_load(path.read_text()) or {}).get("target") == "mask":
            cases += [pytest.param(path.stem, f, id=f"{path.stem}-floor{f}") for f in FLOORS]
    return cases


def _build(stem: str, floor: float | None, rounded: bool) -> tuple[str, nn.Module]:
    """The config's model as training builds it, random weights, mask floor overridden."""
    name, params = model_params(load_config(overrides=[f"model={stem}"]))
    if floor is not None:
        params["mask_floor"] = floor
    model = seofp_model(name, params) if rounded else random_model(name, params)
    if getattr(model, "target", None) == "mask":  # gains across (0, 1), so the floor matters
        g = torch.Generator().manual_seed(1)
        n = model.out.bias.numel()
        k = torch.randint(-1, 3, (n,), generator=g).float()
        sign = torch.where(torch.rand(n, generator=g) < 0.75, -1.0, 1.0)
        with torch.no_grad():
            model.out.bias.copy_(sign * torch.exp2(k))  # ±2^k: still SEOFP
    return name, model


def _torch(model: nn.Module, wave: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(wave)[None])[0].numpy()


def _diff(y: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    d = float(np.abs(y - ref).max())
    return d, d / float(np.abs(ref).max())


def test_the_config_folder_has_models() -> None:
    assert len(CONFIGS) >= 5, CONFIGS  # the glob below must not silently cover nothing


@pytest.mark.parametrize(("stem", "floor"), _cases())
def test_config_runs_the_same_on_torch_and_every_kernel(stem: str, floor: float | None,
                                                        tmp_path: Path) -> None:
    name, model = _build(stem, floor, rounded=True)
    wave = (np.random.default_rng(3).standard_normal(8000) * 0.1).astype(np.float32)
    ref = _torch(model, wave)
    path = export_model(model, tmp_path / f"{stem}.seofp")
    spec = modelfile.load(path).spec
    mask = getattr(model, "target", None) == "mask"
    if name != "fcn":
        assert spec.mask_floor == (model.mask_floor if mask else 0.0)
    if mask and model.mask_floor > 0:
        _assert_the_floor_bites(model, wave, ref)
    outs = set()
    for kernel, layout in PACKINGS:
        eng = engine.load(path, kernel, layout)  # type: ignore[arg-type]
        y = eng.enhance(wave)
        assert y.shape == wave.shape and y.dtype == np.float32
        assert _diff(y, ref)[1] <= REL_TOL, (kernel, layout, _diff(y, ref))
        assert eng.clamps == 0, (kernel, layout)
        outs.add(y.tobytes())
    assert len(outs) == 1  # every kernel and intadd layout: the same samples
    if name == "lstm":  # streaming: the same gains, frame by frame
        stream = engine.load(path).stream()
        parts = [stream.push(wave[i:i + 300]) for i in range(0, wave.size, 300)]
        assert np.concatenate([*parts, stream.flush()]).tobytes() == outs.pop()


@pytest.mark.parametrize(("stem", "floor"), _cases())
def test_config_with_fp32_weights_runs_the_same_on_the_fp32_kernel(stem: str, floor: float | None,
                                                                   tmp_path: Path) -> None:
    _, model = _build(stem, floor, rounded=False)  # a baseline: weights are not powers of two
    wave = (np.random.default_rng(4).standard_normal(8000) * 0.1).astype(np.float32)
    path = export_model(model, tmp_path / f"{stem}.seofp")
    y = engine.load(path, "fp32").enhance(wave)
    assert _diff(y, _torch(model, wave))[1] <= REL_TOL
    with pytest.raises(KernelError, match="weight"):
        engine.load(path, "intadd")


def _assert_the_floor_bites(model: nn.Module, wave: np.ndarray, ref: np.ndarray) -> None:
    """Many gains sit below the floor before it is applied, and ignoring it changes the output
    by far more than the tolerance: an engine that dropped the floor would fail."""
    floor = model.mask_floor
    with torch.no_grad():
        _, lps = model.noisy_lps(torch.from_numpy(wave)[None])
        raw = (model.network(lps) - floor) / (1.0 - floor)  # sigmoid(y), before the floor
    assert float((raw < floor).float().mean()) > 0.05
    model.mask_floor = 0.0
    try:
        unfloored = _torch(model, wave)
    finally:
        model.mask_floor = floor
    assert _diff(unfloored, ref)[1] > 1000 * REL_TOL
