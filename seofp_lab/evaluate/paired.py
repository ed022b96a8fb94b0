"""Paired per-utterance statistics: is run B's difference to run A on the same test set real, and
is B non-inferior within a margin?

Both runs are scored on the same fixed test items, so each mixture gives one difference
``d = B - A`` per metric. The mixtures are not independent (each utterance is mixed more than
once, utterances come from a few talkers), so the analysis resamples and tests *units*
(``unit``; docs/statistics.md):

- ``"utterance"`` (default): an utterance with all of its mixtures is one unit;
- ``"speaker"``: a talker with all of their utterances is one unit;
- ``"mixture"``: every mixture is a unit (the analysis before units existed: for comparison
  only, its CIs are too narrow when mixtures share an utterance).

Per metric it reports:

- mean and median of ``d`` over mixtures, and a seeded bootstrap CI of the mean: a cluster
  bootstrap over units with the expanded percentile interval (``clustered.py`` says why), or for
  ``"mixture"`` the former paired BCa bootstrap (``scipy.stats.bootstrap``);
- Wilcoxon signed-rank and one-sample t-test p-values and ``d_z = mean / sd`` on the *unit means*
  (one value per unit, so each test sees independent values; ``zero_method="pratt"``, all-zero
  gives p = 1), Holm-corrected across metrics;
- a mixed model (random intercepts for talker and utterance-in-talker): its intercept, SE and Wald
  CI, a second estimate that does not decide the verdict;
- the counts behind every CI: mixtures, units, utterances, talkers, noise recordings;
- non-inferiority against a per-metric margin (all metrics are higher-is-better): "non-inferior"
  when the CI's lower bound > -margin, "inferior" when its upper bound < -margin, else
  "inconclusive"; "insufficient" (no verdict) with fewer than :data:`MIN_CLUSTERS` units;
- the mean difference and its clustered CI per test-set SNR level.

Pairs where either run's score is NaN (a failed metric: NaN plus ``*_error`` in the per-utterance
CSV) are dropped per metric and counted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from seofp_lab.errors import PairingError
from seofp_lab.evaluate.clustered import cluster_bootstrap_ci, cluster_means, mixed_model
from seofp_lab.evaluate.units import UNITS, Unit, Units, resolve_units

METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")
DEFAULT_MARGINS: dict[str, float] = {
    "pesq_wb": 0.05, "pesq_nb": 0.05, "stoi": 0.01, "estoi": 0.01, "si_sdr": 0.5,
}
# Below 10 units a CI of a mean rests on a variance with < 9 degrees of freedom and a bootstrap
# with few distinct resamples; benchmarks/bench_noninferiority.py checks the error rate at 10.
MIN_CLUSTERS = 10
ZERO_METHOD = "pratt"
Verdict = Literal["non-inferior", "inferior", "inconclusive", "insufficient"]
CIMethod = Literal["cluster expanded percentile", "BCa", "percentile", "none"]
CLUSTER_CI: CIMethod = "cluster expanded percentile"
UNIT_NAMES = {"utterance": "utterances", "speaker": "talkers", "mixture": "mixtures"}


@dataclass(frozen=True)
class SnrDifference:
    """The mean difference B - A of one metric at one test-set SNR level, with its counts."""

    metric: str
    snr: float
    n_mixtures: int
    n_units: int
    n_utterances: int
    n_talkers: int | None  # None: unknown (no speaker column)
    n_noise_clips: int | None  # None: unknown (scores older than the noise_clip column)
    mean_diff: float
    ci_low: float
    ci_high: float
    ci_method: CIMethod

    @property
    def n(self) -> int:
        return self.n_mixtures


@dataclass(frozen=True)
class MetricDifference:
    """Every number of the paired analysis of one metric (differences are B - A)."""

    metric: str
    unit: Unit
    n_mixtures: int  # pairs used
    n_units: int  # independent units behind the CI and the tests
    n_utterances: int
    n_talkers: int | None
    n_noise_clips: int | None
    dropped: int  # pairs with a NaN score in either run
    mean_a: float
    mean_b: float
    mean_diff: float  # over mixtures
    median_diff: float  # over mixtures
    ci_low: float
    ci_high: float
    ci_method: CIMethod
    p_wilcoxon: float  # on unit means
    p_wilcoxon_holm: float
    p_ttest: float  # on unit means
    p_ttest_holm: float
    d_z: float  # mean / sd of the unit means; +-inf when they are all equal and non-zero
    margin: float
    verdict: Verdict
    verdict_reason: str  # why "insufficient" or "inconclusive" without a CI; else ""
    mixed_delta: float  # the mixed model's intercept
    mixed_se: float
    mixed_ci_low: float
    mixed_ci_high: float
    mixed_model: str  # random effects fitted
    mixed_note: str  # why a mixed-model number is NaN, or what was left out
    per_snr: tuple[SnrDifference, ...] = ()
    diffs: tuple[float, ...] = ()  # the per-mixture differences, in test-set order

    @property
    def n(self) -> int:
        return self.n_mixtures


@dataclass(frozen=True)
class PairedComparison:
    """Run B against run A on ``n_items`` shared test items (mixtures)."""

    run_a: str
    run_b: str
    n_items: int
    metrics: tuple[MetricDifference, ...]
    confidence: float
    n_resamples: int
    seed: int
    unit: Unit = "utterance"
    n_utterances: int = 0
    n_talkers: int | None = None
    n_noise_clips: int | None = None
    unit_note: str = ""  # how missing unit columns were handled (old scores)
    min_clusters: int = MIN_CLUSTERS

    def metric(self, name: str) -> MetricDifference:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(f"Expected one of {[m.metric for m in self.metrics]} but got {name!r}")

    def rows(self) -> list[dict[str, object]]:
        """One row per metric (``scope="all"``) then one per metric and SNR (``scope="snr"``)."""
        head = {"run_a": self.run_a, "run_b": self.run_b, "confidence": self.confidence,
                "n_resamples": self.n_resamples, "seed": self.seed, "zero_method": ZERO_METHOD,
                "min_clusters": self.min_clusters, "unit_note": self.unit_note}
        out: list[dict[str, object]] = []
        for m in self.metrics:
            row = {k: v for k, v in asdict(m).items() if k not in ("per_snr", "diffs")}
            out.append({**head, "scope": "all", "snr": float("nan"), **row})
        for m in self.metrics:
            for s in m.per_snr:
                out.append({**head, "scope": "snr", "unit": m.unit, **asdict(s),
                            "margin": m.margin})
        return out


def score_table(table: pd.DataFrame | Sequence[Mapping[str, object]], name: str) -> pd.DataFrame:
    """A per-utterance table (``evaluate()``'s rows or its CSV) indexed by item id.

    Args:
        table: columns ``id``, ``snr`` and ``enhanced_<metric>`` (others are ignored).
        name: how errors name this table (a run id).
    """
    df = pd.DataFrame(table).copy()
    if "id" not in df.columns:
        raise PairingError(f"Expected an 'id' column in the scores of {name} but got "
                           f"{list(df.columns)}")
    df["id"] = df["id"].astype(str)
    dup = df["id"][df["id"].duplicated()].unique()
    if len(dup):
        raise PairingError(f"Expected unique item ids in the scores of {name} but got duplicates "
                           f"{list(dup[:3])}")
    if "snr" not in df.columns:
        df["snr"] = np.nan
    return df.set_index("id")


def align(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    """Join two :func:`score_table` results on item id; refuse different test sets.

    Returns:
        One row per item with the columns of ``a`` suffixed ``_a`` and of ``b`` suffixed ``_b``.
    """
    only_a = sorted(set(a.index) - set(b.index))
    only_b = sorted(set(b.index) - set(a.index))
    if only_a or only_b:
        raise PairingError(
            f"Expected runs {name_a} (A) and {name_b} (B) to be scored on the same test items but "
            f"got {len(a)} and {len(b)} items: {len(only_a)} only in A {only_a[:3]}, "
            f"{len(only_b)} only in B {only_b[:3]} (different test sets or max_utterances)"
        )
    both = a.add_suffix("_a").join(b.add_suffix("_b"), how="inner").loc[a.index]
    sa, sb = both["snr_a"].astype(float), both["snr_b"].astype(float)
    bad = ~((sa == sb) | (sa.isna() & sb.isna()))
    if bad.any():
        item = bad[bad].index[0]
        raise PairingError(
            f"Expected runs {name_a} (A) and {name_b} (B) to agree on each item's SNR but got "
            f"{item!r} at {sa[item]} dB in A and {sb[item]} dB in B (different test sets)"
        )
    return both


def holm(p: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values in input order (statsmodels ``multipletests`` with
    ``method="holm"``, not its Holm-Sidak default); NaN entries are not in the family.

    >>> [round(x, 12) for x in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
    """
    from statsmodels.stats.multitest import multipletests  # noqa: PLC0415 - slow to import

    idx = [i for i, v in enumerate(p) if not math.isnan(v)]
    out = [float("nan")] * len(p)
    if idx:
        adjusted = multipletests([p[i] for i in idx], method="holm")[1]
        for i, q in zip(idx, adjusted, strict=True):
            out[i] = float(q)
    return out


def verdict(ci_low: float, ci_high: float, margin: float, n_units: int | None = None,
            min_units: int = MIN_CLUSTERS) -> Verdict:
    """Non-inferiority of B to A for a higher-is-better metric with margin ``margin`` > 0.

    ``n_units`` below ``min_units`` gives "insufficient" whatever the CI; None (unknown, e.g. a
    report of scores logged before units existed) judges the CI alone."""
    if n_units is not None and n_units < min_units:
        return "insufficient"
    if ci_low > -margin:
        return "non-inferior"
    if ci_high < -margin:
        return "inferior"
    return "inconclusive"


def verdict_reason(v: Verdict, n_units: int, unit: Unit, ci_low: float) -> str:
    """Why a verdict is "insufficient" (or "inconclusive" for want of a CI); "" otherwise."""
    if v == "insufficient":
        return (f"too few clusters: {n_units} {UNIT_NAMES[unit]} < {MIN_CLUSTERS}, too few "
                "independent units for a CI to support a verdict"
                + ("; --unit utterance judges these talkers only" if unit == "speaker" else ""))
    if not math.isfinite(ci_low):
        return f"no CI with {n_units} {UNIT_NAMES[unit]}"
    return ""


def mean_diff_ci(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float, CIMethod]:
    """Paired bootstrap CI of ``mean(b - a)``: BCa, else percentile when BCa gives NaN.

    Args:
        a, b: scores of the same items, shape (n,).
    """
    if len(a) < 2:
        return float("nan"), float("nan"), "none"
    from scipy.stats import bootstrap  # noqa: PLC0415

    def stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y - x, axis=axis)

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # a degenerate BCa is detected below, not shouted
            warnings.simplefilter("ignore")
            res = bootstrap((a, b), stat, paired=True, vectorized=True, n_resamples=n_resamples,
                            confidence_level=confidence, method=method,
                            rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high, method  # type: ignore[return-value]
    return float("nan"), float("nan"), "none"


def _tests(d: np.ndarray) -> tuple[float, float, float]:
    """(Wilcoxon p, paired t p, d_z) of the differences ``d``."""
    from scipy.stats import ttest_1samp, wilcoxon  # noqa: PLC0415

    if len(d) < 2:
        return float("nan"), float("nan"), float("nan")
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    if np.all(d == 0):
        p_w = 1.0
    else:
        p_w = float(wilcoxon(d, zero_method=ZERO_METHOD).pvalue)
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))):
        # a constant shift (up to float rounding of B - A): t is undefined, its limit certain
        return p_w, (1.0 if mean == 0 else 0.0), (float("nan") if mean == 0 else math.copysign(
            math.inf, mean))
    return p_w, float(ttest_1samp(d, 0.0).pvalue), mean / sd


def _interval(xa: np.ndarray, xb: np.ndarray, labels: np.ndarray, unit: Unit,
              ci: dict) -> tuple[float, float, CIMethod]:
    """The CI of ``mean(xb - xa)`` for ``unit``: clustered, or the former mixture-level BCa."""
    if unit == "mixture":
        return mean_diff_ci(xa, xb, **ci)
    low, high = cluster_bootstrap_ci(xb - xa, labels, **ci)
    return low, high, CLUSTER_CI if math.isfinite(low) else "none"


def _snr_levels(name: str, xa: np.ndarray, xb: np.ndarray, snr: np.ndarray, units: Units,
                keep: np.ndarray, unit: Unit, ci: dict) -> tuple[SnrDifference, ...]:
    labels, out = units.labels(unit), []
    for s in sorted(set(snr[keep & np.isfinite(snr)].tolist())):
        sel = keep & (snr == s)
        counts = units.counts(sel)
        n_units = len(set(labels[sel].tolist()))
        out.append(SnrDifference(
            name, float(s), counts["n_mixtures"], n_units, counts["n_utterances"],
            counts["n_talkers"], counts["n_noise_clips"], float(np.mean(xb[sel] - xa[sel])),
            *_interval(xa[sel], xb[sel], labels[sel], unit, ci)))
    return tuple(out)


def compare_scores(
    a: pd.DataFrame | Sequence[Mapping[str, object]],
    b: pd.DataFrame | Sequence[Mapping[str, object]],
    name_a: str = "A",
    name_b: str = "B",
    margins: Mapping[str, float] | None = None,
    metrics: Iterable[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    unit: Unit = "utterance",
) -> PairedComparison:
    """The paired analysis of B against A (see the module docstring).

    Args:
        a, b: per-utterance scores (``evaluate()`` rows or the ``per_utterance.csv`` table);
            ``utterance``, ``speaker`` and ``noise_clip`` columns name the units
            (``evaluate/units.py`` says what happens without them).
        name_a, name_b: run ids or labels, used in errors and in the result.
        margins: non-inferiority margins by metric, over :data:`DEFAULT_MARGINS`.
        metrics: which metrics (default: those of :data:`METRICS` that both tables have).
        confidence: CI level.
        n_resamples: bootstrap resamples.
        seed: bootstrap seed (each metric and SNR level restarts from it: order-independent).
        unit: what is resampled and tested: ``utterance``, ``speaker`` or ``mixture``.
    """
    if unit not in UNITS:
        raise PairingError(f"Expected unit one of {', '.join(UNITS)} but got {unit!r}")
    both = align(score_table(a, name_a), score_table(b, name_b), name_a, name_b)
    units = resolve_units(both)
    labels = units.labels(unit)
    margin = {**DEFAULT_MARGINS, **(margins or {})}
    names = [m for m in (metrics or METRICS)
             if f"enhanced_{m}_a" in both.columns and f"enhanced_{m}_b" in both.columns]
    if not names:
        raise PairingError(f"Expected enhanced_<metric> columns {list(METRICS)} in the scores of "
                           f"both {name_a} and {name_b} but got none in common")
    ci = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    snr = both["snr_a"].to_numpy(float)
    parts = []
    for name in names:
        xa = pd.to_numeric(both[f"enhanced_{name}_a"], errors="coerce").to_numpy(float)
        xb = pd.to_numeric(both[f"enhanced_{name}_b"], errors="coerce").to_numpy(float)
        keep = np.isfinite(xa) & np.isfinite(xb)
        d = xb[keep] - xa[keep]
        counts = units.counts(keep)
        n_units = len(set(labels[keep].tolist()))
        low, high, method = _interval(xa[keep], xb[keep], labels[keep], unit, ci)
        p_w, p_t, d_z = _tests(cluster_means(d, labels[keep]) if len(d) else d)
        mixed = mixed_model(d, units.utterance[keep],
                            None if units.talker is None else units.talker[keep], confidence)
        v = verdict(low, high, margin[name], n_units)  # a NaN CI: inconclusive
        nan = float("nan")
        parts.append(dict(
            metric=name, unit=unit, **counts, n_units=n_units, dropped=int((~keep).sum()),
            mean_a=float(np.mean(xa[keep])) if len(d) else nan,
            mean_b=float(np.mean(xb[keep])) if len(d) else nan,
            mean_diff=float(np.mean(d)) if len(d) else nan,
            median_diff=float(np.median(d)) if len(d) else nan,
            ci_low=low, ci_high=high, ci_method=method, p_wilcoxon=p_w, p_ttest=p_t, d_z=d_z,
            margin=float(margin[name]), verdict=v,
            verdict_reason=verdict_reason(v, n_units, unit, low),
            mixed_delta=mixed.delta, mixed_se=mixed.se, mixed_ci_low=mixed.ci_low,
            mixed_ci_high=mixed.ci_high, mixed_model=mixed.model, mixed_note=mixed.note,
            per_snr=_snr_levels(name, xa, xb, snr, units, keep, unit, ci), diffs=tuple(d.tolist()),
        ))
    p_w_holm = holm([p["p_wilcoxon"] for p in parts])
    p_t_holm = holm([p["p_ttest"] for p in parts])
    out = tuple(
        MetricDifference(**p, p_wilcoxon_holm=hw, p_ttest_holm=ht)
        for p, hw, ht in zip(parts, p_w_holm, p_t_holm, strict=True)
    )
    total = units.counts()
    return PairedComparison(
        name_a, name_b, len(both), out, confidence, n_resamples, seed, unit,
        total["n_utterances"], total["n_talkers"], total["n_noise_clips"], units.note)


def parse_margins(specs: Iterable[str]) -> dict[str, float]:
    """``["stoi=0.02", "si_sdr=1"]`` -> ``{"stoi": 0.02, "si_sdr": 1.0}`` (positive numbers).

    >>> parse_margins(["stoi=0.02"])
    {'stoi': 0.02}
    """
    out: dict[str, float] = {}
    for spec in specs:
        name, eq, value = spec.partition("=")
        name = name.strip()
        if not eq or name not in METRICS:
            raise PairingError(f"Expected --margin METRIC=VALUE with METRIC one of "
                               f"{', '.join(METRICS)} but got {spec!r}")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not (math.isfinite(number) and number > 0):
            raise PairingError(f"Expected a positive number as the margin of {name} but got "
                               f"{value!r} in {spec!r}")
        out[name] = number
    return out


__all__ = [
    "DEFAULT_MARGINS", "METRICS", "MIN_CLUSTERS", "UNITS", "MetricDifference", "PairedComparison",
    "PairingError", "SnrDifference", "Unit", "align", "compare_scores", "holm", "mean_diff_ci",
    "parse_margins", "score_table", "verdict",
]
