"""Compression during real (tiny, CPU) Lightning training: projection timing, STE, pruning."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from seofp_lab.compress.range import check_representable
from seofp_lab.compress.seofp import RepresentabilityError
from seofp_lab.config import (
    CONFIGS_DIR,
    CompressionConfig,
    PruningConfig,
    WeightSharingConfig,
    load_yaml_model,
)
from seofp_lab.train.compression import CompressionPlan, build_compression
from seofp_lab.train.module import EnhanceModule

logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class TinyEnhancer(nn.Module):
    """(batch, time) -> (batch, time): Conv1d + BatchNorm1d + LSTM + Linear, a feature buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("feat_std", torch.ones(1))
        self.conv = nn.Conv1d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm1d(6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn(self.conv(x.unsqueeze(1) / self.feat_std))).transpose(1, 2)
        return self.out(torch.relu(self.fc(self.lstm(h)[0]))).squeeze(-1)

    def training_pair(self, noisy: Tensor, clean: Tensor) -> tuple[Tensor, Tensor]:
        return self(noisy), clean


class Probe(EnhanceModule):
    """Records, at every validation step and epoch start, whether the model is representable."""

    def __init__(self, model: nn.Module, plan: CompressionPlan) -> None:
        super().__init__(model, lr=3e-2)
        self.plan, self.val_ok, self.start_ok, self.step_ok = plan, [], [], []

    def _ok(self, params_only: bool = False) -> bool:
        st = self.plan.state
        if st.fmt is None:
            return all(bool((s.value[~st.masks[s.name]] == 0).all()) for s in st.weights
                       if s.name in st.masks)
        targets = [s for s in st.targets if s.kind == "param" or not params_only]
        try:
            check_representable(targets, st.fmt, st.masks)
        except RepresentabilityError:
            return False
        return True

    def on_train_epoch_start(self) -> None:
        self.start_ok.append(self._ok())

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        self.step_ok.append(self._ok(params_only=True))  # BN statistics move in forward
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        self.val_ok.append(self._ok())
        return super().validation_step(batch, batch_idx)


def fit(cfg: CompressionConfig, epochs: int = 3, tmp_path: Path | None = None,
        ) -> tuple[TinyEnhancer, CompressionPlan, Probe]:
    torch.manual_seed(0)
    model = TinyEnhancer()
    plan = build_compression(cfg, model, epochs)
    probe = Probe(model, plan)
    x = torch.randn(16, 32)
    data = TensorDataset(x, 0.5 * x)
    callbacks = list(plan.callbacks)
    if tmp_path is not None:
        callbacks.append(L.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True))
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=tmp_path is not None, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=callbacks, num_sanity_val_steps=0,
                        default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(probe, DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))
    return model, plan, probe


def test_paper_mode_projects_after_each_epoch_before_validation(tmp_path: Path) -> None:
    cfg = CompressionConfig(format="s1e5", mode="paper", quantize="all")
    model, plan, probe = fit(cfg, 3, tmp_path)
    assert plan.state.projections == 3  # once per epoch, at its last batch
    assert probe.val_ok == [True] * 6  # 2 validation batches x 3 epochs: all rounded
    assert probe.start_ok == [False, True, True]  # each epoch starts from rounded weights
    assert probe.step_ok.count(True) == 2  # first step of epochs 2 and 3; fp32 within an epoch
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)["state_dict"]
    assert torch.equal(ckpt["model.lstm.weight_hh_l0"], model.lstm.weight_hh_l0)
    q = ckpt["model.conv.weight"].abs()
    assert bool(((q == 0) | (torch.frexp(q).mantissa == 0.5)).all())
    metrics = plan.finalize(model)
    assert plan.state.projections == 4
    assert metrics["bits_per_weight"] <= 6 and metrics["compression_pct"] > 80
    assert plan.format_name == "s1e5"


def test_ste_mode_uses_rounded_weights_and_trains_shadow_weights() -> None:
    cfg = CompressionConfig(format="s1e3", mode="ste", group="per_layer", quantize="all")
    torch.manual_seed(0)
    model, plan, probe = fit(cfg, 2)
    assert all(probe.val_ok) and probe.step_ok[1:] == [True] * (len(probe.step_ok) - 1)
    shadow = model.conv.parametrizations.weight.original
    assert not bool((torch.frexp(shadow.abs()).mantissa == 0.5).all())  # fp32 θ moved freely
    metrics = plan.finalize(model)
    assert "conv.weight" in model.state_dict() and "conv.parametrizations" not in str(
        list(model.state_dict()))
    assert metrics["bits_per_weight"] <= 4
    ranges = check_representable(plan.state.targets, plan.state.fmt)
    assert all(r.length <= 3 for r in ranges.values())


def test_pruning_masks_survive_training_and_quantization(tmp_path: Path) -> None:
    cfg = CompressionConfig(format="s1e5", mode="paper", pruning=PruningConfig(sparsity=0.5))
    model, plan, probe = fit(cfg, 3)
    st = plan.state
    assert [round(s, 4) for _, s in st.prune_steps] == [0.3519, 0.4815, 0.5]
    assert all(probe.val_ok)
    metrics = plan.finalize(model)
    for s in st.weights:
        pruned = ~st.masks[s.name]
        assert int(pruned.sum()) == round(0.5 * s.value.numel())
        assert bool((s.value[pruned] == 0).all())
    assert metrics["sparsity"] >= 0.5
    assert metrics["size_bytes_analytic"] < metrics["size_bytes_paper"]
    paths = plan.artifacts(model, tmp_path / "art")
    assert [p.name for p in paths] == ["exponent_histogram.png", "sparsity.png", "layers.csv",
                                       "compression_report.json"]
    assert all(p.stat().st_size > 100 for p in paths)


def test_channel_pruning_with_weight_sharing() -> None:
    cfg = CompressionConfig(pruning=PruningConfig(kind="channel", sparsity=0.5,
                                                  schedule="one_shot"),
                            weight_sharing=WeightSharingConfig(clusters=4))
    model, plan, _ = fit(cfg, 2)
    metrics = plan.finalize(model)
    assert plan.format_name is None
    assert int((model.conv.weight.abs().sum(dim=(1, 2)) == 0).sum()) == 3
    kept = model.fc.weight[plan.masks["fc.weight"]]
    assert torch.unique(kept).numel() <= 4
    assert metrics["bits_per_weight"] < 32


def test_bad_pruning_epochs_are_refused() -> None:
    cfg = CompressionConfig(pruning=PruningConfig(start_epoch=5))
    with pytest.raises(ValueError, match="start_epoch <= end_epoch < train.max_epochs"):
        build_compression(cfg, TinyEnhancer(), 3)


@pytest.mark.parametrize("path", sorted((CONFIGS_DIR / "compression").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_compression_config_builds(path: Path) -> None:
    cfg = load_yaml_model(path, CompressionConfig)
    plan = build_compression(cfg, TinyEnhancer(), 4)
    if cfg.format is not None:
        assert plan.format_name.startswith(path.stem.split("_")[0])
    assert len(plan.callbacks) == 1


def test_finalize_reports_the_exported_file_size() -> None:
    from seofp_lab.infer.export import serialize_model
    from seofp_lab.models import build_model

    torch.manual_seed(0)
    model = build_model("fcn", layers=2, channels=6, kernel=5)
    cfg = CompressionConfig(format="s1e5", quantize="all",
                            pruning=PruningConfig(sparsity=0.5, schedule="one_shot"))
    plan = build_compression(cfg, model, 1)
    plan.state.prune(0)
    metrics = plan.finalize(model)
    size = len(serialize_model(model, "global"))
    assert metrics["size_bytes"] == size
    p = sum(t.numel() for t in model.parameters()) + 2 * 2 * 6  # + BN running statistics
    assert metrics["compression_pct"] == pytest.approx(100 * (1 - size / (4 * p)))
    assert size > metrics["size_bytes_analytic"]  # the file adds a header and a layer table
