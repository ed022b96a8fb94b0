"""Registered models: ``seofp register RUN`` and ``models:/NAME@ALIAS`` wherever a run is taken
(docs/mlflow.md#registry).

Registering a run logs its model to the run as a pyfunc (``seofp_lab/pyfunc.py``: the ``.seofp``
file the C engine runs and the checkpoint it came from), registers that as a new version of a
named model, and tags the version with the run's test-set metrics and its non-inferiority verdict
against its equal-budget control. An alias (``candidate``) is set only on a non-inferior version,
so ``models:/NAME@candidate`` always names a model that passed its comparison.
"""

from __future__ import annotations

import argparse
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seofp_lab import tracking
from seofp_lab.errors import TrackingError
from seofp_lab.tracking import model_version, model_version_run, parse_model_uri  # noqa: F401

MODEL_ARTIFACT = "enhancer"  # the logged pyfunc model's name in its run
CANDIDATE_ALIAS = "candidate"
NON_INFERIOR = "non-inferior"
TAG_VERDICT = "seofp.verdict"  # on the model version: the overall verdict against the control
TAG_VERDICT_PREFIX = "seofp.verdict."  # + metric: "+0.032 [+0.017, +0.049] non-inferior"
TAG_RUN = "seofp.run"  # the run the version was registered from
METRIC_TAG_PREFIX = "metric."  # + metric name: the run's value, as text
VERSION_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "size_bytes",
                   "compression_pct", "bits_per_weight", "speedup_vs_fp32", "latency_ms_p50")
VERDICT_METRICS = ("pesq_wb", "stoi", "si_sdr")  # the ones the demo's verdict table shows
RUN_TAGS = (tracking.TAG_ROLE, tracking.TAG_FORMAT, tracking.TAG_CORPUS, tracking.TAG_MODEL,
            tracking.TAG_CONTROL, tracking.TAG_BASELINE)


@dataclass
class Verdict:
    """A run's non-inferiority against its control: overall and per metric."""

    overall: str  # non-inferior, inferior, inconclusive, insufficient, no control, not compared
    per_metric: dict[str, str] = field(default_factory=dict)  # metric -> "delta [low, high] v"
    control: str | None = None


@dataclass
class Registered:
    name: str
    version: str
    run_id: str
    verdict: Verdict
    alias: str | None = None  # set when the verdict allowed it

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else \
            f"models:/{self.name}/{self.version}"


def verdict_of(run: Any) -> Verdict:
    """The run's non-inferiority against its control from its logged ``paired_*`` metrics (the
    numbers ``seofp evaluate``/``seofp compare`` logged), redone as the demo table does."""
    from seofp_lab.evaluate.paired import DEFAULT_MARGINS, MIN_CLUSTERS, verdict  # noqa: PLC0415

    tags, m = run.data.tags, run.data.metrics
    control = tags.get(tracking.TAG_CONTROL)
    if not control:
        return Verdict("no control")
    if tags.get(tracking.TAG_PAIRED_AGAINST) != control:
        return Verdict("not compared", control=control)
    min_units = int(m.get("paired_min_clusters", MIN_CLUSTERS))
    per, verdicts = {}, []
    for metric in VERDICT_METRICS:
        key = f"paired_{metric}"
        low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            continue
        units = m.get(f"{key}_n_units")
        v = verdict(low, high, m.get(f"{key}_margin", DEFAULT_MARGINS[metric]),
                    None if units is None else int(units), min_units)
        verdicts.append(v)
        delta = m.get(f"{key}_delta", float("nan"))
        per[metric] = f"{delta:+.4g} [{low:+.4g}, {high:+.4g}] {v}"
    if not verdicts:
        return Verdict("not compared", control=control)
    for worst in ("inferior", "insufficient", "inconclusive"):
        if worst in verdicts:
            return Verdict(worst, per, control)
    return Verdict(NON_INFERIOR, per, control)


def log_model(run_id: str) -> str:
    """Log the run's ``.seofp`` file and checkpoint as a pyfunc model of the run; its URI."""
    import mlflow  # noqa: PLC0415

    from seofp_lab import __version__  # noqa: PLC0415
    from seofp_lab import pyfunc as pyfunc_module  # noqa: PLC0415
    from seofp_lab.infer.export import export_run  # noqa: PLC0415
    from seofp_lab.pyfunc import CHECKPOINT_ARTIFACT, SEOFP_ARTIFACT  # noqa: PLC0415

    seofp_file = export_run(run_id)  # also logs size_bytes, as `seofp export` does
    ckpt = tracking.download_artifact(run_id, tracking.CHECKPOINT_ARTIFACT)
    deps = ["mlflow", "numpy", "scipy", "soundfile", "cffi", "pandas", "torch"]
    status = tracking.get_run(run_id).info.status
    if status != "FINISHED":
        raise TrackingError(f"Expected a FINISHED run to register but run {run_id} is {status}")
    # the pyfunc API logs into the active run: reopen the (finished) run for the call and close
    # it FINISHED again whatever happens, so registering never changes its status
    with tracking.resume_run(run_id), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints to the `predict`.*")  # any input
        mlflow.start_run(run_id=run_id)
        try:
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(Path(pyfunc_module.__file__).with_name("pyfunc_entry.py")),
                artifacts={SEOFP_ARTIFACT: str(seofp_file), CHECKPOINT_ARTIFACT: str(ckpt)},
                pip_requirements=[f"seofp-lab=={__version__}", *deps],
            )
        finally:
            mlflow.end_run("FINISHED")
    return info.model_uri


def default_name(run: Any) -> str:
    """``seofp-<config name>`` (the part of the run name after the last ``·``)."""
    label = (run.info.run_name or run.info.run_id[:8]).split("·")[-1].strip()
    return "seofp-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


def register(run_ref: str, name: str | None = None, alias: str | None = None) -> Registered:
    """Register the model of run ``run_ref`` (an id, prefix or ``models:/`` URI) as a new version
    of ``name``, tagged with its metrics and verdict; set ``alias`` only if it is non-inferior.
    """
    import mlflow  # noqa: PLC0415

    run_id = tracking.resolve_run_id(run_ref)
    run = tracking.get_run(run_id)
    if tracking.CHECKPOINT_ARTIFACT.split("/")[0] not in {
            a.path for a in tracking.client().list_artifacts(run_id)}:
        raise TrackingError(f"Expected run {run_id} to have a trained model "
                            f"({tracking.CHECKPOINT_ARTIFACT}) but it has none; register a "
                            "training run")
    name = name or default_name(run)
    model_uri = log_model(run_id)
    run = tracking.get_run(run_id)  # with the size_bytes the export logged
    v = verdict_of(run)
    tags = {TAG_RUN: run_id, TAG_VERDICT: v.overall}
    tags.update({TAG_VERDICT_PREFIX + k: text for k, text in v.per_metric.items()})
    tags.update({k: run.data.tags[k] for k in RUN_TAGS if k in run.data.tags})
    tags.update({METRIC_TAG_PREFIX + k: f"{run.data.metrics[k]:.6g}" for k in VERSION_METRICS
                 if k in run.data.metrics})
    tracking._mlflow()
    mv = mlflow.register_model(model_uri, name, tags=tags)
    c = tracking.client()
    if not mv.run_id:
        raise TrackingError(f"Expected the registered version {name} v{mv.version} to record run "
                            f"{run_id} but it records none")
    c.update_model_version(name, mv.version, description=(
        f"{run.info.run_name}: run {run_id}; verdict against its control "
        f"({v.control or 'none'}): {v.overall}"))
    out = Registered(name, str(mv.version), run_id, v)
    if alias and v.overall == NON_INFERIOR:
        c.set_registered_model_alias(name, alias, mv.version)
        out.alias = alias
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("register", help="register a run's model (pyfunc) in the MLflow registry")
    p.add_argument("run_id", metavar="RUN", help="a run id, a unique prefix or models:/NAME@ALIAS")
    p.add_argument("--name", default=None,
                   help="registered model name (default: seofp-<config name>)")
    p.add_argument("--alias", default=None,
                   help=f"set this alias (e.g. {CANDIDATE_ALIAS}) on the new version, only when "
                        "its verdict against its control is non-inferior")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r = register(args.run_id, args.name, args.alias)
    print(f"registered {r.name} version {r.version} from run {r.run_id}; verdict against its "
          f"control: {r.verdict.overall}")
    for metric, text in r.verdict.per_metric.items():
        print(f"  {metric}: {text}")
    if args.alias and r.alias is None:
        print(f"alias @{args.alias} not set: the verdict is {r.verdict.overall}, not "
              f"{NON_INFERIOR}")
    elif r.alias:
        print(f"alias @{r.alias} -> version {r.version}")
    print(f"serve it: mlflow models serve -m {r.uri} --env-manager local -h 127.0.0.1 -p 5001")
    return 0
