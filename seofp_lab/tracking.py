"""The MLflow schema, the only module that imports mlflow: experiments, tags, metrics, artifacts.

The store is ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<workspace>/mlflow.db`` with
artifacts under ``<workspace>/mlartifacts``. A team points the variable at an MLflow server and
nothing else changes.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import io
import json
import os
import re
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seofp_lab.errors import TrackingError
from seofp_lab.workspace import workspace_dir

METRICS = (
    "pesq_wb",
    "pesq_nb",
    "stoi",
    "estoi",
    "si_sdr",
    "csig",
    "cbak",
    "covl",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
    "size_bytes",
    "compression_pct",
    "bits_per_weight",
    "sparsity",
    "latency_ms_p50",
    "latency_ms_p90",
    "rtf",
    "speedup_vs_fp32",
    "speedup_vs_ort",
)
ROLES = (
    "baseline",
    "control",
    "seofp",
    "pruned",
    "seofp+pruned",
    "listening",
)  # listening: a study's analysis
KERNELS = ("intadd", "decode", "fp32")
TAG_ROLE = "seofp.role"
TAG_BASELINE = "seofp.baseline_run"
TAG_CONTROL = "seofp.control_run"  # a compressed run's equal-budget fp32 control (role control)
TAG_BUDGET = "seofp.budget"  # "E epochs x S steps" a run was given
TAG_BUDGET_CUT = "seofp.budget_cut"  # set only when the max_minutes safety cap ended a run early
TAG_CORPUS = "seofp.corpus"
TAG_MODEL = "seofp.model"
TAG_FORMAT = "seofp.format"
TAG_KERNEL = "seofp.kernel"
TAG_SWEEP = "seofp.sweep"  # runs of `seofp sweep`: the sweep's name
TAG_HOST = "seofp.host"  # the machine and process that opened a run: a RUNNING run whose process
TAG_PID = "seofp.pid"  # is gone was killed (seofp sweep --status, the next attempt closes it)
ENV_PARENT_RUN = "SEOFP_PARENT_RUN"  # set by a sweep's launcher: new runs become its children
TAG_SWEEP_POINT = "seofp.sweep_point"  # its point key, e.g. "blstm/s1e8"
TAG_SWEEP_STAGE = "seofp.sweep_stage"  # grid | baseline | control | variant
TAG_STUDY = "seofp.study"  # listening-analysis runs: the study name
TAG_COMPRESSED = "seofp.compressed_run"  # listening-analysis runs: the compressed run compared
TAG_PAIRED_AGAINST = "seofp.paired_against"  # run A of the paired_* metrics logged to run B
TAG_EVAL_CORPORA = "seofp.eval_corpora"  # JSON {corpus label: test-set hash} a run was scored on
CORPORA_ARTIFACT = "evaluation/corpora.json"  # per label: test set, root, items, artifacts
CORPUS_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # safe in metric and file names
TAG_PAIRED_UNIT = "seofp.paired_unit"  # what paired_* resampled: utterance, speaker, mixture
TAG_BASELINE_PAIRED_AGAINST = "seofp.baseline_paired_against"  # run A of baseline_paired_*
TAG_BASELINE_PAIRED_UNIT = "seofp.baseline_paired_unit"  # what baseline_paired_* resampled
TAG_METRIC = "seofp.metric."  # + a metric name: the package, version and mode that scored it
TAG_DIVERGED = "seofp.diverged"  # why the divergence guard flagged a run (docs/runs.md)
TAG_RESUMED = "seofp.resumed"  # `seofp train --resume`: the epochs it continued from
# MLflow 3's experiment kind: "custom_model_development" makes the UI open on the runs table,
# not the GenAI overview (traces, token usage); the value the installed UI reads
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
CONFIG_ARTIFACT = "config.yaml"
CHECKPOINT_ARTIFACT = "checkpoint/model.pt"


def metric_key(
    name: str, *, snr: float | None = None, noisy: bool = False, corpus: str | None = None
) -> str:
    """``metric_key("stoi", snr=7.5, noisy=True)`` -> ``"noisy_stoi_snr7.5"``.

    ``corpus`` names a test set other than the run's own (``seofp evaluate RUN --corpus``); its
    scores go under ``<corpus>/``.

    >>> metric_key("pesq_wb", snr=5.0), metric_key("pesq_wb", noisy=True, corpus="vbd")
    ('pesq_wb_snr5', 'vbd/noisy_pesq_wb')
    """
    if name not in METRICS:
        raise ValueError(f"Expected one of tracking.METRICS but got {name!r}")
    suffix = "" if snr is None else f"_snr{float(snr):g}"
    return corpus_prefix(corpus) + ("noisy_" if noisy else "") + name + suffix


def check_corpus_label(label: str) -> str:
    """``label`` if it can name a corpus in metric keys and artifact folders, else ValueError."""
    if not CORPUS_LABEL.match(label):
        raise ValueError(
            f"Expected a corpus label of letters, digits, '_', '-' and '.' (at most 64, starting "
            f"with a letter or digit) but got {label!r}"
        )
    return label


def corpus_prefix(corpus: str | None) -> str:
    """``""`` for the run's own test set, else ``"<corpus>/"`` (MLflow accepts ``/`` in keys).

    >>> corpus_prefix(None), corpus_prefix("voicebank_demand")
    ('', 'voicebank_demand/')
    """
    return "" if corpus is None else check_corpus_label(corpus) + "/"


def paired_tags(prefix: str = "") -> tuple[str, str] | None:
    """The tags naming run A and the unit of the ``<prefix>paired_*`` metrics, for the two sets
    the report reads (``""``: against the control, or the only reference; ``"baseline_"``); None
    for any other prefix (another corpus, the C engine: their ``paired.csv`` names both).

    >>> paired_tags("baseline_"), paired_tags("engine_intadd_")
    (('seofp.baseline_paired_against', 'seofp.baseline_paired_unit'), None)
    """
    return {"": (TAG_PAIRED_AGAINST, TAG_PAIRED_UNIT),
            "baseline_": (TAG_BASELINE_PAIRED_AGAINST, TAG_BASELINE_PAIRED_UNIT)}.get(prefix)


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the workspace's SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{workspace_dir() / 'mlflow.db'}"


def artifact_root() -> Path | None:
    """Where a local store keeps artifacts; None when a server decides."""
    uri = tracking_uri()
    if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        return workspace_dir() / "mlartifacts"
    return None


_PREPARED: set[str] = set()  # store URIs this process has created or re-rooted


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _reroot(db: Path, root: Path) -> int:
    """Point a copied or moved workspace's store at its own artifacts; returns rows changed.

    A local store records absolute ``file://`` artifact locations. When they name another
    workspace (the one this store was copied or moved from), every experiment of ours
    (``<root>/<experiment name>``) and its runs are rewritten to this workspace's root, so
    nothing reads from or writes into the original (docs/runs.md#a-movable-workspace)."""
    changed = 0
    con = sqlite3.connect(db, timeout=60)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "experiments" not in tables:
            return 0
        for exp_id, name, old in con.execute(
            "SELECT experiment_id, name, artifact_location FROM experiments"
        ).fetchall():
            want = (root / name).as_uri()
            tail = want[len(root.as_uri()):]  # "/<quoted name>"
            if not old or old == want or not old.startswith("file://") or not old.endswith(tail):
                continue
            with con:
                con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                            (want, exp_id))
                if "runs" in tables:
                    changed += con.execute(
                        "UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                        "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                        (want, len(old) + 1, exp_id, len(old), old)).rowcount
            changed += 1
    finally:
        con.close()
    return changed


def _prepare_store(uri: str) -> None:
    """Once per process and store: create a new SQLite store under a file lock (several
    processes starting at once on an empty workspace raced on the schema), and re-root a copied
    or moved workspace's artifact locations (:func:`_reroot`)."""
    if uri in _PREPARED:
        return
    db = _sqlite_file(uri)
    if db is not None:
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        from seofp_lab.fsutil import lock_for  # noqa: PLC0415

        with lock_for(db):
            root = artifact_root()
            if (db.is_file() and root is not None and db == workspace_dir() / "mlflow.db"
                    and _reroot(db, root)):
                # MLflow keeps one artifact repository per run id for the process: a run seen
                # before under its old location must be looked up again
                from mlflow.tracking._tracking_service import utils  # noqa: PLC0415

                getattr(utils, "_artifact_repos_cache", {}).clear()
            MlflowClient(uri).search_experiments(max_results=1)  # creates or upgrades the schema
    _PREPARED.add(uri)


def _mlflow():  # noqa: ANN202 - the module
    import logging  # noqa: PLC0415

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our bars are enough
    import mlflow  # noqa: PLC0415

    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri()
    _prepare_store(uri)
    mlflow.set_tracking_uri(uri)
    return mlflow


def client():  # noqa: ANN201 - MlflowClient
    """An ``MlflowClient`` on the configured store."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    _mlflow()
    return MlflowClient(tracking_uri())


def experiment_id(name: str) -> str:
    """The id of experiment ``name``, created (with the workspace artifact root) if missing."""
    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        if exp.tags.get(TAG_EXPERIMENT_KIND) is None:  # made before the tag existed, or by hand
            client().set_experiment_tag(exp.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
        return exp.experiment_id
    from seofp_lab.ui_view import TAG_VIEW, view_state  # noqa: PLC0415

    root = artifact_root()
    location = (root / name).as_uri() if root is not None else None
    try:
        return mlflow.create_experiment(name, artifact_location=location,  # the UI: docs/mlflow.md
                                        tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND,
                                              TAG_VIEW: view_state()})
    except Exception:  # another process created it a moment ago: use theirs
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def code_commit() -> str | None:
    """The git commit of this checkout (``+dirty`` with uncommitted changes), None outside git."""
    import subprocess  # noqa: PLC0415

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


@contextlib.contextmanager
def start_run(
    experiment: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Open a new run and yield its id; the command that opens it is the only one that sets its
    status: FINISHED when the block ends, KILLED on a signal (``signals.INTERRUPTS``), FAILED on
    any other error (docs/runs.md#statuses)."""
    mlflow = _mlflow()
    run = mlflow.start_run(experiment_id=experiment_id(experiment), run_name=run_name)
    with _owned(mlflow):
        commit = code_commit()
        if commit:  # which code made the run (reports show it); MLflow's own tag name
            mlflow.set_tag("mlflow.source.git.commit", commit)
        tags = {**(tags or {}), TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}
        if os.environ.get(ENV_PARENT_RUN):  # a sweep point: nested under the sweep's parent run
            tags["mlflow.parentRunId"] = os.environ[ENV_PARENT_RUN]
        mlflow.set_tags(tags)
        if params:
            items = list(params.items())
            for i in range(0, len(items), 90):  # the store caps one batch
                mlflow.log_params({k: str(v)[:6000] for k, v in items[i : i + 90]})
        yield run.info.run_id


@contextlib.contextmanager
def _owned(mlflow: Any) -> Iterator[None]:
    """End the active run when the block ends: FINISHED, KILLED on a signal
    (``signals.INTERRUPTS``), FAILED on any other error; the one place a command that owns a
    run sets its status (docs/runs.md#statuses)."""
    from seofp_lab.signals import INTERRUPTS  # noqa: PLC0415

    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except INTERRUPTS:
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status)


@contextlib.contextmanager
def continue_run(run_id: str) -> Iterator[str]:
    """Reopen a run its training left unfinished (``seofp train --resume``): this command now
    owns it and ends it FINISHED, KILLED or FAILED as :func:`start_run` does."""

    get_run(run_id)
    mlflow = _mlflow()
    mlflow.start_run(run_id=run_id)
    with _owned(mlflow):  # this process now holds the run (a dead earlier pid no longer counts)
        mlflow.set_tags({TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())})
        yield run_id


class _Staged:
    """What a :func:`resume_run` block logs: metrics and tags wait here for one batch."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.metrics: dict[tuple[str, int], tuple[float, int]] = {}
        self.tags: dict[str, str] = {}

    def flush(self) -> None:
        from mlflow.entities import Metric, RunTag  # noqa: PLC0415

        metrics = [Metric(k, v, ts, step) for (k, step), (v, ts) in self.metrics.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()]
        c = client()
        while metrics or tags:  # the store takes 1000 metrics and 100 tags per batch
            c.log_batch(self.run_id, metrics=metrics[:900], tags=tags[:100])
            metrics, tags = metrics[900:], tags[100:]


_RESUMED: contextvars.ContextVar[_Staged | None] = contextvars.ContextVar("resumed", default=None)


@contextlib.contextmanager
def resume_run(run_id: str) -> Iterator[str]:
    """Log more to an existing run (evaluation, export, benchmarks) without touching its status.

    Artifacts are written as they come; metrics and tags are staged and written in one batch
    when the block ends without an error, so a command killed half-way leaves the run's
    numbers as they were (docs/runs.md#statuses). The status stays the one its owner set.
    """
    get_run(run_id)
    staged = _Staged(run_id)
    token = _RESUMED.set(staged)
    try:
        yield run_id
    finally:
        _RESUMED.reset(token)
    staged.flush()


_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/3`` -> (NAME, None, "3").

    >>> parse_model_uri("models:/seofp-demo@candidate")
    ('seofp-demo', 'candidate', None)
    """
    m = _MODEL_URI.match(uri)
    if m is None:
        raise TrackingError(f"Expected a registered model as models:/NAME@ALIAS or "
                            f"models:/NAME/VERSION but got {uri!r}")
    return m["name"], m["alias"], m["version"]


def model_version(uri: str):  # noqa: ANN201 - mlflow ModelVersion
    """The model version ``uri`` names; TrackingError naming what exists when it does not."""
    name, alias, version = parse_model_uri(uri)
    c = client()
    try:
        model = c.get_registered_model(name)
    except Exception:  # mlflow raises MlflowException(RESOURCE_DOES_NOT_EXIST)
        names = [m.name for m in c.search_registered_models(max_results=20)]
        raise TrackingError(f"Expected a registered model {name!r} in {tracking_uri()} "
                            f"but found none; registered models: {', '.join(names) or 'none'} "
                            "(seofp register RUN --name NAME makes one)") from None
    if alias is not None:
        if alias not in model.aliases:
            have = ", ".join(f"@{a} -> v{v}" for a, v in sorted(model.aliases.items()))
            raise TrackingError(f"Expected alias @{alias} on registered model {name!r} but it "
                                f"has {have or 'no aliases'}")
        return c.get_model_version_by_alias(name, alias)
    try:
        return c.get_model_version(name, version)
    except Exception:
        raise TrackingError(f"Expected version {version} of registered model {name!r} but it "
                            f"has no such version") from None


def model_version_run(uri: str) -> str:
    """The run id behind ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    mv = model_version(uri)
    if not mv.run_id:
        raise TrackingError(f"Expected {uri} (version {mv.version}) to come from a tracked run "
                            "but it records none")
    return mv.run_id


def resolve_run_id(run_id: str) -> str:
    """The full id of a run given its id, a unique prefix of it (reports print 8 characters), or
    a registered model version, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (its run).

    Raises:
        TrackingError: no run, or several runs, match; the message names the store and lists the
            newest runs.
    """
    if run_id.startswith("models:/"):  # every command that takes a run takes a model version
        return model_version_run(run_id)
    with contextlib.suppress(Exception):  # a full id: one lookup
        return client().get_run(run_id).info.run_id
    runs = all_runs()
    hits = [r.info.run_id for r in runs if run_id and r.info.run_id.startswith(run_id)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise TrackingError(f"Expected a run id prefix matching one run but {run_id!r} matches "
                            f"{len(hits)}: {', '.join(h[:12] for h in hits[:5])}")
    newest = ", ".join(f"{r.info.run_id[:8]} ({r.info.run_name})" for r in runs[:8])
    raise TrackingError(f"Expected an MLflow run id in {tracking_uri()} but found no run "
                        f"{run_id!r}; newest runs there: {newest or 'none'}")


def get_run(run_id: str):  # noqa: ANN201 - mlflow Run
    """The run, or a TrackingError naming the store when it does not exist."""
    try:
        return client().get_run(run_id)
    except Exception as exc:  # mlflow raises MlflowException with a long text
        raise TrackingError(
            f"Expected an MLflow run id in {tracking_uri()} but found no run {run_id!r}"
        ) from exc


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log finite metrics to the active run (NaN/inf are refused: they hide a failure)."""
    bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
    if bad:
        raise ValueError(f"Expected finite metric values but got {bad}")
    staged = _RESUMED.get()
    if staged is not None:
        now = int(time.time() * 1000)
        staged.metrics.update({(k, step or 0): (float(v), now) for k, v in metrics.items()})
        return
    _mlflow().log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, str]) -> None:
    staged = _RESUMED.get()
    if staged is not None:
        staged.tags.update({k: str(v) for k, v in tags.items()})
        return
    _mlflow().set_tags(dict(tags))


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    staged = _RESUMED.get()
    if staged is not None:
        client().log_artifact(staged.run_id, str(path), artifact_path)
        return
    _mlflow().log_artifact(str(path), artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    staged = _RESUMED.get()
    if staged is not None:
        client().log_text(staged.run_id, text, artifact_file)
        return
    _mlflow().log_text(text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """A matplotlib figure as a PNG artifact (closed afterwards)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    staged = _RESUMED.get()
    if staged is not None:
        client().log_figure(staged.run_id, figure, artifact_file)
    else:
        _mlflow().log_figure(figure, artifact_file)
    plt.close(figure)


def log_table(rows: list[dict[str, Any]], artifact_file: str) -> None:
    """Rows as a CSV artifact (readable in the UI and by pandas)."""
    import pandas as pd  # noqa: PLC0415

    log_text(pd.DataFrame(rows).to_csv(index=False), artifact_file)


def _wav_bytes(wave: np.ndarray, fs: int) -> bytes:
    import soundfile as sf  # noqa: PLC0415

    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1.0, 1.0).astype(np.float32), fs, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def log_audio_examples(
    examples: list[dict[str, Any]], fs: int = 16000, artifact_dir: str = "audio"
) -> None:
    """Each example: ``{"id": str, "noisy": wave, "enhanced": wave, "clean": wave, **info}``.

    Writes one WAV per signal and an ``examples.html`` page with players (the UI previews it).
    """
    mlflow = _mlflow()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ex in examples:
            cells = []
            for kind in ("noisy", "enhanced", "clean"):
                data = _wav_bytes(np.asarray(ex[kind]), fs)
                name = f"{ex['id']}_{kind}.wav"
                Path(tmp, name).write_bytes(data)
                src = "data:audio/wav;base64," + base64.b64encode(data).decode()
                cells.append(f"<td><audio controls preload='none' src='{src}'></audio></td>")
            info = ", ".join(
                f"{k}={v}" for k, v in ex.items() if k not in ("id", "noisy", "enhanced", "clean")
            )
            rows.append(f"<tr><td>{ex['id']}<br><small>{info}</small></td>{''.join(cells)}</tr>")
        page = (
            "<html><head><style>audio{width:210px}td,th{padding:2px 6px;font-family:sans-serif}"
            "</style></head><body><table><tr><th>utterance</th><th>noisy</th><th>enhanced</th>"
            f"<th>clean</th></tr>{''.join(rows)}</table></body></html>"
        )
        Path(tmp, "examples.html").write_text(page)
        staged = _RESUMED.get()
        if staged is not None:
            client().log_artifacts(staged.run_id, tmp, artifact_dir)
        else:
            mlflow.log_artifacts(tmp, artifact_dir)


def download_artifact(run_id: str, artifact_path: str, dst: Path | None = None) -> Path:
    """Download one artifact of a run to ``dst`` (a temp dir by default); clear error if absent."""
    get_run(run_id)
    dst = dst or Path(tempfile.mkdtemp(prefix="seofp-"))
    try:
        local = client().download_artifacts(run_id, artifact_path, str(dst))
    except Exception as exc:
        raise TrackingError(f"Run {run_id} has no artifact {artifact_path!r}") from exc
    return Path(local)


def run_config_dict(run_id: str) -> dict[str, Any]:
    """The experiment config a run was trained with (its ``config.yaml`` artifact) as a dict."""
    import yaml  # noqa: PLC0415

    return yaml.safe_load(download_artifact(run_id, CONFIG_ARTIFACT).read_text())


def find_runs(experiment: str, filter_string: str = "") -> list[Any]:
    """Runs of an experiment, newest first."""
    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return _all_pages(lambda token: client().search_runs(
        [exp.experiment_id], filter_string, order_by=["attributes.start_time DESC"],
        max_results=SEARCH_PAGE, page_token=token))


SEARCH_PAGE = 1000  # runs per search page (the store's cap per request)


def all_experiments() -> list[Any]:
    """Every experiment of the store, every page."""
    return _all_pages(lambda token: client().search_experiments(max_results=SEARCH_PAGE,
                                                                page_token=token))


def all_runs(filter_string: str = "") -> list[Any]:
    """Every run of every experiment, newest first, every page (no silent cap)."""
    exps = [e.experiment_id for e in all_experiments()]
    if not exps:
        return []
    return _all_pages(lambda token: client().search_runs(
        exps, filter_string, order_by=["attributes.start_time DESC"], max_results=SEARCH_PAGE,
        page_token=token))


def _all_pages(search: Any) -> list[Any]:
    """Every result of a paged MLflow search (one page holds at most 1,000 runs: no silent cap)."""
    out: list[Any] = []
    token = None
    while True:
        page = search(token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def ui_command(host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The ``mlflow ui`` command line for the configured store."""
    cmd = [
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri(),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",  # one process is plenty for a local UI (the default is 4)
        "1",
    ]
    root = artifact_root()
    if root is not None:
        cmd += ["--default-artifact-root", root.as_uri()]
    return cmd


def describe_store() -> str:
    return json.dumps({"tracking_uri": tracking_uri(), "artifacts": str(artifact_root())})


def process_alive(run: Any) -> bool | None:
    """Whether the process that opened ``run`` still runs: None when it ran on another host
    (or the run does not say), else True/False (tags ``seofp.host`` and ``seofp.pid``)."""
    tags = run.data.tags
    if tags.get(TAG_HOST) != socket.gethostname() or not tags.get(TAG_PID):
        return None
    try:
        os.kill(int(tags[TAG_PID]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return None
    return True
