"""Which MLflow runs a report compares: by experiment (newest run per variant) or by run id.

Everything goes through :mod:`seofp_lab.tracking`; the only MLflow objects touched here are the
``Run`` values its client returns, turned into plain :class:`RunRecord` values at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seofp_lab import tracking
from seofp_lab.config import DEMO_BASELINE, load_config
from seofp_lab.errors import TrackingError

ROLE_ORDER = {role: i for i, role in enumerate(tracking.ROLES)}


@dataclass(frozen=True)
class RunRecord:
    """One run as the report sees it: ids, tags, params and the latest value of each metric."""

    run_id: str
    name: str
    experiment: str
    status: str
    start_time: int  # ms since the epoch
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def role(self) -> str:
        return self.tags.get(tracking.TAG_ROLE, "")

    @property
    def fmt(self) -> str:
        return self.tags.get(tracking.TAG_FORMAT, "")

    @property
    def mode(self) -> str:
        """``paper`` or ``ste`` for SEOFP runs (the ``compression.mode`` param); else ''."""
        return self.params.get("compression.mode", "") if self.fmt not in ("", "fp32") else ""

    @property
    def baseline_run(self) -> str:
        return self.tags.get(tracking.TAG_BASELINE, "")

    @property
    def control_run(self) -> str:
        return self.tags.get(tracking.TAG_CONTROL, "")

    @property
    def variant(self) -> tuple[str, ...]:
        """What makes two runs the same experiment repeated: the newest of each is reported."""
        return (
            self.role,
            self.fmt,
            self.mode,
            self.tags.get(tracking.TAG_MODEL, ""),
            self.tags.get(tracking.TAG_CORPUS, ""),
        )

    @property
    def label(self) -> str:
        """Short legend text: the run name (a sweep's point key, e.g. ``blstm/s1e8``, for a
        sweep's run), the training mode when it is not the paper's."""
        name = self.tags.get(tracking.TAG_SWEEP_POINT) or self.name
        return (name + (f" ({self.mode})" if self.mode and self.mode != "paper" else "")
                + (" [DIVERGED]" if self.diverged else ""))

    @property
    def diverged(self) -> str:
        """Why the divergence guard flagged the run (``seofp.diverged``), or ''."""
        return self.tags.get(tracking.TAG_DIVERGED, "")


def record(run: Any, experiment: str = "") -> RunRecord:
    """A :class:`RunRecord` from an MLflow ``Run``."""
    info, data = run.info, run.data
    return RunRecord(
        run_id=info.run_id,
        name=info.run_name or info.run_id[:8],
        experiment=experiment,
        status=info.status,
        start_time=info.start_time or 0,
        artifact_uri=info.artifact_uri or "",
        metrics=dict(data.metrics),
        params=dict(data.params),
        tags=dict(data.tags),
    )


def experiment_names() -> list[str]:
    return sorted(e.name for e in tracking.client().search_experiments())


def default_experiment() -> str:
    """The demo's experiment, read from its config (one default, one place)."""
    return load_config(DEMO_BASELINE).tracking.experiment


def experiment_runs(name: str) -> list[RunRecord]:
    """Every run of experiment ``name``, newest first; TrackingError naming what exists."""
    exp = tracking.client().get_experiment_by_name(name)
    if exp is None:
        known = ", ".join(repr(n) for n in experiment_names()) or "none"
        raise TrackingError(
            f"Expected an MLflow experiment named {name!r} in "
            f"{tracking.tracking_uri()} but got none; experiments there: {known}"
        )
    return [record(r, name) for r in tracking.find_runs(name)]


def _all_runs(filter_string: str = "") -> list[RunRecord]:
    exps = {e.experiment_id: e.name for e in tracking.all_experiments()}
    runs = tracking.all_runs(filter_string) if exps else []
    return [record(r, exps.get(r.info.experiment_id, "")) for r in runs]


def resolve_run(run_id: str, known: list[RunRecord] | None = None) -> RunRecord:
    """A run by any reference :func:`seofp_lab.tracking.resolve_run_id` accepts (a full id or a
    unique prefix: the report prints 8-character ids), as a record (from ``known`` if there)."""
    full = tracking.resolve_run_id(run_id)
    for r in known or ():
        if r.run_id == full:
            return r
    run = tracking.get_run(full)
    return record(run, tracking.client().get_experiment(run.info.experiment_id).name)


def newest_per_variant(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Keep the newest run of each :attr:`RunRecord.variant`."""
    best: dict[tuple[str, ...], RunRecord] = {}
    for r in runs:
        if r.variant not in best or r.start_time > best[r.variant].start_time:
            best[r.variant] = r
    return list(best.values())


def report_order(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Baselines first, then seofp, pruned, seofp+pruned; by format, then oldest first."""
    return sorted(
        runs, key=lambda r: (ROLE_ORDER.get(r.role, len(ROLE_ORDER)), r.fmt, r.mode, r.start_time)
    )


@dataclass
class Selection:
    """The compared runs, where they came from, and what was left out (shown in the report)."""

    runs: list[RunRecord]
    source: str  # "experiment NAME" or "run ids"
    experiment: str | None
    skipped: list[str] = field(default_factory=list)
    baselines: dict[str, RunRecord] = field(default_factory=dict)  # run id -> its baseline run
    controls: dict[str, RunRecord] = field(default_factory=dict)  # run id -> its fp32 control
    name: str | None = None  # a sweep's name when the runs are a sweep's


def sweep_runs(name: str) -> tuple[list[RunRecord], list[str]]:
    """A sweep's finished runs (tag ``seofp.sweep``), the newest per point, plus the controls
    its variants name (``seofp.control_run``) when those were reused from outside the sweep.

    Returns:
        (runs, notes on the runs left out).
    """
    found = _all_runs(f"tags.`{tracking.TAG_SWEEP}` = '{name}'")
    if not found:
        known = sorted({r.tags.get(tracking.TAG_SWEEP, "") for r in
                        _all_runs(f"tags.`{tracking.TAG_SWEEP}` != ''")} - {""})
        raise TrackingError(f"Expected runs tagged {tracking.TAG_SWEEP}={name!r} in "
                            f"{tracking.tracking_uri()} but got none; sweeps there: "
                            f"{', '.join(known) or 'none'}")
    newest: dict[str, RunRecord] = {}
    skipped = []
    for r in found:  # newest first
        point = r.tags.get(tracking.TAG_SWEEP_POINT, r.run_id)
        if r.status != "FINISHED":
            skipped.append(f"{r.short_id} ({r.name}): status {r.status}")
        elif point in newest:
            skipped.append(f"{r.short_id} ({r.name}): an older run of point {point}")
        else:
            newest[point] = r
    runs = list(newest.values())
    ids = {r.run_id for r in runs}
    for r in list(runs):
        control = r.tags.get(tracking.TAG_CONTROL, "")
        if control and control not in ids:
            try:
                runs.append(record(tracking.get_run(control)))
                ids.add(control)
            except TrackingError:
                skipped.append(f"{r.short_id} ({r.name}): its control {control[:8]} is gone")
    return runs, skipped


def select_runs(
    experiment: str | None = None, run_ids: Sequence[str] = (), all_runs: bool = False,
    sweep: str | None = None,
) -> Selection:
    """The runs a report compares.

    Args:
        experiment: take its finished, role-tagged runs (default: the demo's experiment).
        run_ids: take exactly these runs (full ids or unique prefixes), in this order.
        all_runs: with ``experiment``, keep every run, not just the newest of each variant.
        sweep: take this sweep's runs (:func:`sweep_runs`).
    """
    if sum(bool(x) for x in (experiment, run_ids, sweep)) > 1:
        raise TrackingError("Expected one of an experiment, a sweep or run ids but got several")
    skipped: list[str] = []
    if sweep:
        runs, skipped = sweep_runs(sweep)
        sel = Selection(report_order(runs), f"sweep {sweep}", None, skipped, name=sweep)
    elif run_ids:
        everything = _all_runs()
        runs = [resolve_run(rid, everything) for rid in run_ids]
        sel = Selection(runs, "run ids", None)
    else:
        name = experiment or default_experiment()
        found = experiment_runs(name)
        runs = []
        for r in found:
            if r.status != "FINISHED":
                skipped.append(f"{r.short_id} ({r.name}): status {r.status}")
            elif r.role == "listening":
                continue  # shown in the listening section, not as a model
            elif not r.role:
                skipped.append(f"{r.short_id} ({r.name}): no {tracking.TAG_ROLE} tag")
            else:
                runs.append(r)
        if not runs:
            raise TrackingError(
                f"Expected finished runs tagged {tracking.TAG_ROLE} in "
                f"experiment {name!r} but got {len(found)} runs, none usable"
                + (": " + "; ".join(skipped) if skipped else "")
            )
        kept = runs if all_runs else newest_per_variant(runs)
        skipped += [
            f"{r.short_id} ({r.name}): an older run of the same variant"
            for r in runs
            if r not in kept
        ]
        sel = Selection(report_order(kept), f"experiment {name}", name, skipped)
    sel.baselines = _references(sel.runs, "baseline_run")
    sel.controls = _references(sel.runs, "control_run")
    return sel


def _references(runs: Sequence[RunRecord], which: str) -> dict[str, RunRecord]:
    """Each run's ``seofp.baseline_run`` or ``seofp.control_run`` (``which``), fetched even when
    it is not itself compared."""
    by_id = {r.run_id: r for r in runs}
    out: dict[str, RunRecord] = {}
    for r in runs:
        bid = getattr(r, which)
        if not bid:
            continue
        if bid not in by_id:
            try:
                by_id[bid] = record(tracking.get_run(bid))
            except TrackingError:
                continue  # reported as a missing delta, not an error: the run was deleted
        out[r.run_id] = by_id[bid]
    return out


def listening_runs(study: str | None, compared: Sequence[RunRecord]) -> list[RunRecord]:
    """Listening-analysis runs (``seofp study analyze``): of ``study``, else of compared runs.

    Newest run per study. With ``study`` given and none found, a StudyError names the studies
    that have an analysis in the store.
    """
    from seofp_lab.errors import StudyError  # noqa: PLC0415

    runs = [
        r for r in _all_runs(f"tags.`{tracking.TAG_ROLE}` = 'listening'") if r.status == "FINISHED"
    ]
    if study is not None:
        mine = [r for r in runs if r.tags.get(tracking.TAG_STUDY) == study]
        if not mine:
            known = sorted({r.tags.get(tracking.TAG_STUDY, "?") for r in runs})
            raise StudyError(
                f"Expected an MLflow run tagged {tracking.TAG_STUDY}={study!r} (logged by "
                f"`seofp study analyze`) in {tracking.tracking_uri()} but got none; studies "
                f"with an analysis there: {', '.join(known) or 'none'}"
            )
        return mine[:1]
    ids = {r.run_id for r in compared}
    newest: dict[str, RunRecord] = {}
    for r in runs:  # newest first
        pair = {r.tags.get(tracking.TAG_BASELINE), r.tags.get(tracking.TAG_COMPRESSED)}
        if pair & ids:
            newest.setdefault(r.tags.get(tracking.TAG_STUDY, r.run_id), r)
    return list(newest.values())
