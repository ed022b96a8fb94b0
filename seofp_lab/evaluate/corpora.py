"""Which test set an evaluation scores, and where its results go (docs/corpora.md).

A run is evaluated on its own corpus's test set by default: metrics keep their plain names
(``pesq_wb``) and artifacts go to ``evaluation/``. Any other corpus gets a *label* (its config's
``name`` or ``--corpus-name``): metrics ``<label>/pesq_wb``, artifacts ``evaluation/<label>/``,
enhanced audio ``<workspace>/enhanced/<run>[-<engine>]@<label>/``.

Every evaluation records its label and test-set hash in the run's ``seofp.eval_corpora`` tag
(JSON ``{label: hash}``) and in the artifact ``evaluation/corpora.json`` (root, kind, items), so
``seofp compare --corpus`` and ``seofp report`` find the scores again and notice when two runs
were scored on different test sets under one label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from seofp_lab import tracking
from seofp_lab.config import CorpusConfig, ExperimentConfig
from seofp_lab.errors import SeofpError, TrackingError

OWN_ARTIFACT_DIR = "evaluation"
TABLE_METRICS = ("pesq_wb", "stoi")  # per corpus in the runs x corpora tables, with n items
CSV_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")


@dataclass(frozen=True)
class EvalTarget:
    """The test set one evaluation scores: the run's own (``own``) or another corpus's."""

    label: str
    own: bool
    config: CorpusConfig
    testset: str  # testset_hash(config)

    @property
    def metric_prefix(self) -> str:
        """``""`` for the own test set, else ``"<label>/"``."""
        return tracking.corpus_prefix(None if self.own else self.label)

    @property
    def artifact_dir(self) -> str:
        return OWN_ARTIFACT_DIR if self.own else f"{OWN_ARTIFACT_DIR}/{self.label}"


def recorded(tags: Mapping[str, str]) -> dict[str, str]:
    """The ``seofp.eval_corpora`` tag as ``{label: test-set hash}`` ({} when absent or unreadable).

    >>> recorded({"seofp.eval_corpora": '{"vbd": "0123abcd"}'})
    {'vbd': '0123abcd'}
    """
    try:
        data = json.loads(tags.get(tracking.TAG_EVAL_CORPORA, "{}"))
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def resolve_target(
    run_id: str, run_cfg: ExperimentConfig, corpus: CorpusConfig | None, name: str | None
) -> EvalTarget:
    """The run's own test set when ``corpus`` is None or has the same test set, else a label.

    Raises:
        SeofpError: the label is not usable in names, is the run's own corpus name, or already
            names a different test set of this run.
    """
    from seofp_lab.data.testset import testset_hash  # noqa: PLC0415

    own = EvalTarget(run_cfg.corpus.name, True, run_cfg.corpus, testset_hash(run_cfg.corpus))
    if corpus is None:
        return own
    digest = testset_hash(corpus)
    if digest == own.testset:
        return own
    label = name or corpus.name
    try:
        tracking.check_corpus_label(label)
    except ValueError as exc:
        what = "--corpus-name" if name else f"the corpus config's name ({corpus.name!r})"
        raise SeofpError(f"{exc}; set {what} to such a label") from None
    if label == own.label:
        raise SeofpError(
            f"Expected a corpus label other than {label!r}, the name of run {run_id}'s own corpus "
            f"(whose test set differs: {own.testset} vs {digest}); pass --corpus-name LABEL"
        )
    before = recorded(tracking.get_run(run_id).data.tags).get(label)
    if before is not None and before != digest:
        raise SeofpError(
            f"Expected corpus label {label!r} to name one test set of run {run_id} but it already "
            f"names test set {before} and this one is {digest} (another root or test settings); "
            "pass --corpus-name LABEL to keep both"
        )
    return EvalTarget(label, False, corpus, digest)


def record(run_id: str, target: EvalTarget, items: int, engine: str) -> None:
    """Add ``target`` to the run's ``seofp.eval_corpora`` tag and ``evaluation/corpora.json``.

    Call inside ``tracking.resume_run(run_id)``."""
    tags = tracking.get_run(run_id).data.tags
    labels = {**recorded(tags), target.label: target.testset}
    tracking.set_tags({tracking.TAG_EVAL_CORPORA: json.dumps(labels, sort_keys=True)})
    try:
        details = json.loads(tracking.download_artifact(run_id, tracking.CORPORA_ARTIFACT)
                             .read_text())
    except (TrackingError, json.JSONDecodeError):
        details = {}
    before = details.get(target.label, {})
    engines = before.get("engines", []) if before.get("testset") == target.testset else []
    cfg = target.config
    details[target.label] = {
        "own": target.own,
        "testset": target.testset,
        "name": cfg.name,
        "kind": cfg.kind,
        "root": None if cfg.root is None else str(cfg.root),
        "items": items,
        "engines": sorted({*engines, engine}),
        "metric_prefix": target.metric_prefix,
        "artifacts": target.artifact_dir,
    }
    tracking.log_text(json.dumps(details, indent=2, sort_keys=True) + "\n",
                      tracking.CORPORA_ARTIFACT)


def own_label(tags: Mapping[str, str]) -> str:
    """The label of a run's own test set: its ``seofp.corpus`` tag."""
    return tags.get(tracking.TAG_CORPUS, "") or "own"


def is_own(tags: Mapping[str, str], label: str) -> bool:
    return label == own_label(tags)


def evaluated_labels(metrics: Mapping[str, float], tags: Mapping[str, str]) -> list[str]:
    """The corpora a run has scores for, own first: from its metric names, plus the tag."""
    own = own_label(tags)
    found = {k.split("/", 1)[0] for k in metrics if "/" in k
             and k.split("/", 1)[1] in tracking.METRICS}
    found |= set(recorded(tags))
    has_own = any(q in metrics for q in TABLE_METRICS)
    return ([own] if has_own or own in found else []) + sorted(found - {own})


def corpus_values(metrics: Mapping[str, float], tags: Mapping[str, str], label: str,
                  noisy: bool = False) -> dict[str, float | None]:
    """Means of one corpus (``CSV_METRICS`` and ``n``) from a run's logged metrics."""
    corpus = None if is_own(tags, label) else label
    out: dict[str, float | None] = {}
    for m in CSV_METRICS:
        v = metrics.get(tracking.metric_key(m, noisy=noisy, corpus=corpus))
        out[m] = float(v) if v is not None and math.isfinite(v) else None
    n = metrics.get(tracking.corpus_prefix(corpus) + "test_utterances")
    out["n"] = float(n) if n is not None else None
    return out


@dataclass
class CorpusTable:
    """Runs x corpora: ``cells[(run_id, label)]`` holds the corpus's means for that run."""

    corpora: list[str]
    runs: list[tuple[str, str]]  # (run label, run id), in the given order
    cells: dict[tuple[str, str], dict[str, float | None]] = field(default_factory=dict)
    noisy: dict[str, dict[str, float | None]] = field(default_factory=dict)  # per corpus
    own: dict[str, str] = field(default_factory=dict)  # run id -> its own corpus label
    notes: list[str] = field(default_factory=list)

    def csv(self) -> str:
        """One line per (run or noisy input, corpus) with every quality mean and n."""
        import csv  # noqa: PLC0415
        import io  # noqa: PLC0415

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["row", "label", "run_id", "corpus", "own_corpus", "n", *CSV_METRICS])
        for corpus in self.corpora:
            if corpus in self.noisy:
                v = self.noisy[corpus]
                w.writerow(["noisy", "noisy input", "", corpus, "", _raw(v.get("n")),
                            *(_raw(v[m]) for m in CSV_METRICS)])
        for name, rid in self.runs:
            for corpus in self.corpora:
                if (v := self.cells.get((rid, corpus))) is not None:
                    w.writerow(["run", name, rid, corpus, str(self.own.get(rid) == corpus).lower(),
                                _raw(v.get("n")), *(_raw(v[m]) for m in CSV_METRICS)])
        return buf.getvalue()


def _raw(v: float | None) -> str:
    return "" if v is None else repr(v)


def corpus_table(runs: Sequence[tuple[str, str, Mapping[str, float], Mapping[str, str]]]
                 ) -> CorpusTable:
    """The runs x corpora table of ``(run label, run id, metrics, tags)`` tuples."""
    corpora: list[str] = []
    table = CorpusTable(corpora, [(name, rid) for name, rid, _, _ in runs])
    hashes: dict[str, set[str]] = {}
    for _, rid, metrics, tags in runs:
        table.own[rid] = own_label(tags)
        for label in evaluated_labels(metrics, tags):
            if label not in corpora:
                corpora.append(label)
            values = corpus_values(metrics, tags, label)
            if any(values[m] is not None for m in CSV_METRICS):
                table.cells[(rid, label)] = values
            noisy = corpus_values(metrics, tags, label, noisy=True)
            if label not in table.noisy and any(noisy[m] is not None for m in CSV_METRICS):
                table.noisy[label] = {**noisy, "n": values["n"]}
            if (h := recorded(tags).get(label)) is not None:
                hashes.setdefault(label, set()).add(h)
    for label, hs in hashes.items():
        if len(hs) > 1:
            table.notes.append(
                f"{label}: the runs were scored on {len(hs)} different test sets under this "
                f"label (test-set hashes {', '.join(sorted(hs))}); their means are not paired."
            )
    return table


def rich_table(table: CorpusTable, title: str = "Runs x corpora (test-set means)") -> Any:
    """``table`` as a rich Table: one row per run (and the noisy input), one column per corpus;
    a cell holds PESQ-wb, STOI and n on three lines, ``*`` marking the run's own corpus."""
    from rich.table import Table  # noqa: PLC0415

    t = Table(title=title, caption="cells: PESQ-wb / STOI / n items; * the run's own corpus",
              show_lines=True)
    t.add_column("run")
    for corpus in table.corpora:
        t.add_column(corpus, justify="right")

    def cell(v: dict[str, float | None] | None, own: bool = False) -> str:
        if v is None:
            return "–"
        lines = ["–" if v[m] is None else f"{v[m]:.3f}" for m in TABLE_METRICS]
        lines.append("n=–" if v.get("n") is None else f"n={v['n']:.0f}")
        return "\n".join(lines) + ("*" if own else "")

    if table.noisy:
        t.add_row("noisy input", *[cell(table.noisy.get(k)) for k in table.corpora])
    for name, rid in table.runs:
        t.add_row(f"{name}\n{rid[:8]}", *[
            cell(table.cells.get((rid, k)), table.own.get(rid) == k) for k in table.corpora])
    return t


__all__ = ["CorpusTable", "EvalTarget", "corpus_table", "evaluated_labels", "record",
           "recorded", "resolve_target", "rich_table"]
