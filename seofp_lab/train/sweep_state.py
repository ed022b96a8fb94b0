"""What the MLflow store says about a sweep's points: the finished run of a point, every attempt,
whether an attempt's process still lives, and what a finished run still lacks. Shared by
``sweep_run`` (running points) and ``launch`` (launching and reporting them).
"""

from __future__ import annotations

from typing import Any

from seofp_lab import tracking
from seofp_lab.config import ExperimentConfig
from seofp_lab.tracking import process_alive
from seofp_lab.train.sweep import Point, SweepConfig


def _point_filter(sweep: SweepConfig, p: Point, cfg: ExperimentConfig) -> str:
    return (f"tags.`{tracking.TAG_SWEEP}` = '{sweep.name}' and "
            f"tags.`{tracking.TAG_SWEEP_POINT}` = '{p.key}' and "
            f"tags.`seofp.config_digest` = '{cfg.digest()}'")


def find_point_run(sweep: SweepConfig, p: Point, cfg: ExperimentConfig) -> Any | None:
    """The newest FINISHED run of point ``p`` with config ``cfg`` that the safety cap did not cut
    short, or None."""
    if p.stage == "control":
        from seofp_lab.train.control import find_control  # noqa: PLC0415

        found = find_control(cfg)
        return tracking.get_run(found) if found else None
    runs = tracking.find_runs(cfg.tracking.experiment,
                              _point_filter(sweep, p, cfg) + " and attributes.status = 'FINISHED'")
    runs = [r for r in runs if tracking.TAG_BUDGET_CUT not in r.data.tags]
    return runs[0] if runs else None


def attempt_runs(sweep: SweepConfig, p: Point, cfg: ExperimentConfig) -> list[Any]:
    """Every run of point ``p`` with config ``cfg`` in any status, newest first."""
    return tracking.find_runs(cfg.tracking.experiment, _point_filter(sweep, p, cfg))


def end_dead_attempts(sweep: SweepConfig, p: Point, cfg: ExperimentConfig) -> list[str]:
    """Close as KILLED the RUNNING runs of this point whose process is gone (a killed worker);
    returns their ids. Runs of a live process, or of another host, are left alone."""
    ended = []
    for r in attempt_runs(sweep, p, cfg):
        if r.info.status == "RUNNING" and process_alive(r) is False:
            c = tracking.client()
            c.set_tag(r.info.run_id, "seofp.killed_reason",
                      f"process {r.data.tags.get(tracking.TAG_PID)} on "
                      f"{r.data.tags.get(tracking.TAG_HOST)} ended without finishing the run; "
                      "closed by the next attempt of the point")
            c.set_terminated(r.info.run_id, "KILLED")
            ended.append(r.info.run_id)
    return ended


def missing_steps(sweep: SweepConfig, run: Any, compressed: bool) -> list[str]:
    """What a finished run still lacks: ``evaluate``, ``export``, ``bench`` (in that order)."""
    m = run.data.metrics
    out = []
    if sweep.evaluate and "test_utterances" not in m:  # logged by every evaluation
        out.append("evaluate")
    if "size_bytes" not in m:  # a compressed run logs it when training ends; fp32 runs export
        out.append("export")
    if sweep.bench and compressed and "speedup_vs_fp32" not in m:
        out.append("bench")
    return out


__all__ = ["attempt_runs", "end_dead_attempts", "find_point_run", "missing_steps",
           "process_alive"]
