"""Stored values, projection, exponent-range reduction, the representability proof, exact sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seofp_lab.compress import codec
from seofp_lab.compress.range import (
    apply_seofp_,
    check_representable,
    quantized_tensors,
    stored_tensors,
)
from seofp_lab.compress.report import compression_report, layer_table_csv
from seofp_lab.compress.seofp import RepresentabilityError, SEOFPFormat
from seofp_lab.compress.ste import attach_ste_, remove_ste_
from seofp_lab.models import LSTMEnhancer, build_model, stored_values


class Tiny(nn.Module):
    """Conv1d + BatchNorm1d + LSTM + Linear, and a buffer that is not a stored value."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(3))
        self.conv = nn.Conv1d(1, 3, 5, padding=2)
        self.bn = nn.BatchNorm1d(3)
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time) -> (batch, time, 2)
        h = torch.relu(self.bn(self.conv(x.unsqueeze(1)))).transpose(1, 2) - self.feat_mean
        return self.fc(self.lstm(h)[0])


def test_stored_values_match_the_models_count() -> None:
    for model in (Tiny(), build_model("fcn", layers=2, channels=4, kernel=5),
                  build_model("blstm", hidden=5, layers=2, fc=3)):
        names = [s.name for s in stored_tensors(model)]
        assert sum(s.value.numel() for s in stored_tensors(model)) == stored_values(model)
        assert "feat_mean" not in names and not any("num_batches" in n for n in names)
    names = [s.name for s in quantized_tensors(Tiny(), "weights")]
    assert names == ["conv.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "fc.weight"]
    assert len(quantized_tensors(Tiny(), "all")) == 12


def test_paper_blstm_size_figures() -> None:
    model = LSTMEnhancer()  # the paper's BLSTM: 2,877,929 values
    p = stored_values(model)
    assert p == 2_877_929
    assert round(4 * p / 1024) == 11_242
    assert round(p * (1 + codec.code_length(-23, 0)) / 8 / 1024) == 2_108  # 6 bits, Table 4
    assert round(p * 9 / 8 / 1024) == 3_162


@pytest.mark.parametrize("group", ["global", "per_layer"])
def test_projection_gives_a_representable_model(group: str) -> None:
    torch.manual_seed(0)
    model = Tiny()
    model(torch.randn(2, 16))  # batch-norm statistics move away from 0/1
    fmt = SEOFPFormat(3, group)
    targets = quantized_tensors(model, "all")
    with pytest.raises(RepresentabilityError, match="conv.weight"):
        check_representable(targets, fmt)
    apply_seofp_(targets, fmt)
    ranges = check_representable(targets, fmt)
    assert all(r.length <= 3 for r in ranges.values())
    if group == "global":
        assert len({(r.e_min, r.e_max) for r in ranges.values()}) == 1
    before = {s.name: s.value.clone() for s in targets}
    apply_seofp_(targets, fmt)  # idempotent
    assert all(torch.equal(before[s.name], s.value) for s in targets)


def test_window_violations_and_pruned_values_are_refused() -> None:
    lin = nn.Linear(2, 2, bias=False)
    targets = quantized_tensors(lin)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0**-7], [0.5, 0.0]]))
    check_representable(targets, SEOFPFormat(4))  # 8 exponents + zero need 4 bits
    with pytest.raises(RepresentabilityError, match=r"\[-7, 0\] \(len 4\)"):
        check_representable(targets, SEOFPFormat(3))
    with pytest.raises(RepresentabilityError, match="pruned values of weight"):
        check_representable(targets, SEOFPFormat(8), {"weight": torch.tensor([[0, 1], [1, 1]],
                                                                             dtype=torch.bool)})
    with torch.no_grad():
        lin.weight[1, 1] = -0.0
    with pytest.raises(RepresentabilityError, match="never -0"):
        check_representable(targets, SEOFPFormat(8))


def test_ste_removal_leaves_plain_rounded_parameters() -> None:
    torch.manual_seed(1)
    model = Tiny()
    targets = quantized_tensors(model, "weights")
    attach_ste_(targets, SEOFPFormat(5, "per_layer"))
    assert any("original" in n for n, _ in model.named_parameters())
    remove_ste_(targets)
    assert sorted(model.state_dict()) == sorted(Tiny().state_dict())
    check_representable(targets, SEOFPFormat(5, "per_layer"))


def make_known() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.5, 0.25, 0.125], [-1.0, 0.0, 2.0, 0.5]]))
    return model


def test_sizes_of_a_known_model_by_hand() -> None:
    model = make_known()  # P = 8 weights + 2 biases + 2 x 4 BN values = 18
    rep = compression_report(model, SEOFPFormat(8), quantize="weights")
    # weights: e in [-3, 1] -> 5 exponents + zero -> len 3 -> 4 bits; the other 10 values fp32
    w = rep["layers"][0]
    assert (w["e_min"], w["e_max"], w["length"], w["bits"]) == (-3, 1, 3, 4)
    assert w["histogram"] == {-3: 1, -2: 1, -1: 2, 0: 2, 1: 1}
    assert rep["stored_values"] == 18 and rep["fp32_bytes"] == 72
    assert rep["size_bytes_paper"] == (8 * 4 + 10 * 32) // 8 == 44
    assert rep["bits_per_weight"] == pytest.approx(352 / 18)
    assert rep["compression_pct_paper"] == pytest.approx(100 * (1 - 44 / 72))
    assert rep["sparsity"] == pytest.approx(1 / 8)
    mask = torch.tensor([[1, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    with torch.no_grad():
        model[0].weight.masked_fill_(~mask, 0.0)
    rep = compression_report(model, SEOFPFormat(8), {"0.weight": mask}, quantize="weights")
    # bitmap 8 bits = 1 byte + 4 kept x 4 bits = 2 bytes; bias 8 bytes; BN 32 bytes
    assert rep["size_bytes_analytic"] == 1 + 2 + 8 + 32
    assert rep["compression_pct"] == pytest.approx(100 * (1 - 43 / 72))
    assert rep["layers"][0]["pruned"] == 4 and rep["sparsity"] == 0.5
    base = compression_report(make_known(), None)
    assert base["bits_per_weight"] == 32 and base["size_bytes_paper"] == 72
    assert base["compression_pct"] == 0.0
    shared = compression_report(make_known(), None, clusters=4)  # 2-bit indices + 4 fp32 centers
    assert shared["size_bytes_paper"] == math.ceil((8 * 2 + 4 * 32 + 10 * 32) / 8)
    csv = layer_table_csv(rep).splitlines()
    assert csv[0].startswith("name,shape,count") and csv[1].startswith("0.weight,2x4,8,param")
    assert len(csv) == 1 + 6


def test_global_window_spans_tensors() -> None:
    model = make_known()
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([2.0**-10, 4.0]))
    targets = quantized_tensors(model, "all")
    apply_seofp_(targets, SEOFPFormat(8, "global"))
    ranges = check_representable(targets, SEOFPFormat(8, "global"))
    r = ranges["0.weight"]
    assert (r.e_min, r.e_max) == (-10, 2) and r.length == codec.code_length(-10, 2) == 4
    assert r.count == 18
