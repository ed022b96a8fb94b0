"""``evaluate(run_id)``: enhance the fixed test set with a run's model, score it in parallel
worker processes, log means, per-SNR variants and the noisy input's scores to the run."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
from rich.progress import Progress
from rich.table import Table

from seofp_lab import tracking
from seofp_lab.config import CorpusConfig, ExperimentConfig
from seofp_lab.console import console as make_console
from seofp_lab.evaluate.enhanced import enhanced_dir, write_manifest
from seofp_lab.evaluate.metrics import METRICS, check_metrics, provenance, score
from seofp_lab.fsutil import write_text_atomic


@dataclass
class EvalResult:
    run_id: str
    metrics: dict[str, float]  # plain names (pesq_wb, ...), whatever the corpus
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    corpus: str = ""  # the label of the scored test set (the run's own corpus name by default)
    own_corpus: bool = True  # False: logged under "<corpus>/..." names (evaluate/corpora.py)


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


def _score_item(task: dict[str, Any]) -> dict[str, Any]:
    clean, _ = sf.read(task["clean"], dtype="float32")
    out = {k: task[k] for k in ("id", "speaker", "noise", "snr", "utterance", "noise_clip")}
    for kind in ("noisy", "enhanced"):
        known = task.get(f"{kind}_scores")
        if known is not None:  # the noisy input's scores are the same for every run
            out.update({f"{kind}_{k}": v for k, v in known.items()})
            continue
        sig, _ = sf.read(task[kind], dtype="float32")
        for name, value in score(clean, sig, task["metrics"]).items():
            out[f"{kind}_{name}"] = value
    return out


def _noisy_cache(test_root: Path) -> Path:
    return test_root / "noisy_scores.json"


def _cached_noisy(test_root: Path, item_id: str, names: list[str]) -> dict[str, float] | None:
    path = _noisy_cache(test_root)
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(item_id)
    if entry is None or any(n not in entry for n in names):
        return None
    return {k: v for k, v in entry.items() if k.split("_error")[0] in names}


def _store_noisy(test_root: Path, rows: list[dict[str, Any]]) -> None:
    """Keep the noisy input's scores next to the (write-once) test set for later runs."""
    path = _noisy_cache(test_root)
    cache = json.loads(path.read_text()) if path.is_file() else {}
    for r in rows:
        cache.setdefault(r["id"], {}).update(
            {k.removeprefix("noisy_"): v for k, v in r.items() if k.startswith("noisy_")}
        )
    write_text_atomic(path, json.dumps(cache))


def score_parallel(
    tasks: list[dict[str, Any]], workers: int | None, label: str = "scoring"
) -> list[dict[str, Any]]:
    """Score (clean, noisy, enhanced) file triples in worker processes, with a progress bar."""
    workers = workers or os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with (
        Progress(transient=False) as bar,
        ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init
        ) as pool,
    ):
        job = bar.add_task(f"{label} ({workers} workers)", total=len(tasks))
        for fut in as_completed([pool.submit(_score_item, t) for t in tasks]):
            rows.append(fut.result())
            bar.advance(job)
    order = {t["id"]: i for i, t in enumerate(tasks)}
    return sorted(rows, key=lambda r: order[r["id"]])


def aggregate(rows: list[dict[str, Any]], names: list[str]) -> dict[str, float]:
    """Means over utterances: ``name``, ``noisy_name``, and per-SNR ``name_snr{v}`` variants."""
    out: dict[str, float] = {}
    snrs = sorted({float(r["snr"]) for r in rows})
    for name in names:
        for kind, noisy in (("enhanced", False), ("noisy", True)):
            vals = np.array([r[f"{kind}_{name}"] for r in rows], float)
            if np.isfinite(vals).any():
                out[tracking.metric_key(name, noisy=noisy)] = float(np.nanmean(vals))
            for snr in snrs:
                sel = np.array([r[f"{kind}_{name}"] for r in rows if float(r["snr"]) == snr], float)
                if np.isfinite(sel).any():
                    out[tracking.metric_key(name, snr=snr, noisy=noisy)] = float(np.nanmean(sel))
    return out


def _per_snr_figure(metrics: dict[str, float], names: list[str]) -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for noisy, label in ((True, "noisy"), (False, "enhanced")):
            prefix = ("noisy_" if noisy else "") + name + "_snr"
            pts = sorted(
                (float(k[len(prefix) :]), v) for k, v in metrics.items() if k.startswith(prefix)
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set_title(name)
        ax.set_xlabel("SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def _enhancer(
    run_id: str, engine: Literal["torch", "c"], kernel: str, ckpt: Path
):  # noqa: ANN202 - a callable wave -> wave
    if engine == "c":
        from seofp_lab.infer.engine import load as load_engine  # noqa: PLC0415
        from seofp_lab.infer.export import export_run  # noqa: PLC0415

        eng = load_engine(export_run(run_id), kernel=kernel)
        return eng.enhance
    import torch  # noqa: PLC0415

    from seofp_lab.train.checkpoint import load_checkpoint  # noqa: PLC0415

    model, _, _ = load_checkpoint(ckpt)

    def run(wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(wave)[None])[0].numpy()

    return run


def evaluate(
    run_id: str,
    engine: Literal["torch", "c"] | None = None,
    kernel: str | None = None,
    workers: int | None = None,
    max_utterances: int | None = None,
    metrics: list[str] | None = None,
    log: bool = True,
    corpus: CorpusConfig | None = None,
    corpus_name: str | None = None,
) -> EvalResult:
    """Enhance the run's test set (PyTorch or the C engine), score it, log it to the run.

    ``engine``, ``kernel``, ``workers``, ``max_utterances`` and ``metrics`` default to the run's
    own ``evaluation`` config. ``corpus`` scores another corpus's test set instead (a test-only
    corpus will do), logged under ``<corpus_name or corpus.name>/`` (evaluate/corpora.py)."""
    from seofp_lab.data.testset import prepare_test_set  # noqa: PLC0415
    from seofp_lab.evaluate.corpora import record, resolve_target  # noqa: PLC0415

    cfg = ExperimentConfig.model_validate(tracking.run_config_dict(run_id))
    target = resolve_target(run_id, cfg, corpus, corpus_name)
    names = list(metrics or cfg.evaluation.metrics)
    check_metrics(names)  # unknown names, DNSMOS without its packages: before any enhancing
    max_utterances = max_utterances or cfg.evaluation.max_utterances
    engine = engine or cfg.evaluation.engine
    kernel = kernel or cfg.evaluation.kernel
    test_set = prepare_test_set(target.config)
    items = test_set.items[:max_utterances] if max_utterances else test_set.items
    ckpt = tracking.download_artifact(run_id, tracking.CHECKPOINT_ARTIFACT)
    enhance = _enhancer(run_id, engine, kernel, ckpt)
    engine_name = "torch" if engine == "torch" else f"c-{kernel}"
    out_dir = enhanced_dir(run_id, engine_name, must_exist=False,
                           corpus=None if target.own else target.label)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks, manifest = [], []
    with Progress() as bar:
        job = bar.add_task(f"enhancing ({engine})", total=len(items))
        for item in items:
            noisy, _clean = test_set.load(item)
            enhanced = np.asarray(enhance(noisy), np.float32)
            if enhanced.shape != noisy.shape or not np.isfinite(enhanced).all():
                raise ValueError(
                    f"{item.id}: expected finite output of shape {noisy.shape} "
                    f"but got {enhanced.shape}"
                )
            path = out_dir / f"{item.id}.wav"
            sf.write(path, enhanced, 16000, subtype="FLOAT")
            row = {
                "id": item.id,
                "speaker": item.speaker,
                "noise": item.noise,
                "snr": item.snr,
                "utterance": item.utterance,  # the statistical units (docs/statistics.md)
                "noise_clip": item.noise_clip,
                "noisy": str(item.noisy_path),
                "clean": str(item.clean_path),
                "enhanced": str(path),
            }
            manifest.append(row)
            tasks.append(
                {
                    **row,
                    "metrics": names,
                    "noisy_scores": _cached_noisy(test_set.root, item.id, names),
                }
            )
            bar.advance(job)
    write_manifest(out_dir, manifest)
    rows = score_parallel(tasks, workers or cfg.evaluation.workers)
    _store_noisy(test_set.root, rows)
    failures = sum(1 for r in rows for k in r if k.endswith("_error"))
    result = aggregate(rows, names)
    if failures:
        make_console(stderr=True).print(
            f"[yellow]{failures} metric computations failed; see the "
            "*_error columns of the per-utterance CSV[/yellow]"
        )
    if log:
        prefix = "" if engine == "torch" else f"engine_{kernel}_"
        key = target.metric_prefix + prefix  # "voicebank_demand/engine_intadd_" or ""
        folder = target.artifact_dir  # "evaluation" or "evaluation/voicebank_demand"
        with tracking.resume_run(run_id):
            tracking.log_metrics({key + k: v for k, v in result.items()})
            tracking.set_tags({tracking.TAG_METRIC + n: d for n, d in provenance(names).items()})
            tracking.log_metrics(
                {
                    key + "test_utterances": float(len(rows)),
                    key + "metric_failures": float(failures),
                }
            )
            tracking.log_table(rows, f"{folder}/{prefix}per_utterance.csv")
            if any(np.isfinite(float(r["snr"])) for r in rows):  # else nothing to plot
                tracking.log_figure(_per_snr_figure(result, names),
                                    f"{folder}/{prefix}per_snr.png")
            record(run_id, target, len(rows), engine_name)
        # against the seofp.baseline_run's per-utterance scores; prints one line if impossible
        from seofp_lab.evaluate.paired_runs import after_evaluation  # noqa: PLC0415

        after_evaluation(run_id, rows, prefix, corpus=None if target.own else target.label)
    return EvalResult(run_id, result, rows, failures, target.label, target.own)


COLUMN_LABELS = {
    "pesq_wb": "PESQ-wb", "pesq_nb": "PESQ-nb", "stoi": "STOI", "estoi": "ESTOI",
    "si_sdr": "SI-SDR dB", "csig": "CSIG", "cbak": "CBAK", "covl": "COVL",
    "dnsmos_sig": "DNS-SIG", "dnsmos_bak": "DNS-BAK", "dnsmos_ovrl": "DNS-OVRL",
    "size_bytes": "size B", "compression_pct": "compr. %",
    "bits_per_weight": "bits/w", "speedup_vs_fp32": "C speed-up", "rtf": "RTF",
}


def results_table(
    results: dict[str, dict[str, float]], extra: list[str] | None = None, title: str = "Test set"
) -> _Printable:
    """A rich table: one row for the noisy input, one per named result; columns are metrics."""
    names = [n for n in METRICS if any(n in r for r in results.values())]
    extra = extra or []
    table = Table(title=title)
    table.add_column("")
    for n in names + extra:
        table.add_column(COLUMN_LABELS.get(n, n), justify="right", no_wrap=True)
    first = next(iter(results.values()))
    table.add_row("noisy input", *[_fmt(first.get(f"noisy_{n}"), n) for n in names],
                  *["" for _ in extra])
    for label, r in results.items():
        table.add_row(label, *[_fmt(r.get(n), n) for n in names],
                      *[_fmt(r.get(e), e) for e in extra])
    return _Printable(table)


def _fmt(v: float | None, name: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if name == "size_bytes":
        return f"{v:,.0f}"
    if name in ("compression_pct", "si_sdr"):
        return f"{v:.2f}"
    if name in ("speedup_vs_fp32", "bits_per_weight"):
        return f"{v:.2f}"
    return f"{v:.3f}"


class _Printable:
    def __init__(self, table: Table) -> None:
        self.table = table

    def print(self) -> None:
        make_console().print(self.table)


__all__ = ["EvalResult", "aggregate", "evaluate", "results_table", "score_parallel"]
