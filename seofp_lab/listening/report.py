"""A study's analysis end to end: tables from the store, figures, and the MLflow record."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from seofp_lab.listening.analysis import StudyAnalysis, analyze
from seofp_lab.listening.blinding import serve_timings
from seofp_lab.listening.cheating import flag_listeners
from seofp_lab.listening.data import participants_frame, trials_frame
from seofp_lab.listening.decision import CLAIM_ARTIFACT, VERDICT_TAG
from seofp_lab.listening.listener import StudyService


def analyze_study(service: StudyService, boot: int = 1000, seed: int = 0,
                  plots_dir: Path | None = None) -> tuple[StudyAnalysis, list[Path]]:
    """Analyse everything in the store; figures go to ``plots_dir`` (default: the workspace)."""
    from seofp_lab.listening.plots import plot_all  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    name = service.study.name
    trials = trials_frame(service.store, name)
    result = analyze(trials, participants_frame(service.store, name), service.study, boot=boot,
                     seed=seed, flags=cheating_flags(trials, serve_timings(service.store, name)))
    out = plots_dir or workspace_path("studies", name, "analysis", "x").parent
    return result, plot_all(result, out, service.study.analysis.margin)


def cheating_flags(trials: pd.DataFrame, timings: pd.DataFrame | None = None) -> pd.DataFrame:
    """The cheating detector's flags (:func:`seofp_lab.listening.cheating.flag_listeners`), with
    each trial's clip duration from the server's serve record when there is one."""
    if timings is not None and len(timings) and "clip_ms" not in trials.columns:
        trials = trials.merge(timings[["listener", "trial_index", "clip_ms"]],
                              on=["listener", "trial_index"], how="left")
        if trials["clip_ms"].isna().any():  # trials never served: no speed check for them
            trials = trials.assign(clip_ms=trials["clip_ms"].fillna(0.0))
    return flag_listeners(trials)


def mlflow_metrics(result: StudyAnalysis) -> dict[str, float]:
    """The analysis' finite numbers as ``listening_*`` metrics."""
    return {"listening_" + re.sub(r"[^A-Za-z0-9_.\-]", "_", k): float(v)
            for k, v in result.metrics.items()
            if isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v)}


def log_analysis(result: StudyAnalysis, plots: list[Path]) -> None:
    """Log one analysis into the active MLflow run: metrics, the claim (tag
    :data:`~seofp_lab.listening.decision.VERDICT_TAG` and ``listening/claim.json``, read back
    by the report without deciding again), text, tables and plots."""
    from seofp_lab import tracking  # noqa: PLC0415

    tracking.log_metrics(mlflow_metrics(result))
    if result.decision is not None:
        tracking.set_tags({VERDICT_TAG: result.decision.label[:4000]})
        tracking.log_text(result.decision.to_json() + "\n", CLAIM_ARTIFACT)
    tracking.log_text(result.text + "\n", "listening/analysis.txt")
    tracking.log_text(result.claim + "\n", "listening/claim.txt")
    for name, table in result.tables.items():
        tracking.log_text(table.to_csv(index=False), f"listening/{name}.csv")
    for path in plots:
        tracking.log_artifact(path, "listening/plots")


def log_to_mlflow(service: StudyService, result: StudyAnalysis, plots: list[Path]) -> str:
    """One MLflow run per analysis, tagged with both compared runs; returns its id."""
    from seofp_lab import tracking  # noqa: PLC0415

    study = service.study
    frozen = service.manifest.data  # run ids as resolved when the stimuli were frozen
    tags = {tracking.TAG_STUDY: study.name,
            tracking.TAG_BASELINE: frozen["baseline"]["run"] or "",
            tracking.TAG_COMPRESSED: frozen["compressed"]["run"] or "",
            tracking.TAG_ROLE: "listening",
            "seofp.study_config_hash": service.config_hash,
            "seofp.study_manifest_hash": service.manifest.digest}
    params = {"margin": study.analysis.margin, "alpha": study.analysis.alpha,
              "max_flagged_fraction": study.analysis.max_flagged_fraction,
              "item_pool": len(service.manifest.items),
              "item_assignment": study.items.assignment,
              "confidence_levels": study.confidence_levels,
              "tests_per_listener": study.tests_per_listener, "seed": study.seed,
              "baseline_dir": str(study.baseline_dir or ""),
              "compressed_dir": str(study.compressed_dir or "")}
    with tracking.start_run(study.mlflow_experiment, f"study-{study.name}", tags,
                            {k: str(v) for k, v in params.items()}) as run_id:
        log_analysis(result, plots)
    return run_id
