"""The report's "Across corpora" block: runs x corpora (PESQ-wb, STOI and n per corpus), for runs
scored on more than one test set (``seofp evaluate RUN --corpus``, docs/corpora.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seofp_lab.evaluate.corpora import TABLE_METRICS, CorpusTable, corpus_table
from seofp_lab.report.runs import RunRecord
from seofp_lab.report.table import LABELS, fmt_value


def runs_by_corpora(runs: Sequence[RunRecord]) -> CorpusTable:
    return corpus_table([(r.label, r.run_id, r.metrics, r.tags) for r in runs])


def shown(table: CorpusTable) -> bool:
    """Worth a block: some run has scores on a corpus, and there is more than one corpus."""
    return len(table.corpora) > 1 and bool(table.cells)


def corpora_context(table: CorpusTable) -> dict[str, Any]:
    """Template data: corpus groups, metric columns, and display rows (noisy input first)."""

    def cells(v: dict[str, float | None] | None, own: bool = False) -> list[dict[str, Any]]:
        out = []
        for m in TABLE_METRICS:
            value = None if v is None else v[m]
            out.append({"text": fmt_value(m, value), "missing": value is None,
                        "own": own and value is not None})
        n = None if v is None else v.get("n")
        out.append({"text": "—" if n is None else f"{n:.0f}", "missing": n is None, "own": False})
        return out

    rows = []
    if table.noisy:
        rows.append({"kind": "noisy", "label": "noisy input", "run": "",
                     "cells": [c for k in table.corpora for c in cells(table.noisy.get(k))]})
    for label, rid in table.runs:
        rows.append({"kind": "run", "label": label, "run": rid[:8], "cells": [
            c for k in table.corpora
            for c in cells(table.cells.get((rid, k)), table.own.get(rid) == k)]})
    return {
        "corpora": table.corpora,
        "metrics": [LABELS[m] for m in TABLE_METRICS] + ["n"],
        "rows": rows,
        "notes": table.notes,
    }
