"""Display text of the "paper vs this reproduction" table: HTML cells and a Markdown copy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seofp_lab.report.paper_table import MODEL_LABELS, QUALITY, PaperRow

Q_LABELS = {"pesq_nb": "PESQ-nb", "pesq_wb": "PESQ-wb", "stoi": "STOI"}
NOT_PUBLISHED = "not published"


def pct(d: float) -> str:
    """A signed percent change with a true minus sign.

    >>> pct(-1.4925), pct(0.58), pct(0.0004)
    ('−1.49 %', '+0.58 %', '±0.00 %')
    """
    text = f"{abs(d):.2f}"
    sign = "±" if float(text) == 0 else ("+" if d > 0 else "−")
    return f"{sign}{text} %"


def num(key: str, v: float | None) -> str:
    """One value as the papers print it; an em dash when missing.

    >>> num("size_kb", 11242.0), num("bits", 9.0), num("bits", 5.5), num("speedup", 1.19)
    ('11,242', '9', '5.50', '1.19×')
    """
    if v is None:
        return "—"
    if key in ("size_kb", "file_kb"):
        return f"{v:,.0f}"
    if key in ("size_pct", "file_pct"):
        return f"{v:.2f} %"
    if key in ("bits", "bits_range"):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
    if key in ("speedup", "speedup_torch"):
        return f"{v:.2f}×"
    return f"{v:.3f}"


def _published(r: PaperRow, key: str) -> dict[str, str]:
    f = r.published.get(key)
    if f is None or f.value is None:
        source = f.source if f is not None else (r.published_note or NOT_PUBLISHED)
        return {"text": NOT_PUBLISHED if r.key != "control" else "—", "title": source,
                "delta": ""}
    delta = pct(r.delta_paper[key]) if key in r.delta_paper else ""
    return {"text": num(key, f.value), "title": f.source, "delta": delta}


def _reproduced(r: PaperRow, key: str) -> dict[str, str]:
    v = r.reproduced.get(key)
    deltas = []
    if key in r.delta_control:
        deltas.append(f"{pct(r.delta_control[key])} vs control")
    if key in r.delta_baseline:
        deltas.append(f"{pct(r.delta_baseline[key])} vs baseline")
    return {"text": num(key, v), "title": "", "delta": " · ".join(deltas)}


PUBLISHED_COLS = (("pesq", "PESQ"), ("stoi", "STOI"), ("size_kb", "KB"),
                  ("size_pct", "% of fp32"), ("bits", "bits / weight"), ("speedup", "speed-up"))
REPRODUCED_COLS = (*((q, Q_LABELS[q]) for q in QUALITY), ("size_kb", "KB (paper-style)"),
                   ("file_kb", ".seofp KB"), ("size_pct", "% of fp32"),
                   ("bits", "bits / weight"), ("speedup", "speed-up (C intadd / C fp32)"))


def paper_context(rows: Sequence[PaperRow], noisy: dict[str, Any]) -> dict[str, Any]:
    """What the template's paper section needs (empty rows: the section is left out)."""
    shown = []
    for r in rows:
        pub = [_published(r, k) for k, _ in PUBLISHED_COLS]
        if r.published_note and r.key != "control":
            pub = [{"text": NOT_PUBLISHED, "title": r.published_note, "delta": ""}] + [
                {"text": "", "title": "", "delta": ""} for _ in PUBLISHED_COLS[1:]]
        rep = [_reproduced(r, k) for k, _ in REPRODUCED_COLS]
        if r.run is not None and r.key == "s1e8" and "bits_range" in r.reproduced:
            rep[-2]["delta"] = f"{num('bits', r.reproduced['bits_range'])} after range reduction"
        shown.append({"model": MODEL_LABELS.get(r.model, r.model), "label": r.label,
                      "run": r.run.short_id if r.run else "", "published": pub,
                      "reproduced": rep if r.run is not None else None})
    pub_noisy = noisy["published"]
    return {
        "rows": shown,
        "published_cols": [label for _, label in PUBLISHED_COLS],
        "reproduced_cols": [label for _, label in REPRODUCED_COLS],
        "noisy_published": ", ".join(f"{k.upper()} {f.value:.3f}" for k, f in pub_noisy.items()),
        "noisy_reproduced": ", ".join(f"{Q_LABELS[k]} {v:.3f}"
                                      for k, v in noisy["reproduced"].items()) or "—",
    }


def paper_markdown(rows: Sequence[PaperRow], noisy: dict[str, Any]) -> str:
    """The table as Markdown (printed by ``seofp report``, pasted into docs)."""
    ctx = paper_context(rows, noisy)
    head = (["model", "row"] + [f"paper {c}" for c in ctx["published_cols"]]
            + [f"repro {c}" for c in ctx["reproduced_cols"]] + ["run"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(c: dict[str, str]) -> str:
        return c["text"] + (f" ({c['delta']})" if c["delta"] else "")

    for r in ctx["rows"]:
        rep = r["reproduced"] or [{"text": "no run", "delta": ""}] + [
            {"text": "", "delta": ""} for _ in ctx["reproduced_cols"][1:]]
        lines.append("| " + " | ".join([r["model"], r["label"], *map(cell, r["published"]),
                                        *map(cell, rep), r["run"]]) + " |")
    lines.append(f"\nnoisy input: paper {ctx['noisy_published']}; "
                 f"reproduction {ctx['noisy_reproduced']}")
    return "\n".join(lines)


__all__ = ["paper_context", "paper_markdown", "pct"]
