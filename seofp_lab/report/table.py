"""The paper-style results table: one row per run plus the noisy input, deltas vs each run's
equal-budget control and vs its baseline, display formatting, and the CSV companion (raw numbers,
same rows)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from seofp_lab import tracking
from seofp_lab.report.runs import RunRecord, Selection

QUALITY = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")  # higher is better; noisy_* exist
CONTENDERS = ("torch_fp32", "torch_int8", "ort", "c_fp32", "c_intadd", "c_decode")  # infer/bench.py
SPEED = ("latency_ms_p50", "latency_ms_p90", "rtf", "speedup_vs_fp32")
COLUMNS = (*QUALITY, "size_bytes", "compression_pct", "bits_per_weight", "sparsity", *SPEED)
LABELS = {
    "pesq_wb": "PESQ-wb",
    "pesq_nb": "PESQ-nb",
    "stoi": "STOI",
    "estoi": "ESTOI",
    "si_sdr": "SI-SDR (dB)",
    "csig": "CSIG",
    "cbak": "CBAK",
    "covl": "COVL",
    "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK",
    "dnsmos_ovrl": "DNSMOS OVRL",
    "size_bytes": "size",
    "compression_pct": "compr. %",
    "bits_per_weight": "bits / weight",
    "sparsity": "sparsity",
    "latency_ms_p50": "p50 ms",
    "latency_ms_p90": "p90 ms",
    "rtf": "RTF",
    "speedup_vs_fp32": "× torch fp32",
}
BEST: dict[str, Literal["max", "min"]] = {
    **dict.fromkeys(QUALITY, "max"),
    "size_bytes": "min",
    "latency_ms_p50": "min",
    "latency_ms_p90": "min",
    "rtf": "min",
    "speedup_vs_fp32": "max",
}


@dataclass
class Row:
    """One table row: ``kind`` "noisy" (the input) or "run"."""

    kind: Literal["noisy", "run"]
    label: str
    role: str = ""
    fmt: str = ""
    model: str = ""
    corpus: str = ""
    kernel: str = ""
    run_id: str = ""
    baseline_run: str = ""
    control_run: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    deltas: dict[str, float] = field(default_factory=dict)  # vs the run's baseline, QUALITY only
    control_deltas: dict[str, float] = field(default_factory=dict)  # vs its control, QUALITY

    def missing(self) -> list[str]:
        return [c for c in self.columns() if self.values.get(c) is None]

    def columns(self) -> tuple[str, ...]:
        return QUALITY if self.kind == "noisy" else COLUMNS


def _value(metrics: dict[str, float], key: str) -> float | None:
    v = metrics.get(key)
    return None if v is None or not math.isfinite(v) else float(v)


def build_rows(sel: Selection) -> list[Row]:
    """Noisy input rows (one per corpus) first, then one row per compared run."""
    rows: list[Row] = []
    seen_corpora: set[str] = set()
    for r in sel.runs:
        corpus = r.tags.get(tracking.TAG_CORPUS, "")
        if corpus in seen_corpora or not any(f"noisy_{q}" in r.metrics for q in QUALITY):
            continue
        seen_corpora.add(corpus)
        rows.append(
            Row(
                "noisy",
                "noisy input",
                corpus=corpus,
                values={q: _value(r.metrics, tracking.metric_key(q, noisy=True)) for q in QUALITY},
            )
        )
    for r in sel.runs:
        row = Row(
            "run",
            r.label,
            role=r.role,
            fmt=r.fmt,
            model=r.tags.get(tracking.TAG_MODEL, ""),
            corpus=r.tags.get(tracking.TAG_CORPUS, ""),
            kernel=r.tags.get(tracking.TAG_KERNEL, "") if "latency_ms_p50" in r.metrics else "",
            run_id=r.run_id,
            baseline_run=r.baseline_run,
            control_run=r.control_run,
            values={c: _value(r.metrics, c) for c in COLUMNS},
        )
        for refs, deltas in ((sel.baselines, row.deltas), (sel.controls, row.control_deltas)):
            ref = refs.get(r.run_id)
            if ref is None or ref.run_id == r.run_id:
                continue
            for q in QUALITY:
                mine, theirs = row.values[q], _value(ref.metrics, q)
                if mine is not None and theirs is not None:
                    deltas[q] = mine - theirs
        rows.append(row)
    return rows


def best_values(rows: Sequence[Row]) -> dict[str, float]:
    """The best value of each column over the run rows (bold in the HTML)."""
    out: dict[str, float] = {}
    for col, how in BEST.items():
        vals = [v for r in rows if r.kind == "run" and (v := r.values.get(col)) is not None]
        if len(vals) > 1:
            out[col] = max(vals) if how == "max" else min(vals)
    return out


def human_bytes(n: float) -> str:
    """Binary units, one decimal.

    >>> human_bytes(644730), human_bytes(512)
    ('629.6 KiB', '512 B')
    """
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if abs(n) < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


def fmt_value(col: str, v: float | None) -> str:
    """Display text of one cell; an em dash for a missing value.

    >>> fmt_value("stoi", 0.91184), fmt_value("sparsity", 0.5), fmt_value("rtf", None)
    ('0.912', '50.0 %', '—')
    """
    if v is None:
        return "—"
    if col == "size_bytes":
        return human_bytes(v)
    if col == "sparsity":
        return f"{100 * v:.1f} %"
    if col == "rtf":
        return f"{v:.4f}"
    if col in ("speedup_vs_fp32", "speedup_vs_ort"):
        return f"{v:.2f}×"
    if col in ("si_sdr", "compression_pct", "bits_per_weight", "latency_ms_p50", "latency_ms_p90"):
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_delta(col: str, d: float) -> str:
    """A signed difference with a true minus sign.

    >>> fmt_delta("pesq_wb", 0.0325), fmt_delta("si_sdr", -1.234), fmt_delta("stoi", -1e-5)
    ('+0.033', '−1.23', '±0.000')
    """
    text = f"{abs(d):.2f}" if col == "si_sdr" else f"{abs(d):.3f}"
    if float(text) == 0:
        return "±" + text  # never a red "−0.000"
    return ("+" if d > 0 else "−") + text


def to_csv(rows: Sequence[Row]) -> str:
    """The table with raw numbers (empty cell = missing), one ``delta_vs_control_*`` and one
    ``delta_*`` (vs baseline) column per quality metric; the same rows, in the same order, as the
    HTML."""
    head = [
        "row",
        "label",
        "role",
        "format",
        "model",
        "corpus",
        "kernel",
        "run_id",
        "baseline_run",
        "control_run",
        *COLUMNS,
        *(f"delta_vs_control_{q}" for q in QUALITY),
        *(f"delta_{q}" for q in QUALITY),
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in rows:
        vals = ["" if r.values.get(c) is None else repr(r.values[c]) for c in COLUMNS]
        deltas = [repr(d[q]) if q in d else "" for d in (r.control_deltas, r.deltas)
                  for q in QUALITY]
        w.writerow(
            [
                r.kind,
                r.label,
                r.role,
                r.fmt,
                r.model,
                r.corpus,
                r.kernel,
                r.run_id,
                r.baseline_run,
                r.control_run,
                *vals,
                *deltas,
            ]
        )
    return buf.getvalue()


def speed_rows(runs: Sequence[RunRecord]) -> list[dict[str, str]]:
    """Every benchmarked contender of every run (``bench_<contender>_*``, infer/bench.py), as
    display text; the contender the run's ``seofp.kernel`` tag names is marked."""
    out = []
    for r in runs:
        kernel = r.tags.get(tracking.TAG_KERNEL, "")
        for c in CONTENDERS:
            vals = {k: _value(r.metrics, f"bench_{c}_{k}") for k in (*SPEED, "speedup_vs_ort")}
            if vals["latency_ms_p50"] is None:
                continue
            out.append(
                {
                    "run": r.label,
                    "run_id": r.short_id,
                    "contender": c,
                    "tagged": "yes" if c == f"c_{kernel}" else "",
                    **{k: fmt_value(k, v) for k, v in vals.items()},
                }
            )
    return out
