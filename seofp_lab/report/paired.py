"""The "vs baseline (paired)" block: per run with ``paired_*`` metrics (logged by evaluation or
``seofp compare``), the mean per-mixture difference with its clustered CI, the non-inferiority
verdict per quality metric and the counts behind the CI (mixtures, utterances, talkers, noise
recordings, and the unit resampled). Runs without them are simply not listed; runs logged before
units existed show "unit unknown" (their CIs treated every mixture as independent)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from seofp_lab import tracking
from seofp_lab.evaluate.paired import DEFAULT_MARGINS, MIN_CLUSTERS, UNIT_NAMES, verdict
from seofp_lab.report.runs import RunRecord
from seofp_lab.report.table import LABELS, QUALITY


@dataclass(frozen=True)
class PairedCell:
    """One metric of one run: Δ = run − its paired reference, CI, Holm-adjusted Wilcoxon p."""

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    p: float | None
    margin: float
    margin_logged: bool  # False: the run logged no margin, the default one is assumed
    verdict: str
    n_units: int | None  # units behind the CI; None: not logged (scores before units existed)

    @property
    def text(self) -> str:
        return f"{_signed(self.metric, self.delta)} [{_signed(self.metric, self.ci_low)}, " \
               f"{_signed(self.metric, self.ci_high)}]"


@dataclass(frozen=True)
class PairedBlock:
    run_id: str
    label: str
    against: str  # run A's id ('' when unknown)
    cells: tuple[PairedCell, ...]
    relation: str  # "control", "baseline" or "" (a reference named by seofp compare A B)
    unit: str  # seofp.paired_unit (seofp.baseline_paired_unit): utterance, speaker, mixture; ''
    counts: str  # "82 mixtures · 41 utterances · 2 talkers · 3 noise recordings"; '' when none


def _signed(metric: str, v: float) -> str:
    """Sign, true minus, 2 decimals for SI-SDR, 3 for PESQ, 4 for (E)STOI.

    >>> _signed("stoi", -0.00123), _signed("si_sdr", 0.333)
    ('−0.0012', '+0.33')
    """
    digits = {"si_sdr": 2, "stoi": 4, "estoi": 4}.get(metric, 3)
    text = f"{abs(v):.{digits}f}"
    return ("±" if float(text) == 0 else "+" if v > 0 else "−") + text


def _cell(run: RunRecord, metric: str, prefix: str = "") -> PairedCell | None:
    key = f"{prefix}paired_{metric}_"
    vals = {k: run.metrics.get(key + k)
            for k in ("delta", "ci_low", "ci_high", "p", "margin", "n_units")}
    if any(vals[k] is None or not math.isfinite(vals[k]) for k in ("delta", "ci_low", "ci_high")):
        return None
    logged = vals["margin"] is not None and math.isfinite(vals["margin"]) and vals["margin"] > 0
    margin = float(vals["margin"]) if logged else DEFAULT_MARGINS[metric]
    n_units = None if vals["n_units"] is None else int(vals["n_units"])
    least = run.metrics.get(f"{prefix}paired_min_clusters", MIN_CLUSTERS)
    return PairedCell(metric, float(vals["delta"]), float(vals["ci_low"]),
                      float(vals["ci_high"]), vals["p"], margin, logged,
                      verdict(float(vals["ci_low"]), float(vals["ci_high"]), margin, n_units,
                              int(least)), n_units)


def _counts(run: RunRecord, prefix: str = "") -> str:
    """The logged test-item counts, ``·``-separated; '' when the run logged none."""
    parts = [f"{int(v)} {name}" for key, name in (
        ("n_mixtures", "mixtures"), ("n_utterances", "utterances"), ("n_talkers", "talkers"),
        ("n_noise_clips", "noise recordings"))
        if (v := run.metrics.get(f"{prefix}paired_{key}")) is not None and math.isfinite(v)]
    return " · ".join(parts)


def paired_blocks(runs: Sequence[RunRecord]) -> list[PairedBlock]:
    """Per run, one block per reference with at least one complete ``paired_<metric>_*``
    triple: against its equal-budget control (``paired_*``, when it has one), then against its
    baseline (``baseline_paired_*``; ``paired_*`` for a run without a control)."""
    out = []
    for r in runs:
        tags = r.tags
        control, baseline = r.control_run, r.baseline_run
        against = tags.get(tracking.TAG_PAIRED_AGAINST) or control or baseline
        first = ("control" if control and against == control
                 else "baseline" if baseline and against == baseline else "")
        refs = [("", against, first, tags.get(tracking.TAG_PAIRED_UNIT, ""))]
        if control:  # shown even when the control's comparison is missing (not evaluated)
            refs.append(("baseline_", tags.get(tracking.TAG_BASELINE_PAIRED_AGAINST) or baseline,
                         "baseline", tags.get(tracking.TAG_BASELINE_PAIRED_UNIT)
                         or tags.get(tracking.TAG_PAIRED_UNIT, "")))  # logged before its own tag
        for prefix, ref, relation, unit in refs:
            cells = tuple(c for m in QUALITY if (c := _cell(r, m, prefix)) is not None)
            if cells:
                out.append(PairedBlock(r.run_id, r.label, ref, cells, relation, unit,
                                       _counts(r, prefix)))
    return out


def paired_context(blocks: Sequence[PairedBlock]) -> dict[str, object]:
    """What the template shows: metric columns present in any block, and display rows."""
    metrics = [m for m in QUALITY if any(c.metric == m for b in blocks for c in b.cells)]
    rows = []
    for b in blocks:
        by = {c.metric: c for c in b.cells}
        unit = (f"CI over {UNIT_NAMES[b.unit]}" if b.unit in UNIT_NAMES
                else "unit unknown: every mixture taken as independent")
        rows.append({
            "label": b.label, "run": b.run_id[:8],
            "against": (f"{b.relation} " if b.relation else "") + (b.against[:8] or "—"),
            "units": f"{b.counts} · {unit}" if b.counts else unit,
            "cells": [None if m not in by else {
                "text": by[m].text, "verdict": by[m].verdict,
                "title": f"margin {by[m].margin:g}" + ("" if by[m].margin_logged else
                                                        " (default; none logged)")
                + (f", Holm-adjusted Wilcoxon p = {by[m].p:.2g}" if by[m].p is not None else "")
                + (f", {by[m].n_units} units" if by[m].n_units is not None else ""),
            } for m in metrics],
        })
    return {"columns": [(m, LABELS[m]) for m in metrics], "rows": rows,
            "min_clusters": MIN_CLUSTERS}


__all__ = ["PairedBlock", "PairedCell", "paired_blocks", "paired_context"]
