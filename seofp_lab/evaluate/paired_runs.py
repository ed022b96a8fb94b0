"""Paired comparison of two tracked runs: read their per-utterance scores from MLflow, check they
cover the same test set, and log the result (metrics, CSV, plot) to run B.

``evaluate()`` calls :func:`after_evaluation` in the parent process once it has logged a run;
``seofp compare`` calls :func:`compare_runs` and :func:`log_comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from seofp_lab import tracking
from seofp_lab.console import console as make_console
from seofp_lab.errors import SeofpError, TrackingError
from seofp_lab.evaluate.paired import (
    MIN_CLUSTERS,
    UNIT_NAMES,
    MetricDifference,
    PairedComparison,
    PairingError,
    Unit,
    compare_scores,
)

PER_UTTERANCE = "evaluation/per_utterance.csv"  # evaluate()'s artifact for the PyTorch engine
LABELS = {"pesq_wb": "PESQ-wb", "pesq_nb": "PESQ-nb", "stoi": "STOI", "estoi": "ESTOI",
          "si_sdr": "SI-SDR dB"}


def run_scores(run_id: str, artifact: str = PER_UTTERANCE, corpus: str | None = None
               ) -> pd.DataFrame:
    """A run's per-utterance CSV; PairingError when the run was not evaluated.

    ``corpus``: a corpus label (``seofp evaluate RUN --corpus``); the run's own corpus name
    selects its own test set's scores, as ``None`` does."""
    run = tracking.get_run(run_id)  # an unknown run is a TrackingError naming the store
    if corpus is not None:
        artifact = corpus_artifact(run_id, run.data.tags, corpus, artifact)
    try:
        path = tracking.download_artifact(run_id, artifact)
    except TrackingError as exc:
        how = "" if corpus is None else " --corpus CONFIG"
        raise PairingError(
            f"Expected run {run_id} to have per-utterance scores ({artifact}) but got none; "
            f"run `seofp evaluate {run_id}{how}` first"
        ) from exc
    return pd.read_csv(path, dtype={"id": str})


def corpus_artifact(run_id: str, tags: Mapping[str, str], corpus: str,
                    artifact: str = PER_UTTERANCE) -> str:
    """Where a run keeps ``artifact`` (an ``evaluation/`` path) for corpus label ``corpus``."""
    from seofp_lab.evaluate.corpora import is_own, recorded  # noqa: PLC0415

    if is_own(tags, corpus):
        return artifact
    labels = recorded(tags)
    if corpus not in labels:
        raise PairingError(
            f"Expected run {run_id} to be evaluated on corpus {corpus!r} but its evaluated "
            f"corpora are {sorted({*labels, tags.get(tracking.TAG_CORPUS, '?')})}; run `seofp "
            f"evaluate {run_id} --corpus CONFIG` (with --corpus-name {corpus} if the config's "
            "name differs)"
        )
    return artifact.replace("evaluation/", f"evaluation/{corpus}/", 1)


def testset_of(run_id: str, label: str | None = None) -> str | None:
    """The test-set hash of a run's corpus config (its config.yaml), None when it has none.

    ``label``: of that corpus label instead, as the run's ``seofp.eval_corpora`` tag records."""
    from seofp_lab.config import CorpusConfig  # noqa: PLC0415
    from seofp_lab.data.testset import testset_hash  # noqa: PLC0415

    if label is not None:
        from seofp_lab.evaluate.corpora import is_own, recorded  # noqa: PLC0415

        tags = tracking.get_run(run_id).data.tags
        if label in (labels := recorded(tags)):
            return labels[label]
        if not is_own(tags, label):
            return None
    try:  # the corpus section only: older configs differ elsewhere (e.g. tracking fields)
        corpus = CorpusConfig.model_validate(tracking.run_config_dict(run_id).get("corpus", {}))
        return testset_hash(corpus)
    except (SeofpError, ValueError, AttributeError, OSError):  # no usable config: ids must match
        return None


def compare_runs(
    run_a: str,
    run_b: str,
    margins: Mapping[str, float] | None = None,
    scores_b: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    n_resamples: int = 9999,
    seed: int = 0,
    corpus: str | None = None,
    unit: Unit = "utterance",
) -> PairedComparison:
    """Run B against run A, pair by pair on their shared test items.

    Args:
        run_a: the reference (usually the fp32 baseline).
        run_b: the compared run.
        margins: non-inferiority margins over ``paired.DEFAULT_MARGINS``.
        scores_b: B's per-utterance rows when already in hand (``evaluate()``), else its CSV.
        n_resamples: bootstrap resamples.
        seed: bootstrap seed.
        corpus: pair on this corpus label's test set (``seofp evaluate RUN --corpus``) instead
            of the runs' own.
        unit: what is resampled and tested: ``utterance``, ``speaker`` (talker) or ``mixture``
            (every mixture independent: the former analysis, for comparison only).

    Raises:
        TrackingError: a run is not in the store.
        PairingError: a run has no per-utterance scores, or the two test sets differ.
    """
    if corpus is None:
        hash_a, hash_b = testset_of(run_a), testset_of(run_b)
    else:
        hash_a, hash_b = (testset_of(r, corpus) for r in (run_a, run_b))
    if hash_a and hash_b and hash_a != hash_b:
        raise PairingError(
            f"Expected runs {run_a} (A) and {run_b} (B) to use the same test set but got test-set "
            f"hashes {hash_a} and {hash_b} (different corpus or test-set settings)"
        )
    a = run_scores(run_a, corpus=corpus)
    b = run_scores(run_b, corpus=corpus) if scores_b is None else scores_b
    return compare_scores(a, b, run_a, run_b, margins, n_resamples=n_resamples, seed=seed,
                          unit=unit)


def metrics_of(cmp: PairedComparison, prefix: str = "") -> dict[str, float]:
    """The logged numbers; finite values only.

    Per metric ``paired_<metric>_delta|_ci_low|_ci_high|_p|_margin|_n|_n_units`` and the mixed
    model's ``_mixed_delta|_mixed_se|_mixed_ci_low|_mixed_ci_high``; for the test items
    ``paired_n_mixtures|_n_utterances|_n_talkers|_n_noise_clips`` and ``paired_min_clusters``.
    ``_p`` is the Holm-adjusted Wilcoxon p-value (on unit means); ``_margin``, ``_n_units`` and
    ``paired_min_clusters`` let a reader (the report) redo the verdict from the logged numbers.
    The unit itself is the run's ``seofp.paired_unit`` tag."""
    out: dict[str, float] = {}
    for key, value in (("n_mixtures", cmp.n_items), ("n_utterances", cmp.n_utterances),
                       ("n_talkers", cmp.n_talkers), ("n_noise_clips", cmp.n_noise_clips),
                       ("min_clusters", cmp.min_clusters)):
        if value is not None:
            out[f"{prefix}paired_{key}"] = float(value)
    for m in cmp.metrics:
        for key, value in (("delta", m.mean_diff), ("ci_low", m.ci_low), ("ci_high", m.ci_high),
                           ("p", m.p_wilcoxon_holm), ("margin", m.margin),
                           ("n", float(m.n_mixtures)), ("n_units", float(m.n_units)),
                           ("mixed_delta", m.mixed_delta), ("mixed_se", m.mixed_se),
                           ("mixed_ci_low", m.mixed_ci_low), ("mixed_ci_high", m.mixed_ci_high)):
            if math.isfinite(value):
                out[f"{prefix}paired_{m.metric}_{key}"] = value
    return out


def figure(cmp: PairedComparison) -> Any:
    """Per metric: every utterance's difference (dots), the mean with its CI, 0 and -margin."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(cmp.metrics), figsize=(2.6 * len(cmp.metrics), 3.6),
                             squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, m in zip(axes[0], cmp.metrics, strict=True):
        d = np.asarray(m.diffs, float)
        ax.scatter(rng.uniform(-0.25, 0.25, len(d)), d, s=8, alpha=0.45, color="#4b5563")
        if math.isfinite(m.ci_low):
            ax.errorbar([0.45], [m.mean_diff], yerr=[[m.mean_diff - m.ci_low],
                        [m.ci_high - m.mean_diff]], fmt="o", color="#1d4ed8", capsize=5,
                        label=f"mean, {cmp.confidence:.0%} CI")
        ax.axhline(0.0, color="#9ca3af", lw=0.8)
        ax.axhline(-m.margin, color="#b91c1c", ls="--", lw=1.0, label="−margin")
        low, high = ax.get_ylim()  # keep the -margin line inside, not on the frame
        ax.set_ylim(min(low, -1.15 * m.margin), max(high, 0.15 * m.margin))
        ax.set_xlim(-0.5, 0.7)
        ax.set_xticks([])
        ax.set_title(f"{LABELS.get(m.metric, m.metric)}\n{m.verdict}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("B − A per utterance")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"B {cmp.run_b[:8]} vs A {cmp.run_a[:8]}: {counts_text(cmp)}; CI over "
                 f"{UNIT_NAMES[cmp.unit]}", fontsize=9)
    fig.tight_layout()
    return fig


def log_comparison(cmp: PairedComparison, run_id: str, prefix: str = "") -> None:
    """Metrics (:func:`metrics_of`), ``evaluation/<prefix>paired.csv``,
    ``evaluation/<prefix>paired.png``; for ``prefix`` ``""`` the tags ``seofp.paired_against`` =
    run A and ``seofp.paired_unit`` = the unit, for ``"baseline_"`` ``seofp.baseline_paired_*``
    (``tracking.paired_tags``). Other prefixes (another corpus, the C engine) set no tag: those
    describe the metrics the report reads, and the CSV names run A and the unit anyway."""
    with tracking.resume_run(run_id):
        if (names := tracking.paired_tags(prefix)) is not None:
            against, unit = names
            tracking.set_tags({against: cmp.run_a, unit: cmp.unit})
        tracking.log_metrics(metrics_of(cmp, prefix))
        tracking.log_table(cmp.rows(), f"evaluation/{prefix}paired.csv")
        tracking.log_figure(figure(cmp), f"evaluation/{prefix}paired.png")


def _num(v: float, digits: int) -> str:
    return "–" if not math.isfinite(v) else f"{v:+.{digits}f}"


def _count(v: int | None) -> str:
    return "?" if v is None else str(v)


def counts_text(cmp: PairedComparison) -> str:
    """``82 mixtures, 41 utterances, 2 talkers, 3 noise recordings`` ('?' when unknown)."""
    return (f"{cmp.n_items} mixtures, {cmp.n_utterances} utterances, {_count(cmp.n_talkers)} "
            f"talkers, {_count(cmp.n_noise_clips)} noise recordings")


def _units(m: MetricDifference) -> str:
    """The units behind one CI: ``41 utt.``; ``82`` mixtures for the mixture unit."""
    return f"{m.n_units} " + {"utterance": "utt.", "speaker": "talkers", "mixture": "mix."}[m.unit]


ONE = {"utterance": "utterance", "speaker": "talker", "mixture": "mixture"}
VERDICT_COLORS = {"non-inferior": "green", "inferior": "red", "inconclusive": "yellow",
                  "insufficient": "magenta"}


def table(cmp: PairedComparison) -> Table:
    """One row per metric: counts, mean/median difference, CI, p-values, d_z, margin, verdict."""
    t = Table(title=f"Paired, B {cmp.run_b[:8]} − A {cmp.run_a[:8]} ({counts_text(cmp)})")
    for col in ("metric", "n (units)", "mean Δ", f"{cmp.confidence:.0%} CI", "median Δ",
                "p W (Holm)", "p t (Holm)", "d_z", "margin", "verdict"):
        t.add_column(col, justify="left" if col in ("metric", "verdict") else "right",
                     no_wrap=True)
    for m in cmp.metrics:
        k = 2 if m.metric == "si_sdr" else 4
        n = f"{m.n_mixtures}" + (f" (−{m.dropped} NaN)" if m.dropped else "")
        color = VERDICT_COLORS[m.verdict]
        t.add_row(
            LABELS.get(m.metric, m.metric), f"{n} ({_units(m)})", _num(m.mean_diff, k),
            f"[{_num(m.ci_low, k)}, {_num(m.ci_high, k)}]", _num(m.median_diff, k),
            f"{m.p_wilcoxon:.2g} ({m.p_wilcoxon_holm:.2g})",
            f"{m.p_ttest:.2g} ({m.p_ttest_holm:.2g})",
            "–" if math.isnan(m.d_z) else f"{m.d_z:+.2f}", f"{m.margin:g}",
            f"[{color}]{m.verdict}[/{color}]",
        )
    return t


def mixed_table(cmp: PairedComparison) -> Table:
    """The mixed model's estimate per metric, beside the bootstrap's, with its counts."""
    t = Table(title="Mixed model: Δ ~ 1 + (1 | talker) + (1 | utterance in talker), REML")
    for col in ("metric", "mixtures/utt./talkers", "Δ", "SE", f"{cmp.confidence:.0%} CI (Wald)",
                "random intercepts", "note"):
        t.add_column(col, justify="left" if col in ("metric", "random intercepts", "note")
                     else "right", no_wrap=col != "note")
    for m in cmp.metrics:
        k = 2 if m.metric == "si_sdr" else 4
        t.add_row(LABELS.get(m.metric, m.metric),
                  f"{m.n_mixtures}/{m.n_utterances}/{_count(m.n_talkers)}", _num(m.mixed_delta, k),
                  "–" if not math.isfinite(m.mixed_se) else f"{m.mixed_se:.{k}f}",
                  f"[{_num(m.mixed_ci_low, k)}, {_num(m.mixed_ci_high, k)}]",
                  m.mixed_model or "–", escape(m.mixed_note))
    return t


def snr_table(cmp: PairedComparison) -> Table | None:
    """Mean Δ [CI] per metric (rows) and test-set SNR (columns); None without SNR levels."""
    snrs = sorted({s.snr for m in cmp.metrics for s in m.per_snr})
    if not snrs:
        return None
    unit = {"utterance": "utt", "speaker": "talkers", "mixture": "mix"}[cmp.unit]
    t = Table(title=f"Paired mean Δ [CI] per input SNR (n = mixtures/{UNIT_NAMES[cmp.unit]})")
    t.add_column("metric", no_wrap=True)
    for snr in snrs:
        t.add_column(f"{snr:g} dB", justify="right", no_wrap=True)
    for m in cmp.metrics:
        k = 2 if m.metric == "si_sdr" else 3
        by = {s.snr: s for s in m.per_snr}
        t.add_row(LABELS.get(m.metric, m.metric), *[
            f"{_num(s.mean_diff, k)} [{_num(s.ci_low, k)}, {_num(s.ci_high, k)}] "
            f"n={s.n_mixtures}/{s.n_units}{'' if cmp.unit == 'mixture' else ' ' + unit}"
            + ("†" if s.n_units < MIN_CLUSTERS else "")
            if (s := by.get(snr)) else "–" for snr in snrs
        ])
    return t


def notes(cmp: PairedComparison) -> list[str]:
    """What the numbers rest on and what they do not cover, one sentence each."""
    unit = UNIT_NAMES[cmp.unit]
    method = "/".join(sorted({m.ci_method for m in cmp.metrics}))
    out = [f"Δ = B − A per mixture; CI: bootstrap over {unit} ({cmp.n_resamples} resamples, "
           f"seed {cmp.seed}, {method}); Wilcoxon (Pratt zeros) and t-test on one mean Δ per "
           f"{ONE[cmp.unit]}; verdict: CI low > −margin is non-inferior, CI high < −margin "
           f"inferior; fewer than {cmp.min_clusters} {unit}: insufficient, no verdict."]
    if cmp.unit == "mixture":
        out.append("Unit 'mixture' treats every mixture as independent although mixtures share "
                   "utterances and talkers: its CIs are too narrow; for comparison only.")
    elif cmp.unit == "utterance" and cmp.n_talkers is not None and cmp.n_talkers < MIN_CLUSTERS:
        out.append(f"The CIs cover new utterances of these {cmp.n_talkers} talkers, not new "
                   f"talkers (fewer than {MIN_CLUSTERS}: too few for --unit speaker).")
    if cmp.n_noise_clips is not None:
        out.append(f"Noise: {cmp.n_noise_clips} recordings, not resampled; results hold for "
                   "these recordings.")
    reasons: dict[str, list[str]] = {}
    for m in cmp.metrics:
        if m.verdict_reason:
            reasons.setdefault(m.verdict_reason, []).append(LABELS.get(m.metric, m.metric))
    out += [f"{', '.join(names)}: {reason}." for reason, names in reasons.items()]
    if cmp.unit_note:
        out.append(f"Units: {cmp.unit_note}.")
    return out


def print_comparison(cmp: PairedComparison) -> None:
    make_console().print(table(cmp))
    make_console().print(mixed_table(cmp))
    if (per_snr := snr_table(cmp)) is not None:
        make_console().print(per_snr)
        if any(s.n_units < MIN_CLUSTERS for m in cmp.metrics for s in m.per_snr):
            make_console().print(f"† fewer than {MIN_CLUSTERS} {UNIT_NAMES[cmp.unit]} at this "
                                 "SNR: the CI is shown but would not support a verdict.")
    for line in notes(cmp):
        make_console().print(escape(line), highlight=False)


def _one_line(text: str) -> None:
    """A warning on stderr as one unwrapped line (messages may hold [brackets])."""
    make_console(stderr=True).print(f"[yellow]{escape(' '.join(text.split()))}[/yellow]",
                                    soft_wrap=True, highlight=False)


def reference_runs(run_id: str) -> list[tuple[str, str, str]]:
    """(label, run id, metric prefix) of the runs a run is compared with after evaluation.

    Its equal-budget control first (``seofp.control_run``: ``paired_*`` metrics), then its
    baseline (``seofp.baseline_run``: ``baseline_paired_*``). A run without a control is compared
    with its baseline under ``paired_*``, as its only reference."""
    tags = tracking.get_run(run_id).data.tags
    control, baseline = tags.get(tracking.TAG_CONTROL), tags.get(tracking.TAG_BASELINE)
    out = []
    if control and control != run_id:
        out.append(("control", control, ""))
    if baseline and baseline != run_id:
        out.append(("baseline", baseline, "baseline_" if out else ""))
    return out


def after_evaluation(
    run_id: str, rows: Sequence[Mapping[str, Any]], prefix: str = "", corpus: str | None = None
) -> PairedComparison | None:
    """``evaluate()``'s hook: compare with the run's control and baseline and log both.

    ``corpus``: the label of another corpus's test set; the references' scores on it are used
    and the results are logged under ``<corpus>/`` (metrics) and ``evaluation/<corpus>/`` (files).

    Never raises: a missing reference or reference scores is one printed line, and evaluation
    goes on. Returns the primary comparison (against the control when there is one), or None.
    """
    first: PairedComparison | None = None
    try:
        refs = reference_runs(run_id)
    except SeofpError as exc:
        _one_line(f"paired comparison skipped: {exc}")
        return None
    for label, ref, extra in refs:
        try:
            cmp = compare_runs(ref, run_id, scores_b=rows, corpus=corpus)
            log_comparison(cmp, run_id, tracking.corpus_prefix(corpus) + prefix + extra)
        except SeofpError as exc:
            _one_line(f"paired comparison with {label} {ref} skipped: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - an extra analysis must not fail the evaluation
            _one_line(f"paired comparison with {label} {ref} failed: "
                      f"{type(exc).__name__}: {exc}")
            continue
        make_console().print(f"[bold]against its {label}[/bold] ({ref[:8]}):")
        print_comparison(cmp)
        first = first or cmp
    return first


__all__ = ["after_evaluation", "compare_runs", "corpus_artifact", "counts_text", "log_comparison",
           "metrics_of", "mixed_table", "notes", "print_comparison", "reference_runs",
           "run_scores", "table", "testset_of"]
