"""Pruning masks and schedules, channel/unit pruning, k-means weight sharing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seofp_lab.compress.pruning import (
    PruningSchedule,
    apply_masks_,
    channel_masks,
    cubic_sparsity,
    magnitude_masks,
    prunable,
    unit_layers,
)
from seofp_lab.compress.range import stored_tensors
from seofp_lab.compress.seofp import SEOFPFormat
from seofp_lab.compress.sharing import kmeans_1d, share_weights_, unique_values
from seofp_lab.models import build_model


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 30), nn.Linear(30, 3))


@pytest.mark.parametrize("scope", ["per_layer", "global"])
def test_magnitude_masks_hit_the_exact_sparsity(scope: str) -> None:
    model = mlp()
    targets = prunable(model)
    masks = magnitude_masks(targets, 0.3, scope)
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.3 * total)
    if scope == "per_layer":
        assert all(int((~m).sum()) == round(0.3 * m.numel()) for m in masks.values())
    kept = torch.cat([s.value.detach().abs()[masks[s.name]] for s in targets])
    dropped = torch.cat([s.value.detach().abs()[~masks[s.name]] for s in targets])
    if scope == "global":
        assert dropped.max() <= kept.min()
    apply_masks_(stored_tensors(model), masks)
    assert all(bool((s.value[~masks[s.name]] == 0).all()) for s in targets)


def test_masks_only_grow_sparser() -> None:
    model = mlp()
    targets = prunable(model)
    first = magnitude_masks(targets, 0.5)
    with torch.no_grad():  # training moves pruned weights; they must stay pruned
        for s in targets:
            s.raw.add_(torch.randn_like(s.raw))
    second = magnitude_masks(targets, 0.6, masks=first)
    assert all(bool((~second[k] | first[k]).all()) for k in first)  # second ⊆ first


def test_cubic_schedule_reaches_the_target() -> None:
    sched = PruningSchedule("magnitude", 0.8, "gradual", start_epoch=1, end_epoch=4)
    targets = [sched.target(e) for e in range(7)]
    assert targets[0] is None and targets[5] is None and targets[6] is None
    assert targets[4] == pytest.approx(0.8)
    assert targets[1] < targets[2] < targets[3] < targets[4]
    assert cubic_sparsity(1, 0.8, 1, 4) == pytest.approx(0.8 * (1 - 0.75**3))
    one = PruningSchedule("channel", 0.5, "one_shot", start_epoch=2, end_epoch=5)
    assert [one.target(e) for e in range(4)] == [None, None, 0.5, None]
    with pytest.raises(ValueError, match="start_epoch <= end_epoch"):
        PruningSchedule(start_epoch=3, end_epoch=1)


def test_channel_pruning_zeros_whole_conv_channels() -> None:
    torch.manual_seed(0)
    model = build_model("fcn", layers=3, channels=8, kernel=5)
    masks = channel_masks(model, 0.25)
    assert set(masks) == {f"net.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    apply_masks_(stored_tensors(model), masks)
    convs = [model.net[i] for i in (0, 3, 6)]
    for conv in convs:
        dead = (conv.weight.abs().sum(dim=(1, 2)) == 0) & (conv.bias == 0)
        assert int(dead.sum()) == 2
        assert torch.equal(dead, ~masks[f"net.{list(model.net).index(conv)}.bias"])
    assert bool((model.net[9].weight != 0).all())  # the output conv keeps its filter


def test_lstm_unit_pruning_kills_units() -> None:
    torch.manual_seed(0)
    model = build_model("blstm", hidden=6, layers=2, fc=5)
    layers = unit_layers(model)
    assert [(u.name, u.units, u.gates, len(u.tensors)) for u in layers] == [
        ("lstm_l0", 6, 4, 3), ("lstm_l0_reverse", 6, 4, 3), ("lstm_l1", 6, 4, 3),
        ("lstm_l1_reverse", 6, 4, 3), ("fc", 5, 1, 2)]
    masks = channel_masks(model, 0.5)
    apply_masks_(stored_tensors(model), masks)
    rows = ~masks["lstm.bias_ih_l1"]  # the last layer: its units are the LSTM's output
    assert int(rows.sum()) == 4 * 3  # 3 units x 4 gate rows
    units = rows.reshape(4, 6)
    assert bool((units == units[0]).all())  # the same unit in every gate block
    h, _ = model.lstm(torch.randn(2, 7, 257))
    dead = units[0].nonzero().reshape(-1)
    assert bool((h[..., dead] == 0).all())  # forward direction, pruned units output 0
    alive = (~units[0]).nonzero().reshape(-1)
    assert bool((h[..., alive] != 0).all())
    back = (~masks["lstm.bias_ih_l1_reverse"]).reshape(4, 6)[0].nonzero().reshape(-1)
    assert bool((h[..., 6 + back] == 0).all())


def test_kmeans_gives_the_requested_number_of_values() -> None:
    torch.manual_seed(0)
    x = torch.randn(2000)
    c, labels = kmeans_1d(x, 16)
    assert c.numel() == 16 and torch.unique(labels).numel() == 16
    assert bool((c[1:] > c[:-1]).all())
    edges = kmeans_1d(torch.tensor([1.0, 1.0, 2.0]), 5)[0]
    assert edges.tolist() == [1.0, 2.0]  # fewer distinct values than clusters


def test_weight_sharing_on_top_of_pruning_and_seofp() -> None:
    model = mlp()
    targets = prunable(model)
    masks = magnitude_masks(targets, 0.5)
    apply_masks_(stored_tensors(model), masks)
    share_weights_(targets, 8, masks)
    for s in targets:
        assert unique_values(s.value, masks[s.name]) == 8
        assert bool((s.value[~masks[s.name]] == 0).all())
    centers = share_weights_(targets, 4, masks, SEOFPFormat(5))
    for s in targets:
        v = s.value.detach()[masks[s.name]]
        assert unique_values(s.value, masks[s.name]) <= 4
        assert bool((torch.frexp(v.abs()).mantissa == 0.5).all())
        assert set(v.tolist()) <= set(centers[s.name].tolist())
