"""``build_report(...)``: select runs, gather tables, figures, audio and the listening analysis,
and write one self-contained HTML file plus the table as CSV next to it."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seofp_lab import __version__, tracking
from seofp_lab.errors import ReportError
from seofp_lab.fsutil import write_text_atomic
from seofp_lab.report import figures
from seofp_lab.report.audio import collect_examples
from seofp_lab.report.corpora import corpora_context, runs_by_corpora, shown
from seofp_lab.report.listening import ListeningSummary, summarize
from seofp_lab.report.paired import paired_blocks, paired_context
from seofp_lab.report.paper_render import paper_context, paper_markdown
from seofp_lab.report.paper_table import build_paper_rows, noisy_figures, paper_csv
from seofp_lab.report.render import (
    cells,
    code_text,
    data_uri,
    listening_context,
    machine_text,
    render_page,
)
from seofp_lab.report.runs import Selection, listening_runs, select_runs
from seofp_lab.report.table import build_rows, speed_rows, to_csv
from seofp_lab.workspace import workspace_dir


@dataclass(frozen=True)
class ReportResult:
    html: Path
    csv: Path
    runs: tuple[str, ...]  # compared run ids, in table order
    listening: tuple[str, ...]  # listening-analysis run ids shown
    corpora_csv: Path | None = None  # runs x corpora, when runs were scored on several corpora
    paper_csv: Path | None = None  # the "paper vs this reproduction" table, when shown
    paper_markdown: str = ""  # the same table as Markdown


def default_name(sel: Selection) -> str:
    """``<experiment>`` or ``runs-<id8>-<id8>...``, safe as a file name.

    >>> default_name(Selection([], "experiment seofp-demo", "seofp-demo"))
    'seofp-demo'
    """
    raw = sel.experiment or sel.name or "runs-" + "-".join(r.short_id for r in sel.runs[:4])
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


def check_out(out: Path | None) -> Path | None:
    """Refuse an output path that cannot be written, before any work is done.

    A folder (an existing one, or a path without suffix, created) means "put the default-named
    file here"; a file must end in ``.html``.
    """
    if out is None:
        return None
    out = Path(out).expanduser()
    is_folder = out.is_dir() or not out.suffix
    folder = out if is_folder else out.parent
    if not is_folder and out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(
            f"Expected --out to be a folder or a file ending in .html but got {str(out)!r}"
        )
    if not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(
                f"Expected a writable folder for the report but could not create "
                f"{str(folder)!r}: {exc.strerror}"
            ) from exc
    try:  # a real write: permission bits do not tell (root, read-only or virtual file systems)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ReportError(
            f"Expected a writable folder for the report but {str(folder)!r} is not writable "
            f"({exc.strerror})"
        ) from None
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder: never half a report on disk."""
    write_text_atomic(path, text)


def build_report(
    experiment: str | None = None,
    run_ids: Sequence[str] = (),
    study: str | None = None,
    out: Path | None = None,
    title: str | None = None,
    audio_items: int = 2,
    audio_max_bytes: int = 400_000,
    all_runs: bool = False,
    sweep: str | None = None,
) -> ReportResult:
    """Write the report and its CSV; returns their paths.

    Args:
        experiment: compare the newest run of each variant of this experiment (default: the
            demo's experiment) ...
        run_ids: ... or exactly these runs (full ids or unique prefixes).
        study: show this listening study's analysis (else any analysis of the compared runs).
        out: an ``.html`` path or a folder (default ``<workspace>/reports/<name>.html``).
        title: page title (default: "seofp-lab report: <experiment or runs>").
        audio_items: utterances per report with audio players (0: none).
        audio_max_bytes: cap per embedded WAV; longer clips keep their beginning.
        all_runs: with an experiment, keep every finished run, not just the newest per variant.
        sweep: ... or the runs of this sweep (tag seofp.sweep), the newest per point.
    """
    target = check_out(out)
    sel = select_runs(experiment, run_ids, all_runs=all_runs, sweep=sweep)
    listening = [summarize(r) for r in listening_runs(study, sel.runs)]
    name = default_name(sel)
    if target is None:
        target = workspace_dir() / "reports" / f"{name}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
    elif target.is_dir():  # check_out made it
        target = target / f"{name}.html"
    csv_path = target.with_suffix(".csv")
    rows = build_rows(sel)
    table_rows, notes = cells(rows)
    across = runs_by_corpora(sel.runs)
    corpora_csv = csv_path.with_suffix(".corpora.csv") if shown(across) else None
    paper_rows = build_paper_rows(sel.runs)
    paper_noisy = noisy_figures(sel.runs)
    paper_csv_path = target.with_name(target.stem + "_paper.csv") if paper_rows else None
    figs = []
    if (png := figures.per_snr(sel.runs)) is not None:
        figs.append(
            {
                "title": "Quality vs input SNR",
                "src": data_uri(png),
                "table": [],
                "caption": "Mean PESQ-wb and STOI per test-set SNR; one line per run, the "
                "unprocessed noisy input dashed.",
            }
        )
    if (png := figures.pareto(rows)) is not None:
        figs.append(
            {
                "title": "Size vs quality",
                "src": data_uri(png),
                "table": [],
                "caption": "Model size (exported .seofp bytes, log scale) against PESQ-wb; "
                "circled points form the Pareto front (no other run is both smaller "
                "and better), joined by a dotted line.",
            }
        )
    if (png := figures.speed(sel.runs)) is not None:
        figs.append(
            {
                "title": "Speed",
                "src": data_uri(png),
                "table": speed_rows(sel.runs),
                "caption": "Latency of one utterance per contender of seofp bench "
                "(PyTorch fp32 and dynamic int8, ONNX Runtime, the C engine's fp32, "
                "intadd and decode kernels); × torch fp32 and × ORT are the speed-ups "
                "over PyTorch fp32 and ONNX Runtime on the same model.",
            }
        )
    audio = collect_examples(sel.runs, audio_items, audio_max_bytes)
    kernels = sorted({r.kernel for r in rows if r.kernel})
    context = {
        "title": title or f"seofp-lab report: {name}",
        "source": sel.source,
        "n_runs": len(sel.runs),
        "store": tracking.tracking_uri(),
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "code": code_text(sel.runs),
        "machine": machine_text(),
        "skipped": sel.skipped,
        "diverged": [f"{r.short_id} ({r.name}): {r.diverged}" for r in sel.runs if r.diverged],
        "rows": table_rows,
        "footnotes": notes,
        "kernels": ", ".join(kernels),
        "csv_name": csv_path.name,
        "paired": paired_context(paired_blocks(sel.runs)),
        "corpora": corpora_context(across) if corpora_csv else None,
        "corpora_csv": corpora_csv.name if corpora_csv else "",
        "paper": paper_context(paper_rows, paper_noisy),
        "paper_csv_name": paper_csv_path.name if paper_csv_path else "",
        "figures": figs,
        "audio": audio,
        "audio_note": f"{len(audio)} utterance(s) from the runs' audio/ artifacts; noisy input "
        "and clean reference from the first run that has them, then each run's "
        "enhanced output.",
        "listening": listening_context(listening),
        "listening_note": _listening_note(study, listening),
    }
    write_atomic(target, render_page(context))
    write_atomic(csv_path, to_csv(rows))
    if corpora_csv is not None:
        write_atomic(corpora_csv, across.csv())
    if paper_csv_path is not None:
        write_atomic(paper_csv_path, paper_csv(paper_rows))
    return ReportResult(
        target, csv_path, tuple(r.run_id for r in sel.runs), tuple(s.run_id for s in listening),
        corpora_csv, paper_csv_path, paper_markdown(paper_rows, paper_noisy) if paper_rows else "",
    )


def _listening_note(study: str | None, found: list[ListeningSummary]) -> str:
    if found:
        return ""
    return (
        "No listening-study analysis of the compared runs is in the store. Run "
        "`seofp study analyze STUDY_DIR` after a study, then `seofp report --study NAME`."
    )
