"""The "paper vs this reproduction" table: published figures with their sources, reproduced
values from real MLflow runs of a sweep, percent deltas in the papers' direction, HTML and CSV."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from seofp_lab import cli, tracking
from seofp_lab.errors import TrackingError
from seofp_lab.report import build_report
from seofp_lab.report.paper_render import paper_markdown
from seofp_lab.report.paper_table import (
    build_paper_rows,
    load_figures,
    noisy_figures,
    pct_change,
)
from seofp_lab.report.runs import record

P_FCN = 450_301
NOISY = {"noisy_pesq_nb": 1.9, "noisy_pesq_wb": 1.3, "noisy_stoi": 0.70}
# role, format, PESQ-nb, STOI, extra metrics
RUNS = {
    "fcn/baseline": ("baseline", "fp32", 2.0, 0.80, {"size_bytes": 1_801_500.0}),
    "fcn/control": ("control", "fp32", 2.2, 0.82, {"size_bytes": 1_801_500.0}),
    "fcn/s1e8": ("seofp", "s1e8", 2.1, 0.81, {"bits_per_weight": 7.0, "size_bytes": 394_100.0,
                                              "bench_c_fp32_latency_ms_p50": 12.0,
                                              "bench_c_intadd_latency_ms_p50": 10.0,
                                              "speedup_vs_fp32": 1.4}),
    "fcn/s1e5": ("seofp", "s1e5", 2.3, 0.79, {"bits_per_weight": 6.0, "size_bytes": 338_000.0}),
}


def _log(point: str, role: str, fmt: str, pesq: float, stoi: float, extra: dict,
         sweep: str = "paper_table") -> str:
    tags = {tracking.TAG_ROLE: role, tracking.TAG_FORMAT: fmt, tracking.TAG_MODEL: "fcn",
            tracking.TAG_CORPUS: "lab", tracking.TAG_SWEEP: sweep,
            tracking.TAG_SWEEP_POINT: point}
    metrics = {"pesq_nb": pesq, "pesq_wb": pesq - 0.5, "stoi": stoi, "stored_values": P_FCN,
               **NOISY, **extra}
    with tracking.start_run("seofp-paper", point, tags) as run_id:
        tracking.log_metrics(metrics)
    time.sleep(0.01)
    return run_id


@pytest.fixture
def sweep_store(workspace: Path) -> dict[str, str]:
    ids = {k: _log(k, *v) for k, v in RUNS.items()}
    _log("fcn/baseline", "baseline", "fp32", 9.0, 0.9, {}, sweep="other")  # another sweep's
    return ids


def test_published_figures_name_their_source_and_match_the_papers_deltas() -> None:
    fig = load_figures()
    for model in fig["models"].values():
        for row in model["rows"].values():
            for key, entry in row.items():
                assert key == "note" or entry["source"], key
    blstm = fig["models"]["blstm"]["rows"]
    assert round(pct_change(blstm["s1e8"]["pesq"]["value"], blstm["fp32"]["pesq"]["value"]),
                 2) == -1.49
    fcn = fig["models"]["fcn"]["rows"]
    assert round(pct_change(fcn["s1e8"]["stoi"]["value"], fcn["fp32"]["stoi"]["value"]),
                 2) == -2.91
    # the published sizes are P x bits / 8 in KB of 1024 B, rounded
    for name, model in fig["models"].items():
        p = model["params"]["value"]
        for row in ("fp32", "s1e8", "s1e5"):
            r = model["rows"][row]
            assert round(p * r["bits"]["value"] / 8 / 1024) == r["size_kb"]["value"], (name, row)


def test_rows_pair_published_and_reproduced_with_deltas_in_one_direction(
        sweep_store: dict[str, str]) -> None:
    from seofp_lab.report.runs import sweep_runs

    runs, _ = sweep_runs("paper_table")
    rows = {r.key: r for r in build_paper_rows(runs)}
    assert list(rows) == ["fp32", "control", "s1e8", "s1e5", "s1e5_pruned50"]
    assert rows["fp32"].run.run_id == sweep_store["fcn/baseline"]  # not the other sweep's
    s1e8 = rows["s1e8"]
    assert s1e8.published["pesq"].value == 2.076 and s1e8.published["speedup"].value == 1.19
    assert s1e8.delta_paper["pesq"] == pytest.approx(100 * (2.076 - 2.064) / 2.064)  # +0.58 %
    # below its control, above its baseline: one sign each, variant minus reference
    assert s1e8.delta_control["pesq_nb"] == pytest.approx(100 * (2.1 - 2.2) / 2.2)
    assert s1e8.delta_baseline["pesq_nb"] == pytest.approx(100 * (2.1 - 2.0) / 2.0)
    assert s1e8.delta_control["pesq_nb"] < 0 < s1e8.delta_baseline["pesq_nb"]
    assert s1e8.reproduced["bits"] == 9 and s1e8.reproduced["bits_range"] == 7
    assert s1e8.reproduced["size_kb"] == pytest.approx(P_FCN * 9 / 8 / 1024)  # 494.7: "495"
    assert s1e8.reproduced["speedup"] == pytest.approx(1.2)  # C fp32 / C intadd
    s1e5 = rows["s1e5"]
    assert s1e5.reproduced["size_pct"] == pytest.approx(18.75)
    assert s1e5.reproduced["file_kb"] == pytest.approx(338_000 / 1024)
    assert s1e5.delta_control["stoi"] < 0 and s1e5.delta_baseline["stoi"] < 0
    assert rows["control"].delta_baseline["pesq_nb"] == pytest.approx(10.0)  # the extra epochs
    assert rows["s1e5_pruned50"].run is None and "not published" in rows[
        "s1e5_pruned50"].published_note
    text = paper_markdown(list(rows.values()), noisy_figures(runs))
    assert "| FCN-10 | s1e8: 9-bit sign + exponent | 2.076 (+0.58 %)" in text
    assert "−4.55 % vs control · +5.00 % vs baseline" in text
    assert "noisy input: paper PESQ 1.825, STOI 0.717; reproduction PESQ-nb 1.900" in text


def test_report_for_a_sweep_has_the_side_by_side_table_and_csv(
        sweep_store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--sweep", "paper_table", "--out", str(tmp_path),
                     "--audio-items", "0"]) == 0
    out = capsys.readouterr().out
    assert "| FCN-10 | fp32 baseline | 2.064" in out
    html = (tmp_path / "paper_table.html").read_text()
    assert "Paper vs this reproduction" in html and "IA-NET Table 1" in html  # sources on hover
    assert "no run in this report" in html  # the pruned row has no run
    with (tmp_path / "paper_table_paper.csv").open() as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert float(rows["s1e8"]["paper_delta_stoi_pct"]) == pytest.approx(-2.9139, abs=1e-3)
    assert float(rows["s1e5"]["paper_bits"]) == 7 and float(rows["s1e5"]["bits"]) == 6
    assert rows["s1e5_pruned50"]["paper_pesq"] == "" and rows["s1e5_pruned50"]["run_id"] == ""
    main = list(csv.DictReader(io.StringIO((tmp_path / "paper_table.csv").read_text())))
    assert {r["run_id"] for r in main if r["row"] == "run"} == set(sweep_store.values())
    assert {r["label"] for r in main if r["row"] == "run"} == set(RUNS)  # the sweep's points


def test_a_report_without_paper_models_has_no_paper_table(workspace: Path,
                                                          tmp_path: Path) -> None:
    with tracking.start_run("small", "s", {tracking.TAG_ROLE: "baseline",
                                           tracking.TAG_MODEL: "fcn"}) as rid:
        tracking.log_metrics({"pesq_wb": 2.0, "stored_values": 1234.0})
    assert build_paper_rows([record(tracking.get_run(rid))]) == []
    result = build_report(run_ids=[rid], out=tmp_path, audio_items=0)
    assert result.paper_csv is None and "Paper vs this reproduction" not in result.html.read_text()
    with pytest.raises(TrackingError, match="sweeps there: none"):
        build_report(sweep="nope", out=tmp_path)
