"""Turn collected report data into the page: table cells, footnotes, figures, header facts."""

from __future__ import annotations

import base64
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seofp_lab.report.listening import ListeningSummary
from seofp_lab.report.runs import RunRecord
from seofp_lab.report.table import (
    COLUMNS,
    LABELS,
    QUALITY,
    Row,
    best_values,
    fmt_delta,
    fmt_value,
)

GIT_TAG = "mlflow.source.git.commit"  # set by tracking.start_run inside a git checkout
BLANK: dict[str, Any] = {
    "text": "",
    "cls": "",
    "missing": False,
    "fn": 1,
    "title": "",
    "delta": "",
    "delta_cls": "",
    "delta2": "",
    "delta2_cls": "",
}


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def cells(rows: Sequence[Row]) -> tuple[list[dict[str, Any]], list[str]]:
    """Display rows for the template and the footnotes their dashes point to.

    Footnote 1 explains a dash; 2 explains deltas; later ones list, per run, what is missing.
    """
    best = best_values(rows)
    shown_ids = {x.run_id for x in rows}
    notes = [
        "— : not in the store for this run (not evaluated, not benchmarked, or not "
        "applicable to its format); each run's missing metrics are listed below.",
        "Small numbers under a quality score: \"ctl\" the difference to the run's equal-budget "
        "fp32 control (seofp.control_run: the same fine-tuning without compression, the cost of "
        "compression alone), \"base\" the difference to its baseline (seofp.baseline_run: "
        "compression plus the extra fine-tuning); green when better.",
    ]
    out = []
    for r in rows:
        shown: list[dict[str, Any]] = []
        for col in COLUMNS:
            if col not in r.columns():
                shown.append(dict(BLANK))
                continue
            v = r.values.get(col)
            cell = {
                **BLANK,
                "text": fmt_value(col, v),
                "missing": v is None,
                "cls": "best" if v is not None and best.get(col) == v else "",
            }
            if col == "size_bytes" and v is not None:
                cell["title"] = f"{v:,.0f} bytes"
                cell["delta"], cell["delta_cls"] = f"{v:,.0f} B", ""
            if col in QUALITY:
                slots = (("delta", "ctl", r.control_deltas), ("delta2", "base", r.deltas))
                if not r.control_deltas:  # a run without a control shows its baseline delta
                    slots = (("delta", "", r.deltas),)
                for slot, tag, deltas in slots:
                    if col in deltas:
                        text = fmt_delta(col, deltas[col])
                        cell[slot] = f"{tag} {text}" if tag else text
                        cell[f"{slot}_cls"] = {"+": "up", "−": "down"}.get(text[0], "")
            shown.append(cell)
        if r.deltas and r.baseline_run not in shown_ids:
            notes.append(
                f"{r.label} ({r.run_id[:8]}): deltas are against its baseline run "
                f"{r.baseline_run[:8]}, which is not a row of this table."
            )
        if r.control_deltas and r.control_run not in shown_ids:
            notes.append(
                f"{r.label} ({r.run_id[:8]}): \"ctl\" deltas are against its control run "
                f"{r.control_run[:8]}, which is not a row of this table."
            )
        if r.kind == "run" and r.control_run and not r.control_deltas:
            notes.append(
                f"{r.label} ({r.run_id[:8]}): control run {r.control_run[:8]} not found or "
                "without scores, so no \"ctl\" deltas."
            )
        if r.kind == "run" and r.baseline_run and not r.deltas and r.role != "baseline":
            notes.append(
                f"{r.label} ({r.run_id[:8]}): baseline run {r.baseline_run[:8]} not "
                "found or without scores, so no deltas."
            )
        missing = r.missing()
        if missing:
            notes.append(
                f"{r.label}{' (' + r.run_id[:8] + ')' if r.run_id else ''}: no "
                + ", ".join(LABELS[m] for m in missing)
                + "."
            )
        out.append(
            {
                "kind": r.kind,
                "role": r.role,
                "fmt": r.fmt,
                "model": r.model,
                "label": r.label + (f" ({r.corpus})" if r.kind == "noisy" and r.corpus else ""),
                "run": r.run_id[:8],
                "cells": shown,
            }
        )
    return out, notes


def _git_head() -> str | None:
    """The commit of the code making the report (read-only ``git rev-parse``)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def code_text(runs: Sequence[RunRecord]) -> str:
    """Commits the runs were made with (when MLflow recorded one) and the report's own."""
    commits = sorted({c[:12] + ("+dirty" if c.endswith("+dirty") else "")
                      for r in runs if (c := r.tags.get(GIT_TAG))})
    head = _git_head()
    parts = [f"runs at commit {', '.join(commits)}" if commits else "runs: no git commit recorded"]
    parts.append(f"report made at commit {head}" if head else "report code not in a git checkout")
    return "; ".join(parts)


def machine_text() -> str:
    """This machine: CPU model, logical cores and thread settings."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}. Latencies were measured "
        "by seofp bench (one thread) on the machine that ran it."
    )


def listening_context(items: Sequence[ListeningSummary]) -> list[dict[str, Any]]:
    return [{**s.__dict__, "plots": [(n, data_uri(p)) for n, p in s.plots]} for s in items]


def render_page(context: dict[str, Any]) -> str:
    """The page; Jinja2 autoescapes every value (run names, tags and claims are user text)."""
    import jinja2  # noqa: PLC0415

    from seofp_lab.report.template import PAGE  # noqa: PLC0415

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(PAGE).render(columns=[(c, LABELS[c]) for c in COLUMNS], **context)
