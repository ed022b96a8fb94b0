"""``seofp bench``'s side-by-side timing: every contender present, ratios from one run."""

from __future__ import annotations

import math

import pytest

from seofp_lab.infer.bench import CONTENDERS, bench_model
from tests.engine_models import tiny_model


@pytest.mark.parametrize("name", ["blstm", "fcn"])
def test_bench_model_times_every_contender_and_reports_ratios(name: str) -> None:
    result = bench_model(tiny_model(name), seconds=0.25, samples=3, warmup=1)
    rows = {r["name"]: r for r in result.rows}
    assert list(rows) == list(CONTENDERS)
    assert rows["c_fp32"]["vs_c_fp32"] == pytest.approx(1.0)
    assert rows["torch_fp32"]["speedup_vs_fp32"] == pytest.approx(1.0)
    for n in ("c_fp32", "c_intadd", "c_decode"):
        r = rows[n]
        assert r["best_ms"] <= r["latency_ms_p50"] <= r["latency_ms_p90"]
        assert math.isclose(r["rtf"], r["latency_ms_p50"] / 250.0)
    # the FCN has no layer dynamic int8 quantizes: that contender is reported as not run
    assert (rows["torch_int8"]["latency_ms_p50"] is None) == (name == "fcn")
    assert rows["ort"]["latency_ms_p50"] is not None  # ONNX Runtime runs every family
    assert rows["c_intadd"]["vs_ort"] == pytest.approx(
        rows["ort"]["latency_ms_p50"] / rows["c_intadd"]["latency_ms_p50"])
    assert result.env["intadd_layout"] == "addends"  # a tiny model stays in cache
    m = result.metrics  # intadd (the default kernel) unprefixed, every contender prefixed
    assert m["latency_ms_p50"] == rows["c_intadd"]["latency_ms_p50"]
    assert "bench_c_decode_rtf" in m and m["speedup_vs_ort"] == rows["c_intadd"]["vs_ort"]
    assert ("bench_torch_int8_rtf" in m) == (name != "fcn")
