"""The "paper vs this reproduction" table: published figures (``paper_figures.yaml``) beside the
reproduced ones, for the papers' BLSTM and FCN-10 (docs/paper_table.md).

A run counts as a paper model when its ``stored_values`` equal the published parameter count.
Rows per model: fp32 baseline, fp32 control, s1e8 (9 bit), s1e5 (reduced range), pruned 50 % +
s1e5. Quality deltas are percent changes, ``100 (x - ref) / ref``, the way the papers print them:
published against the published fp32 model; reproduced against the variant's equal-budget control
and against the baseline. Sizes are paper-style (KB = 1024 B of P x bits / 8) and, for the
reproduction, also the exported ``.seofp`` file's exact length.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seofp_lab import tracking
from seofp_lab.report.runs import RunRecord

FIGURES = Path(__file__).with_name("paper_figures.yaml")
QUALITY = ("pesq_nb", "pesq_wb", "stoi")  # reproduced; the papers' PESQ variant is not stated
# row key, label, (role, format) of the reproduced run
ROWS = (
    ("fp32", "fp32 baseline", ("baseline", "fp32")),
    ("control", "fp32 control (equal budget)", ("control", "fp32")),
    ("s1e8", "s1e8: 9-bit sign + exponent", ("seofp", "s1e8")),
    ("s1e5", "s1e5: reduced range", ("seofp", "s1e5")),
    ("s1e5_pruned50", "pruned 50 % + s1e5", ("seofp+pruned", "s1e5")),
)
MODEL_LABELS = {"blstm": "BLSTM", "fcn": "FCN-10"}


@dataclass(frozen=True)
class Figure:
    value: float | None
    source: str


@dataclass
class PaperRow:
    model: str
    key: str
    label: str
    published: dict[str, Figure] = field(default_factory=dict)  # pesq stoi size_kb size_pct ...
    published_note: str = ""  # "not published ..." when the papers have no such model
    run: RunRecord | None = None
    reproduced: dict[str, float] = field(default_factory=dict)
    delta_paper: dict[str, float] = field(default_factory=dict)  # % vs the published fp32
    delta_control: dict[str, float] = field(default_factory=dict)  # % vs the variant's control
    delta_baseline: dict[str, float] = field(default_factory=dict)  # % vs the baseline


def load_figures(path: Path = FIGURES) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def pct_change(x: float, ref: float) -> float:
    """Percent change of ``x`` against ``ref``, the papers' delta.

    >>> round(pct_change(2.112, 2.144), 2), round(pct_change(2.076, 2.064), 2)
    (-1.49, 0.58)
    """
    return 100.0 * (x - ref) / ref


def _figures(entry: dict[str, Any]) -> dict[str, Figure]:
    return {k: Figure(v["value"], v["source"]) for k, v in entry.items() if isinstance(v, dict)}


def paper_model(run: RunRecord, figures: dict[str, Any]) -> str | None:
    """``"blstm"``/``"fcn"`` when the run is one of the papers' models (same stored values)."""
    model = run.tags.get(tracking.TAG_MODEL, "")
    spec = figures["models"].get(model)
    n = run.metrics.get("stored_values")
    return model if spec is not None and n == spec["params"]["value"] else None


def _reproduced(key: str, run: RunRecord) -> dict[str, float]:
    m = run.metrics
    out = {q: m[q] for q in QUALITY if q in m}
    n = m.get("stored_values")
    if key in ("fp32", "control"):
        bits: float | None = 32.0
    elif key == "s1e8":
        bits = 9.0  # the papers' 9-bit storage; the range-reduced width is bits_range
    else:
        bits = m.get("bits_per_weight")
    if "bits_per_weight" in m:
        out["bits_range"] = m["bits_per_weight"]
    if bits is not None and n:
        out["bits"] = bits
        out["size_kb"] = n * bits / 8 / 1024
        out["size_pct"] = 100.0 * bits / 32
    if "size_bytes" in m and n:
        out["file_kb"] = m["size_bytes"] / 1024
        out["file_pct"] = 100.0 * m["size_bytes"] / (4 * n)
    c_fp32, c_int = m.get("bench_c_fp32_latency_ms_p50"), m.get("bench_c_intadd_latency_ms_p50")
    if c_fp32 and c_int:
        out["speedup"] = c_fp32 / c_int  # the C engine's integer adder vs its own fp32 loop
    if "speedup_vs_fp32" in m:
        out["speedup_torch"] = m["speedup_vs_fp32"]
    return out


def _newest(runs: Sequence[RunRecord]) -> RunRecord | None:
    return max(runs, key=lambda r: r.start_time) if runs else None


def build_paper_rows(runs: Sequence[RunRecord],
                     figures: dict[str, Any] | None = None) -> list[PaperRow]:
    """Rows for every paper model among ``runs`` (none when no run is a paper model)."""
    figures = figures or load_figures()
    by_model: dict[str, list[RunRecord]] = {}
    for r in runs:
        if (model := paper_model(r, figures)) is not None:
            by_model.setdefault(model, []).append(r)
    out: list[PaperRow] = []
    for model in (m for m in figures["models"] if m in by_model):
        spec = figures["models"][model]["rows"]
        mine = by_model[model]
        rows = []
        for key, label, (role, fmt) in ROWS:
            entry = spec.get(key, {})
            run = _newest([r for r in mine if r.role == role and (r.fmt or "fp32") == fmt])
            row = PaperRow(model, key, label, _figures(entry), entry.get("note", ""), run)
            if key == "control":
                row.published_note = "no such run in the papers"
            if run is not None:
                row.reproduced = _reproduced(key, run)
            rows.append(row)
        _deltas(rows)
        out += rows
    return out


def _deltas(rows: list[PaperRow]) -> None:
    ref = {r.key: r for r in rows}
    paper_fp32 = ref["fp32"].published
    for r in rows:
        for q in ("pesq", "stoi"):
            mine, base = r.published.get(q), paper_fp32.get(q)
            if r.key != "fp32" and mine and base and mine.value is not None and base.value:
                r.delta_paper[q] = pct_change(mine.value, base.value)
        if r.key in ("fp32", "control") or not r.reproduced:
            continue
        for name, against in (("control", r.delta_control), ("fp32", r.delta_baseline)):
            other = ref[name].reproduced
            for q in QUALITY:
                if q in r.reproduced and other.get(q):
                    against[q] = pct_change(r.reproduced[q], other[q])
    control, base = ref["control"], ref["fp32"]
    if control.reproduced and base.reproduced:  # what the extra epochs alone did
        for q in QUALITY:
            if q in control.reproduced and base.reproduced.get(q):
                control.delta_baseline[q] = pct_change(control.reproduced[q], base.reproduced[q])


CSV_COLUMNS = (
    "model", "row", "label", "run_id",
    "paper_pesq", "paper_stoi", "paper_delta_pesq_pct", "paper_delta_stoi_pct", "paper_size_kb",
    "paper_size_pct", "paper_bits", "paper_speedup", "paper_note",
    *QUALITY, *(f"delta_{q}_pct_vs_control" for q in QUALITY),
    *(f"delta_{q}_pct_vs_baseline" for q in QUALITY),
    "size_kb", "size_pct", "bits", "bits_range", "file_kb", "file_pct", "speedup", "speedup_torch",
    "paper_sources",
)


def paper_csv(rows: Sequence[PaperRow]) -> str:
    """The side-by-side table with raw numbers (empty = not published / not measured)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        pub = {k: f.value for k, f in r.published.items()}
        cells: dict[str, Any] = {
            "model": r.model, "row": r.key, "label": r.label,
            "run_id": r.run.run_id if r.run else "",
            **{f"paper_{k}": v for k, v in pub.items()},
            "paper_delta_pesq_pct": r.delta_paper.get("pesq"),
            "paper_delta_stoi_pct": r.delta_paper.get("stoi"),
            "paper_note": r.published_note,
            **r.reproduced,
            **{f"delta_{q}_pct_vs_control": v for q, v in r.delta_control.items()},
            **{f"delta_{q}_pct_vs_baseline": v for q, v in r.delta_baseline.items()},
            "paper_sources": "; ".join(f"{k}: {f.source}" for k, f in r.published.items()),
        }
        w.writerow(["" if cells.get(c) is None else cells[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def noisy_figures(runs: Sequence[RunRecord], figures: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The noisy input: published PESQ/STOI and the reproduction's test set scores."""
    figures = figures or load_figures()
    pub = _figures(figures["noisy"])
    mine: dict[str, float] = {}
    for r in runs:
        if paper_model(r, figures) and (vals := {q: r.metrics[f"noisy_{q}"] for q in QUALITY
                                                 if f"noisy_{q}" in r.metrics}):
            mine = vals
            break
    return {"published": pub, "reproduced": mine}


__all__ = ["FIGURES", "PaperRow", "build_paper_rows", "load_figures", "noisy_figures",
           "paper_csv", "paper_model", "pct_change"]
