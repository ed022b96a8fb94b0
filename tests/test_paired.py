"""Paired per-utterance statistics: hand-checkable numbers from the pure functions, then real
MLflow runs carrying per-utterance CSVs in evaluate()'s format (the evaluation hook, the report
block and ``seofp compare``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from seofp_lab import cli, tracking
from seofp_lab.evaluate.clustered import (
    cluster_bootstrap_ci,
    cluster_means,
    expanded_tail,
    mixed_model,
)
from seofp_lab.evaluate.paired import (
    METRICS,
    PairingError,
    compare_scores,
    holm,
    mean_diff_ci,
    parse_margins,
    verdict,
)
from seofp_lab.evaluate.paired_runs import after_evaluation, compare_runs, log_comparison
from seofp_lab.evaluate.units import UNITS
from seofp_lab.report import build_report

SNRS = (0.0, 5.0)
P_Z4 = math.erfc(4 / math.sqrt(2))  # two-sided normal p-value of z = 4


def rows(n: int = 12, shift: dict[str, float] | None = None, ids: list[str] | None = None
         ) -> list[dict]:
    """Per-utterance rows as evaluate() logs them: enhanced scores are ``base + shift``."""
    shift = shift or {}
    out = []
    for i in range(n):
        r = {"id": ids[i] if ids else f"utt{i:03d}", "speaker": "spk", "noise": "babble",
             "snr": SNRS[i % 2]}
        for m in METRICS:
            base = {"pesq_wb": 2.0, "pesq_nb": 2.5, "stoi": 0.75, "estoi": 0.625, "si_sdr": 10.0}[m]
            r[f"noisy_{m}"] = base - 0.5
            r[f"enhanced_{m}"] = base + i / 64 + shift.get(m, 0.0)  # binary fractions: exact
        out.append(r)
    return out


def diff_rows(d: np.ndarray, metric: str = "stoi", snr: np.ndarray | None = None
              ) -> tuple[list[dict], list[dict]]:
    """Run A at 0.5 + i/100, run B = A + d, for one metric."""
    a = [{"id": f"u{i}", "snr": 0.0 if snr is None else snr[i], f"enhanced_{metric}": 0.5 + i / 100}
         for i in range(len(d))]
    b = [{**r, f"enhanced_{metric}": r[f"enhanced_{metric}"] + d[i]} for i, r in enumerate(a)]
    return a, b


# ------------------------------------------------------------------------------- pure functions
def test_constant_shift_gives_the_shift_and_a_zero_width_ci() -> None:
    shift = {"pesq_wb": 0.125, "pesq_nb": -0.25, "stoi": 0.0078125, "estoi": 0.0, "si_sdr": 1.5}
    cmp = compare_scores(rows(16), rows(16, shift=shift), "runA", "runB", n_resamples=500)
    assert cmp.n_items == 16 and [m.metric for m in cmp.metrics] == list(METRICS)
    for m in cmp.metrics:
        s = shift[m.metric]
        assert m.n == 16 and m.dropped == 0
        assert m.mean_diff == pytest.approx(s, abs=1e-12)
        assert m.median_diff == pytest.approx(s, abs=1e-12)
        assert m.ci_low == pytest.approx(s, abs=1e-9) and m.ci_high == pytest.approx(s, abs=1e-9)
    assert cmp.metric("pesq_wb").ci_method == "cluster expanded percentile"
    old = compare_scores(rows(16), rows(16, shift=shift), n_resamples=500, unit="mixture")
    assert old.metric("pesq_wb").ci_method == "percentile"  # BCa degenerates on a constant
    assert cmp.metric("pesq_wb").verdict == "non-inferior"
    assert cmp.metric("pesq_nb").verdict == "inferior"  # -0.25 < -0.05
    assert cmp.metric("estoi").verdict == "non-inferior"  # 0 > -0.01
    # 16 equal positive differences, all tied: scipy's normal approximation with the tie
    # correction: T+ = 136, E = 16*17/4 = 68, Var = 16*17*33/24 - (16**3 - 16)/48 = 289, z = 4
    assert cmp.metric("pesq_wb").p_wilcoxon == pytest.approx(P_Z4)
    assert cmp.metric("pesq_nb").p_wilcoxon == pytest.approx(P_Z4)  # negative: same p
    assert cmp.metric("estoi").p_wilcoxon == 1.0 and math.isnan(cmp.metric("estoi").d_z)
    assert cmp.metric("pesq_wb").d_z == math.inf and cmp.metric("pesq_nb").d_z == -math.inf
    assert cmp.metric("pesq_wb").p_ttest == 0.0 and cmp.metric("estoi").p_ttest == 1.0


def test_t_test_and_effect_size_match_a_hand_computation() -> None:
    a, b = diff_rows(np.array([1.0, 2.0, 3.0, 4.0]), metric="si_sdr")
    m = compare_scores(a, b, n_resamples=200).metric("si_sdr")
    sd = math.sqrt(((1.5**2 + 0.5**2) * 2) / 3)  # sample sd of 1..4
    assert m.mean_diff == pytest.approx(2.5) and m.median_diff == pytest.approx(2.5)
    assert m.d_z == pytest.approx(2.5 / sd)
    t = 2.5 / (sd / 2)  # 3.873, df 3
    from scipy.stats import t as t_dist

    assert m.p_ttest == pytest.approx(2 * t_dist.sf(t, 3))
    assert m.p_wilcoxon == pytest.approx(2 / 2**4)  # all four positive, exact
    assert 1.0 <= m.ci_low <= 2.5 <= m.ci_high <= 4.0  # the mean of a resample lies in [min, max]


@pytest.mark.parametrize(
    ("centre", "spread", "expected"),
    [(0.0, 0.001, "non-inferior"), (-0.05, 0.001, "inferior"), (-0.01, 0.002, "inconclusive")],
)
def test_verdicts_on_constructed_differences(centre: float, spread: float, expected: str) -> None:
    d = centre + spread * np.array([-1.0, 1.0] * 10)  # mean = centre, every d within the spread
    a, b = diff_rows(d)
    m = compare_scores(a, b, n_resamples=2000).metric("stoi")  # default margin 0.01
    assert m.mean_diff == pytest.approx(centre, abs=1e-12)
    assert centre - spread - 1e-12 <= m.ci_low < m.ci_high <= centre + spread + 1e-12
    assert m.verdict == expected and m.margin == 0.01


def test_verdict_rule_at_the_boundaries() -> None:
    assert verdict(-0.0099, 0.02, 0.01) == "non-inferior"
    assert verdict(-0.01, 0.02, 0.01) == "inconclusive"  # must be strictly above -margin
    assert verdict(-0.03, -0.0101, 0.01) == "inferior"
    assert verdict(-0.03, -0.01, 0.01) == "inconclusive"


def test_nan_pairs_are_dropped_and_counted() -> None:
    a, b = rows(10), rows(10, shift={"pesq_wb": 0.1})
    for i in (1, 4, 7):
        a[i]["enhanced_pesq_wb"] = float("nan")
        a[i]["enhanced_pesq_wb_error"] = "No utterances detected"
    for i in (4, 8):  # 4 fails in both runs: counted once
        b[i]["enhanced_pesq_wb"] = float("nan")
        b[i]["enhanced_pesq_wb_error"] = "No utterances detected"
    cmp = compare_scores(a, b, n_resamples=300)
    m = cmp.metric("pesq_wb")
    kept = [i for i in range(10) if i not in (1, 4, 7, 8)]
    assert (m.n, m.dropped) == (6, 4)
    assert m.mean_a == pytest.approx(np.mean([a[i]["enhanced_pesq_wb"] for i in kept]))
    assert m.mean_diff == pytest.approx(0.1)
    assert (cmp.metric("stoi").n, cmp.metric("stoi").dropped) == (10, 0)
    assert [r["dropped"] for r in cmp.rows() if r["scope"] == "all"] == [4, 0, 0, 0, 0]


def test_different_test_items_are_refused_naming_both_runs() -> None:
    a = rows(6)
    b = rows(6, ids=[f"utt{i:03d}" for i in range(5)] + ["other"])
    with pytest.raises(PairingError, match=r"Expected runs runAAA \(A\) and runBBB \(B\)") as e:
        compare_scores(a, b, "runAAA", "runBBB")
    assert "1 only in A ['utt005']" in str(e.value) and "1 only in B ['other']" in str(e.value)
    moved = rows(6)
    moved[2]["snr"] = 10.0  # same ids, another test set
    with pytest.raises(PairingError, match="agree on each item's SNR.*'utt002'"):
        compare_scores(a, moved, "runAAA", "runBBB")
    with pytest.raises(PairingError, match="unique item ids"):
        compare_scores(a, a + a[:1], "runAAA", "runBBB")


def test_holm_matches_a_hand_computation_and_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    q = list(rng.uniform(0, 0.2, 7))
    assert holm(q) == pytest.approx(list(multipletests(q, method="holm")[1]))
    out = holm([0.02, float("nan"), 0.5])  # NaN is not in the family of 2
    assert out[0] == pytest.approx(0.04) and math.isnan(out[1]) and out[2] == pytest.approx(0.5)


def test_holm_is_applied_across_the_metrics() -> None:
    # every metric: 16 equal positive differences, p = P_Z4 each; Holm over 5: 5 * p for all
    cmp = compare_scores(rows(16), rows(16, shift=dict.fromkeys(METRICS, 0.5)), n_resamples=200)
    assert [m.p_wilcoxon_holm for m in cmp.metrics] == pytest.approx([5 * P_Z4] * 5)
    b = rows(16, shift={"stoi": 0.5})
    b[0]["enhanced_pesq_wb"] += 0.5  # one positive difference, the rest zero
    cmp = compare_scores(rows(16), b, n_resamples=200)
    raw = [m.p_wilcoxon for m in cmp.metrics]
    assert raw[0] > P_Z4 and raw[1:] == pytest.approx([1.0, P_Z4, 1.0, 1.0])
    assert [m.p_wilcoxon_holm for m in cmp.metrics] == pytest.approx(holm(raw))
    assert cmp.metric("stoi").p_wilcoxon_holm == pytest.approx(5 * P_Z4)  # smallest of 5


def test_per_snr_split() -> None:
    snr = np.array([0.0, 5.0] * 8)
    d = np.where(snr == 0.0, 0.1, 0.3)
    a, b = diff_rows(d, metric="pesq_wb", snr=snr)
    m = compare_scores(a, b, n_resamples=300).metric("pesq_wb")
    assert m.mean_diff == pytest.approx(0.2)
    assert [(s.snr, s.n) for s in m.per_snr] == [(0.0, 8), (5.0, 8)]
    assert [s.mean_diff for s in m.per_snr] == pytest.approx([0.1, 0.3])
    bounds = [x for s in m.per_snr for x in (s.ci_low, s.ci_high)]
    assert bounds == pytest.approx([0.1, 0.1, 0.3, 0.3])
    assert m.ci_low > 0.1 and m.ci_high < 0.3  # the pooled mean is not a per-level one


def test_bootstrap_is_seeded_and_bca_on_ordinary_data() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(2.0, 0.3, 40)
    b = a + rng.normal(0.05, 0.1, 40)
    one, two = mean_diff_ci(a, b, seed=7), mean_diff_ci(a, b, seed=7)
    assert one == two and one[2] == "BCa"
    assert one[0] < float(np.mean(b - a)) < one[1]
    assert mean_diff_ci(a[:1], b[:1])[2] == "none"


def test_parse_margins() -> None:
    assert parse_margins(["stoi=0.02", "si_sdr=1"]) == {"stoi": 0.02, "si_sdr": 1.0}
    for bad, msg in (("stoi=abc", "positive number as the margin of stoi"),
                     ("stoi=-1", "positive number"), ("mos=0.1", "METRIC one of"),
                     ("stoi", "METRIC=VALUE")):
        with pytest.raises(PairingError, match=msg):
            parse_margins([bad])


# ---------------------------------------------------------------------------- units, clusters
def unit_rows(d: np.ndarray, utt: np.ndarray, talker: np.ndarray, clip: np.ndarray | None = None,
              metric: str = "stoi") -> tuple[list[dict], list[dict]]:
    """Runs A and B = A + d as evaluate() now logs them: ids ``<utterance>_rain_snr<snr>_<k>``."""
    a = []
    for i in range(len(d)):
        snr = SNRS[i % 2]
        a.append({"id": f"{utt[i]}_rain_snr{snr:g}_{i}", "speaker": str(talker[i]),
                  "utterance": str(utt[i]), "noise": "rain", "snr": snr,
                  "noise_clip": f"rain#{0 if clip is None else clip[i]}",
                  f"enhanced_{metric}": 0.5 + i / 1000})
    b = [{**r, f"enhanced_{metric}": r[f"enhanced_{metric}"] + d[i]} for i, r in enumerate(a)]
    return a, b


def test_duplicated_mixtures_shrink_the_mixture_ci_but_not_the_clustered_one() -> None:
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 0.01, 20)
    utt = np.array([f"u{i:02d}" for i in range(20)])
    a1, b1 = unit_rows(d, utt, utt)
    a2, b2 = unit_rows(np.repeat(d, 2), np.repeat(utt, 2), np.repeat(utt, 2))  # each mixed twice

    def width(a: list[dict], b: list[dict], unit: str) -> float:
        m = compare_scores(a, b, n_resamples=4000, unit=unit).metric("stoi")
        return m.ci_high - m.ci_low

    # resampling an utterance brings both copies: the same means, the same CI (same seed)
    assert width(a2, b2, "utterance") == pytest.approx(width(a1, b1, "utterance"), rel=1e-12)
    # as independent mixtures the copies look like twice the data: about 1/sqrt(2) as wide
    assert width(a2, b2, "mixture") < 0.8 * width(a1, b1, "mixture")
    m = compare_scores(a2, b2, n_resamples=500).metric("stoi")
    assert (m.n_mixtures, m.n_units, m.n_utterances) == (40, 20, 20)
    one = compare_scores(a1, b1, n_resamples=500).metric("stoi")
    assert m.p_ttest == pytest.approx(one.p_ttest)  # one mean per utterance: the same test


def test_cluster_ci_is_seeded_and_wider_than_the_plain_percentile_interval() -> None:
    rng = np.random.default_rng(2)
    d, labels = rng.normal(0.0, 1.0, 24), np.repeat(np.arange(12), 2)
    one = cluster_bootstrap_ci(d, labels, seed=3, n_resamples=2000)
    assert one == cluster_bootstrap_ci(d, labels, seed=3, n_resamples=2000)
    means = cluster_means(d, labels)
    assert means == pytest.approx([d[2 * i:2 * i + 2].mean() for i in range(12)])
    # 12 clusters: the tail is Phi(-sqrt(12/11) t_{0.975, 11}) < 2.5 %, so beyond the 2.5 % points
    from scipy.stats import norm, t

    tail = norm.cdf(-math.sqrt(12 / 11) * t.ppf(0.975, 11))
    assert expanded_tail(12, 0.95) == pytest.approx(tail) and tail < 0.025
    se = means.std(ddof=1) / math.sqrt(12)
    assert one[1] - one[0] > 2 * 1.96 * se * math.sqrt(11 / 12)  # wider than plug-in normal
    assert math.isnan(cluster_bootstrap_ci(d, np.zeros(24))[0])  # one cluster: no CI


def test_counts_follow_the_dropped_pairs() -> None:
    utt = np.repeat([f"u{i:02d}" for i in range(12)], 2)
    talker = np.repeat([f"t{i % 3}" for i in range(12)], 2)
    clip = np.arange(24) % 4
    a, b = unit_rows(np.full(24, 0.001), utt, talker, clip)
    for i in (0, 1, 2):  # u00 loses both mixtures, u01 one
        b[i]["enhanced_stoi"] = float("nan")
    cmp = compare_scores(a, b, n_resamples=300)
    assert (cmp.n_items, cmp.n_utterances, cmp.n_talkers, cmp.n_noise_clips) == (24, 12, 3, 4)
    m = cmp.metric("stoi")
    assert (m.n_mixtures, m.dropped, m.n_units, m.n_utterances, m.n_talkers) == (21, 3, 11, 11, 3)
    assert m.n_noise_clips == 4 and m.unit == "utterance"
    assert [(s.snr, s.n_mixtures, s.n_units) for s in m.per_snr] == [(0.0, 10, 10), (5.0, 11, 11)]
    row = next(r for r in cmp.rows() if r["scope"] == "all")
    assert (row["n_utterances"], row["n_talkers"], row["n_noise_clips"]) == (11, 3, 4)
    assert cmp.unit_note == ""  # every unit column was there


def test_too_few_clusters_give_no_verdict() -> None:
    utt = np.array([f"u{i}" for i in range(9)])
    a, b = unit_rows(np.full(9, 0.001), utt, utt)  # CI [0.001, 0.001]: would be non-inferior
    m = compare_scores(a, b, n_resamples=300).metric("stoi")
    assert m.verdict == "insufficient" and m.ci_low == pytest.approx(0.001)
    assert m.verdict_reason.startswith("too few clusters: 9 utterances < 10")
    utt = np.array([f"u{i}" for i in range(30)])
    a, b = unit_rows(np.full(30, 0.001), utt, np.array([f"t{i % 3}" for i in range(30)]))
    assert compare_scores(a, b, n_resamples=300).metric("stoi").verdict == "non-inferior"
    m = compare_scores(a, b, n_resamples=300, unit="speaker").metric("stoi")
    assert (m.verdict, m.n_units) == ("insufficient", 3) and "3 talkers < 10" in m.verdict_reason
    assert verdict(0.0, 0.1, 0.01, n_units=9) == "insufficient"
    assert verdict(0.0, 0.1, 0.01, n_units=10) == "non-inferior"
    with pytest.raises(PairingError, match="Expected unit one of utterance, speaker, mixture"):
        compare_scores(a, b, unit="listener")


def test_mixed_model_recovers_a_known_effect() -> None:
    rng = np.random.default_rng(11)
    n_t, n_u, per = 8, 40, 3
    tal = np.repeat(np.arange(n_u) % n_t, per)
    utt = np.repeat(np.arange(n_u), per)
    d = 0.3 + rng.normal(0, 0.2, n_t)[tal] + rng.normal(0, 0.3, n_u)[utt] + rng.normal(0, 0.2,
                                                                                      n_u * per)
    est = mixed_model(d, utt.astype(str), tal.astype(str))
    truth_se = math.sqrt(0.2**2 / n_t + 0.3**2 / n_u + 0.2**2 / (n_u * per))  # 0.087
    assert est.model == "talker + utterance" and est.note == ""
    assert est.ci_low < 0.3 < est.ci_high and abs(est.delta - 0.3) < 3 * truth_se
    assert 0.5 * truth_se < est.se < 2 * truth_se
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.959964 * est.se, rel=1e-4)


def test_mixed_model_one_level_matches_the_balanced_anova_and_degrades_gracefully() -> None:
    rng = np.random.default_rng(4)
    utt = np.repeat(np.arange(15), 2)
    d = rng.normal(0, 1, 15)[utt] + rng.normal(0, 0.5, 30)
    est = mixed_model(d, utt.astype(str), np.zeros(30).astype(str))  # one talker
    means = cluster_means(d, utt)
    # balanced one-way REML: the grand mean, with SE = sd(utterance means) / sqrt(15)
    assert est.model == "utterance" and "1 talker(s)" in est.note
    assert est.delta == pytest.approx(d.mean(), rel=1e-6)
    assert est.se == pytest.approx(means.std(ddof=1) / math.sqrt(15), rel=1e-3)
    flat = mixed_model(np.full(30, 0.2), utt.astype(str), None)
    assert flat.delta == pytest.approx(0.2) and math.isnan(flat.se) and "no variance" in flat.note
    lone = mixed_model(d[::2], utt[::2].astype(str), None)  # one mixture per utterance, no talkers
    assert math.isnan(lone.se) and "nothing to model" in lone.note and lone.model == ""


def test_old_scores_without_unit_columns_say_how_units_were_found() -> None:
    utt = np.repeat([f"p23{i}_00{i}" for i in range(10)], 2)
    a, b = unit_rows(np.linspace(0, 0.01, 20), utt, utt)
    old_a = [{k: v for k, v in r.items() if k not in ("utterance", "noise_clip")} for r in a]
    old_b = [{k: v for k, v in r.items() if k not in ("utterance", "noise_clip")} for r in b]
    cmp = compare_scores(old_a, old_b, n_resamples=300)
    assert (cmp.n_utterances, cmp.n_noise_clips) == (10, None)  # derived from the ids
    assert "utterances derived from the item ids" in cmp.unit_note
    assert "noise recordings unknown" in cmp.unit_note and "re-evaluate" in cmp.unit_note
    new = compare_scores(old_a, b, n_resamples=300)  # B (just evaluated) has them: used
    assert "utterance" not in new.unit_note and new.n_noise_clips == 1
    plain = compare_scores(rows(12), rows(12), n_resamples=300)  # ids name no utterance
    assert plain.n_utterances == 12 and "each mixture is taken as its own utterance" in \
        plain.unit_note
    mixed_ids = old_b[:10] + [{**r, "id": f"x{i}"} for i, r in enumerate(old_b[10:])]
    with pytest.raises(PairingError, match=r"got 10 of 20 ids of the form .*re-evaluate"):
        compare_scores(mixed_ids, mixed_ids)
    moved = [dict(r) for r in b]
    moved[3]["utterance"] = "elsewhere"
    with pytest.raises(PairingError, match="agree on the utterance of each item"):
        compare_scores(a, moved)


# ----------------------------------------------------------------------- real MLflow runs
@dataclass
class Store:
    root: Path
    base: str  # baseline with per-utterance scores
    comp: str  # tagged with base; scores shifted
    bare: str  # baseline without scores
    orphan: str  # tagged with bare
    other: str  # same item ids, another corpus seed (another test set)
    comp_rows: list[dict]


SHIFT = {"pesq_wb": 0.125, "pesq_nb": -0.25, "stoi": 0.0, "estoi": -2.0**-10, "si_sdr": 0.25}


def _log_run(name: str, scores: list[dict] | None, baseline: str | None = None,
             corpus_seed: int | None = None) -> str:
    tags = {tracking.TAG_ROLE: "baseline" if baseline is None else "seofp",
            tracking.TAG_FORMAT: "fp32" if baseline is None else "s1e5",
            tracking.TAG_MODEL: "blstm", tracking.TAG_CORPUS: "embedded"}
    if baseline:
        tags[tracking.TAG_BASELINE] = baseline
    with tracking.start_run("paired", name, tags) as run_id:
        if scores is not None:
            tracking.log_metrics({m: float(np.mean([r[f"enhanced_{m}"] for r in scores]))
                                  for m in METRICS})
            tracking.log_table(scores, "evaluation/per_utterance.csv")  # as evaluate() does
        if corpus_seed is not None:
            tracking.log_text(yaml.safe_dump({"corpus": {"seed": corpus_seed}}),
                              tracking.CONFIG_ARTIFACT)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("paired") / "workspace"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        base = _log_run("base", rows(24), corpus_seed=1)
        comp_rows = rows(24, shift=SHIFT)
        comp = _log_run("s1e5", comp_rows, baseline=base, corpus_seed=1)
        bare = _log_run("bare", None)
        orphan = _log_run("orphan", comp_rows, baseline=bare)
        other = _log_run("other", comp_rows, corpus_seed=2)
    return Store(root, base, comp, bare, orphan, other, comp_rows)


@pytest.fixture
def env(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(store.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store


def test_evaluation_hook_logs_metrics_csv_and_plot(env: Store, capsys: pytest.CaptureFixture
                                                   ) -> None:
    cmp = after_evaluation(env.comp, env.comp_rows)
    assert cmp is not None and cmp.run_a == env.base
    logged = tracking.get_run(env.comp).data.metrics
    for m, s in SHIFT.items():
        assert logged[f"paired_{m}_delta"] == pytest.approx(s, abs=1e-9)
        assert logged[f"paired_{m}_ci_low"] == pytest.approx(s, abs=1e-9)
        assert logged[f"paired_{m}_ci_high"] == pytest.approx(s, abs=1e-9)
    assert logged["paired_stoi_p"] == 1.0  # all-zero differences
    # rows() ids name no utterance and carry no unit columns: each mixture is its own utterance
    assert (logged["paired_n_mixtures"], logged["paired_n_utterances"]) == (24, 24)
    assert logged["paired_n_talkers"] == 1 and "paired_n_noise_clips" not in logged
    assert logged["paired_pesq_wb_n_units"] == 24 and logged["paired_min_clusters"] == 10
    assert logged["paired_pesq_wb_mixed_delta"] == pytest.approx(SHIFT["pesq_wb"])
    assert tracking.get_run(env.comp).data.tags[tracking.TAG_PAIRED_UNIT] == "utterance"
    # 24 equal |differences| are all tied, so scipy uses the normal approximation: T+ = 300,
    # E = n(n+1)/4 = 150, Var = n(n+1)(2n+1)/24 - (n^3 - n)/48 = 1225 - 287.5 = 937.5
    from scipy.stats import norm

    p = 2 * norm.sf(150 / math.sqrt(937.5))
    # four metrics at p and STOI at 1: Holm multiplies by 5, 4, 3, 2, the running max keeps 5 p
    assert logged["paired_pesq_wb_p"] == pytest.approx(5 * p)
    assert logged["paired_estoi_p"] == pytest.approx(5 * p)
    files = {Path(a.path).name for a in tracking.client().list_artifacts(env.comp, "evaluation")}
    assert {"paired.csv", "paired.png"} <= files
    table = pd.read_csv(tracking.download_artifact(env.comp, "evaluation/paired.csv"))
    assert len(table) == 5 + 5 * len(SNRS)
    assert set(table.loc[table.scope == "snr", "snr"]) == set(SNRS)
    assert table.loc[table.metric == "pesq_nb", "verdict"].iloc[0] == "inferior"
    assert {"unit", "n_units", "n_utterances", "n_talkers", "n_noise_clips", "mixed_delta",
            "mixed_se", "mixed_note", "verdict_reason", "unit_note"} <= set(table.columns)
    out = capsys.readouterr().out
    assert "non-inferior" in out and "24 (24 utt.)" in out  # the rich table, with its counts
    assert "Mixed model" in out
    assert "each mixture is taken as its own utterance" in " ".join(out.split())


def test_evaluation_hook_without_baseline_scores_says_so_in_one_line(
    env: Store, capsys: pytest.CaptureFixture
) -> None:
    assert after_evaluation(env.orphan, env.comp_rows) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and env.bare in err[0] and "per-utterance scores" in err[0]
    assert not any(k.startswith("paired_") for k in tracking.get_run(env.orphan).data.metrics)
    assert after_evaluation(env.base, rows(24)) is None  # no baseline tag: nothing to do, quiet
    assert capsys.readouterr().err == ""


def test_different_test_set_hash_is_refused(env: Store) -> None:
    with pytest.raises(PairingError, match=f"Expected runs {env.base} .A. and {env.other} .B. to "
                       "use the same test set but got test-set hashes"):
        compare_runs(env.base, env.other)


def test_report_shows_the_paired_block(env: Store, tmp_path: Path) -> None:
    after_evaluation(env.comp, env.comp_rows)
    text = build_report(run_ids=[env.base, env.comp], out=tmp_path / "r.html",
                        audio_items=0).html.read_text()
    block = text[text.index("<h2>vs control and baseline (paired)</h2>"):]
    assert "+0.125 [+0.125, +0.125]" in block and "−0.250 [−0.250, −0.250]" in block
    assert "−0.0010 [−0.0010, −0.0010]" in block  # ESTOI: 4 decimals
    assert 'class="d v-inferior">inferior<' in block and "v-non-inferior" in block
    assert env.base[:8] in block
    assert "24 mixtures · 24 utterances · 1 talkers · CI over utterances" in block
    old = _log_run("old", None, baseline=env.base)  # paired_* logged before units existed
    with tracking.resume_run(old):
        tracking.log_metrics({"paired_stoi_delta": 0.001, "paired_stoi_ci_low": 0.0,
                              "paired_stoi_ci_high": 0.002})
    few = _log_run("few", None, baseline=env.base)  # 3 units: no verdict whatever the CI
    with tracking.resume_run(few):
        tracking.log_metrics({"paired_stoi_delta": 0.001, "paired_stoi_ci_low": 0.0,
                              "paired_stoi_ci_high": 0.002, "paired_stoi_n_units": 3})
    text = build_report(run_ids=[env.base, old, few], out=tmp_path / "o.html",
                        audio_items=0).html.read_text()
    block = text[text.index("<h2>vs control and baseline (paired)</h2>"):]
    assert "unit unknown: every mixture taken as independent" in block
    assert 'class="d v-non-inferior">non-inferior<' in block
    assert 'class="d v-insufficient">insufficient<' in block
    plain = build_report(run_ids=[env.base], out=tmp_path / "p.html", audio_items=0)
    assert "No compared run has paired statistics" in plain.html.read_text()


def test_only_the_reported_sets_set_the_paired_tags(env: Store) -> None:
    """``paired_*`` and ``baseline_paired_*`` each have their run A and unit tags; a C-engine or
    another corpus's comparison leaves them alone (it would mislabel the report's blocks)."""
    run = _log_run("tags", None, baseline=env.base)
    by_utterance = compare_runs(env.base, env.comp, n_resamples=200)
    by_mixture = compare_runs(env.base, env.comp, n_resamples=200, unit="mixture")
    log_comparison(by_utterance, run)
    for prefix in ("engine_intadd_", "vbd/", "baseline_"):
        log_comparison(by_mixture, run, prefix)
    data = tracking.get_run(run).data
    assert data.tags[tracking.TAG_PAIRED_AGAINST] == env.base
    assert data.tags[tracking.TAG_PAIRED_UNIT] == "utterance"
    assert data.tags[tracking.TAG_BASELINE_PAIRED_AGAINST] == env.base
    assert data.tags[tracking.TAG_BASELINE_PAIRED_UNIT] == "mixture"
    for key in ("paired_stoi_delta", "engine_intadd_paired_stoi_delta", "vbd/paired_stoi_delta",
                "baseline_paired_stoi_delta"):
        assert key in data.metrics, key


def test_compare_with_the_baseline_of_a_controlled_run_keeps_the_control_metrics(
        env: Store, capsys: pytest.CaptureFixture) -> None:
    control = _log_run("control", rows(24), baseline=env.base, corpus_seed=1)
    variant = _log_run("variant", rows(24, shift=SHIFT), baseline=env.base, corpus_seed=1)
    with tracking.resume_run(variant):
        tracking.set_tags({tracking.TAG_CONTROL: control})
    for reference in (control, env.base):
        assert cli.main(["compare", reference, variant, "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert f"against its control {control}" in out and f"against its baseline {env.base}" in out
    data = tracking.get_run(variant).data
    assert data.tags[tracking.TAG_PAIRED_AGAINST] == control
    assert data.tags[tracking.TAG_BASELINE_PAIRED_AGAINST] == env.base
    assert data.metrics["paired_pesq_wb_delta"] == pytest.approx(SHIFT["pesq_wb"])
    assert data.metrics["baseline_paired_pesq_wb_delta"] == pytest.approx(SHIFT["pesq_wb"])
    assert cli.main(["compare", env.comp, variant, "--resamples", "200", "--no-log"]) == 0
    assert f"against its reference {env.comp}" in capsys.readouterr().out


def test_cli_exit_codes(env: Store, capsys: pytest.CaptureFixture) -> None:
    fresh = _log_run("fresh", rows(24, shift=SHIFT), baseline=env.base, corpus_seed=1)
    assert cli.main(["compare", env.base[:8], fresh, "--no-log", "--resamples", "500"]) == 0
    out = capsys.readouterr().out
    assert "Paired" in out and "per input SNR" in out
    assert re.search(r"PESQ-nb .*│ inferior", out) and re.search(r"STOI .*│ non-inferior", out)
    assert not any(k.startswith("paired_") for k in tracking.get_run(fresh).data.metrics)
    assert cli.main(["compare", env.base, fresh, "--unit", "speaker", "--no-log",
                     "--resamples", "500"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"STOI .*│ insufficient", out) and "1 talkers < 10" in " ".join(out.split())
    assert cli.main(["compare", env.base, fresh, "--unit", "mixture", "--no-log",
                     "--resamples", "500"]) == 0
    assert "for comparison only" in " ".join(capsys.readouterr().out.split())  # wrapped notes
    assert cli.main(["compare", env.base, fresh, "--margin", "pesq_nb=0.5",
                     "--resamples", "500"]) == 0
    logged = tracking.get_run(fresh).data.metrics
    assert logged["paired_pesq_nb_margin"] == 0.5 and logged["paired_pesq_nb_delta"] < 0
    capsys.readouterr()
    for argv, msg in (
        ([env.base, fresh, "--margin", "stoi=abc"], "Expected a positive number"),
        ([env.base, fresh, "--margin", "mos=1"], "Expected --margin METRIC=VALUE"),
        ([env.base, "nosuchrun"], "Expected an MLflow run id"),
        ([env.bare, fresh], f"Expected run {env.bare} to have per-utterance scores"),
        ([env.base, env.other], "to use the same test set"),
    ):
        assert cli.main(["compare", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("seofp compare: error: ") and msg in err, err


def test_cli_unit_choices_are_the_library_units(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", "a", "b", "--unit", "listener"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'listener'" in err
    assert "choose from utterance, speaker, mixture" in err or \
        "choose from 'utterance', 'speaker', 'mixture'" in err  # argparse's quoting varies
    assert UNITS == ("utterance", "speaker", "mixture")


def test_doctests_of_the_statistics_modules() -> None:
    import doctest

    from seofp_lab.evaluate import clustered, paired, units

    for module in (clustered, paired, units):
        assert doctest.testmod(module).failed == 0, module.__name__
