"""The study analysis, in the order of docs/listening.md#analysis-overview: flow, null leak, catch
and trap trials, primary, detection, listeners (with the rater model), conditions, confidence,
ladder, sensitivity; and the claim it allows, decided by
:func:`seofp_lab.listening.decision.decide` (docs/listening_analysis.md#the-decision-rule).

Input: the tables of :mod:`seofp_lab.listening.data` (one row per answered trial; one per
participant) and optionally the cheating detector's flags. Output: :class:`StudyAnalysis` with
flat metrics (for MLflow), tables, text and the :class:`~seofp_lab.listening.decision.Claim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from seofp_lab.listening import stats as S
from seofp_lab.listening.bias import confusion_matrix, per_listener_bias
from seofp_lab.listening.decision import Claim, decide, validity_failures
from seofp_lab.listening.power import detection_power
from seofp_lab.listening.protocol import StudyDefinition


@dataclass
class StudyAnalysis:
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    decision: Claim | None = None
    lines: list[str] = field(default_factory=list)
    ladder: object | None = None  # PsychometricFit when the study had a ladder

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def claim(self) -> str:
        """The claim's sentence (empty before :func:`analyze` decided)."""
        return self.decision.text if self.decision is not None else ""


def exclusions(trials: pd.DataFrame, participants: pd.DataFrame, study: StudyDefinition,
               flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """The pre-registered exclusion rules, one row per participant with the reasons that hit.

    ``flags``: the cheating detector's table (listener, flagged, reason); a flagged listener
    is excluded with the detector's reason.
    """
    scr = study.screening
    flagged = {} if flags is None or flags.empty else {
        r.listener: str(r.reason) for r in flags.itertuples() if bool(r.flagged)}
    out = []
    for _, p in participants.iterrows():
        mine = trials[trials.listener == p.listener]
        reasons = []
        if p.status == "screened_out":
            reasons.append("screened out: " + str(p.screen_exclusion))
        elif p.status not in ("debrief", "done"):
            reasons.append("incomplete")
        test = mine[mine.trial_type.isin(["main", "catch", "null", "trap"])]
        catch = mine[mine.trial_type == "catch"]
        catch_fail = len(catch) > 0 and catch.correct.mean() < scr.catch_min_fraction
        if catch_fail:
            reasons.append(f"catch {int(catch.correct.sum())}/{len(catch)}")
        traps = mine[mine.trial_type == "trap"]
        if len(traps) and traps.correct.mean() < scr.trap_min_fraction:
            reasons.append(f"trap {int(traps.correct.sum())}/{len(traps)}")
        if p.listener in flagged:
            reasons.append(f"flagged: {flagged[p.listener]}")
        if len(test):
            if test.answered_without_x.mean() > scr.max_no_x_fraction:
                reasons.append("answered without X")
            if test.rt_ms.median() < scr.min_median_rt_s * 1000:
                reasons.append("median RT too short")
            if test.groupby("block").blur_events.sum().max() > scr.max_blur_per_block:
                reasons.append("blur events")
            same = test.response.value_counts(normalize=True).max()
            if same >= scr.max_same_response and catch_fail:
                reasons.append("identical responses")
        out.append({"listener": p.listener, "excluded": bool(reasons),
                    "reasons": "; ".join(reasons)})
    return pd.DataFrame(out, columns=["listener", "excluded", "reasons"])


def analyze(trials: pd.DataFrame, participants: pd.DataFrame, study: StudyDefinition,
            boot: int = 1000, seed: int = 0, flags: pd.DataFrame | None = None
            ) -> StudyAnalysis:
    """Run every pre-registered analysis; nothing here reads the store or writes files.

    ``flags``: the cheating detector's table (listener, flagged, reason), when one ran.
    """
    plan, out = study.analysis, StudyAnalysis()
    m, say = out.metrics, out.lines.append
    ex = exclusions(trials, participants, study, flags)
    out.tables["exclusions"] = ex
    keep = set(ex.listener[~ex.excluded])
    done = set(participants.listener[participants.status.isin(["debrief", "done"])])
    m.update(recruited=len(participants), completed=len(done), analysed=len(keep),
             screened_out=int((participants.status == "screened_out").sum()))
    say(f"Study {study.name}: {m['recruited']} recruited, {m['screened_out']} screened out, "
        f"{m['completed']} completed, {m['analysed']} analysed")
    for reason, n in ex[ex.excluded].reasons.str.split("; ").explode().value_counts().items():
        say(f"  excluded: {reason}: {n}")

    # validity: null trials (blinding), catch and trap trials (the listening chain and
    # attention) over completed listeners, before exclusions; cheating flags
    nulls = trials[(trials.trial_type == "null") & trials.listener.isin(done)]
    null_k, null_n = int(nulls.correct.sum()), len(nulls)
    if null_n:
        kstar = S.min_correct(null_n, plan.alpha)
        m.update(null_correct=null_k, null_trials=null_n, null_p=S.p_value(null_k, null_n),
                 null_leak=float(null_k >= kstar))
        say(f"Null trials: {null_k}/{null_n} correct (leak if >= {kstar}), p = "
            f"{m['null_p']:.3f}" + ("  ** the blinding leaks: the claim is invalid **"
                                    if null_k >= kstar else ""))
    pooled = {}
    for kind in ("catch", "trap"):
        rows = trials[(trials.trial_type == kind) & trials.listener.isin(done)]
        if len(rows):
            pooled[kind] = float(rows.correct.mean())
            m[f"{kind}_pc"] = pooled[kind]
            m[f"{kind}_failed_listeners"] = int(ex.reasons.str.contains(f"{kind} ").sum())
            say(f"{kind.capitalize()} trials: {pooled[kind]:.3f} correct ({len(rows)} trials, "
                f"{m[f'{kind}_failed_listeners']} listeners below their threshold)")
    n_flagged = int(ex.reasons.str.contains("flagged: ").sum())
    if flags is not None:
        m["flagged_listeners"] = n_flagged
        say(f"Cheating detector: {n_flagged} of {len(done)} completed listeners flagged")
    done_ex = ex[ex.listener.isin(done)].reasons
    failures = validity_failures(null_k, null_n, int(done_ex.str.contains("catch ").sum()),
                                 int(done_ex.str.contains("trap ").sum()), n_flagged, len(done),
                                 plan.max_flagged_fraction, plan.alpha)

    main = trials[(trials.trial_type == "main") & trials.listener.isin(keep)]
    out.decision = claim = decide(main, plan.margin, plan.alpha, failures)
    m.update(valid=float(not failures), equivalent=float(claim.verdict == "equivalent"),
             noticeable=float(claim.verdict == "noticeable"), margin=plan.margin)
    if main.empty:
        say(f"No analysable main trials. Claim: {claim.text}")
        return out
    k, n, L = int(main.correct.sum()), len(main), main.listener.nunique()
    ci = S.clopper_pearson(k, n, 0.05)
    tb = S.t_bound(main, 1 - plan.alpha)
    bb = S.bootstrap_bound(main, reps=boot, level=1 - plan.alpha, seed=seed)
    bound = S.gee_bound(main, 1 - plan.alpha)
    m.update(pc=k / n, k=k, n=n, listeners=L, p_detect=S.p_value(k, n), pc_gee=claim.estimate,
             lower_gee=claim.lower, upper_gee=claim.upper, upper_t=tb.upper,
             upper_bootstrap=bb.upper, upper_pooled_cp=S.cp_upper(k, n, plan.alpha),
             rho=bound.rho or 0.0, bayes_factor_10=S.bayes_factor(k, n))
    m["n_effective"] = S.effective_n(L, n / L, m["rho"])
    say(f"Primary (margin {plan.margin}): P̄c = {claim.estimate:.3f}, "
        f"{1 - 2 * plan.alpha:.0%} CI [{claim.lower:.3f}, {claim.upper:.3f}] ({claim.method}, "
        f"listeners as clusters); cross-checks of the upper bound: t {tb.upper:.3f}, "
        f"bootstrap {bb.upper:.3f}; pooled CP {m['upper_pooled_cp']:.3f} (not used: rho = "
        f"{m['rho']:.3f}, effective N = {m['n_effective']:.0f} of {n})")
    for sm_ in plan.secondary_margins:
        m[f"equivalent_{sm_:g}"] = float(claim.upper < sm_)
    say(f"Detection (pooled, descriptive): {k}/{n} = {k / n:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], "
        f"exact one-sided p = {m['p_detect']:.4g}, BF10 = {m['bayes_factor_10']:.3g}")
    sdt = S.abx_sdt(main)
    m.update(sdt)
    lo, hi = S.dprime_bootstrap(main, reps=boot, seed=seed)
    m.update(dprime_ci_low=lo, dprime_ci_high=hi)
    say(f"d′ = {sdt['dprime_differencing']:.2f} [{lo:.2f}, {hi:.2f}] (differencing; 95 % "
        f"bootstrap over trials within listeners, {boot} resamples), "
        f"{sdt['dprime_independent']:.2f} (independent observations); bias c = "
        f"{sdt['bias_c']:.2f}")
    _trial_tables(out, main)
    pl = S.per_listener(main, plan.alpha)
    out.tables["listeners"] = pl
    chi2, ddf, p_od = S.overdispersion(pl.k.to_numpy(), pl.n.to_numpy())
    m.update(listeners_holm=int(pl.reject_holm.sum()), overdispersion_chi2=chi2,
             overdispersion_p=p_od)
    say(f"Listeners: {m['listeners_holm']} of {L} above chance (exact, Holm); overdispersion "
        f"chi2 = {chi2:.1f} on {ddf} df, p = {p_od:.3f}")
    _raters(out, main)
    rows = []
    for col in ("snr", "noise"):
        for value, g in main.groupby(col):
            b = S.gee_bound(g, 1 - plan.alpha)
            rows.append({"factor": col, "level": value, "n": len(g), "pc": b.pc,
                         "upper": b.upper, "equivalent": b.upper < plan.margin})
    cond = pd.DataFrame(rows)
    out.tables["conditions"] = cond
    m["equivalent_every_condition"] = float(bool(len(cond)) and bool(cond.equivalent.all()))
    for _, r in cond.iterrows():
        say(f"  {r.factor} {r.level}: P̄c = {r.pc:.3f}, upper {r.upper:.3f} (n = {r.n})")
    try:
        mm = S.mixed_model(main)
        m.update({f"mixed_{k_}": v for k_, v in mm.items()})
        say(f"Mixed model: SD listener {mm['sd_listener']:.2f}, SD item {mm['sd_item']:.2f} "
            f"(logit); typical-listener Pc {mm['pc_typical']:.3f}")
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the analysis stands
        say(f"Mixed model: not estimable ({type(exc).__name__}: {exc})")
    if study.confidence_levels:
        _by_confidence(out, main, study.confidence_levels, plan.alpha)
    ladder_m = _ladder(out, trials[trials.listener.isin(keep)], plan.margin, boot, seed)
    _sensitivity(out, trials, main, done, plan)
    n_eff = max(int(m["n_effective"]), 1)
    grid = np.linspace(0.5, 1.0, 501)
    mde = next((float(p) for p in grid if detection_power(n_eff, p, plan.alpha) >= 0.8), 1.0)
    m["min_detectable_pc"] = mde
    say(f"Achieved design: minimum detectable P̄c {mde:.3f} (power 0.8, effective N {n_eff})")
    notes = [f"d′ = {sdt['dprime_differencing']:.2f};"
             f" {m['listeners_holm']} of {L} listeners individually above chance (Holm)"
             + (f"; ladder M = {ladder_m:.1f} dB" if ladder_m is not None else "") + "."]
    out.decision = claim = replace(claim, notes=tuple(notes))
    say(f"Claim ({L} listeners, {n} trials, {int(ex.excluded.sum())} excluded, margin "
        f"{plan.margin}, this stimulus set only): {claim.text}")
    return out


def _raters(out: StudyAnalysis, main: pd.DataFrame) -> None:
    """The rater model (seofp_lab/listening/raters.py): each listener's bias and inconsistency."""
    from seofp_lab.listening.raters import fit_raters  # noqa: PLC0415

    if main.listener.nunique() < 2:
        return
    fit = fit_raters(main)
    out.tables["raters"] = fit.listeners
    out.metrics.update(rater_q=fit.q, rater_pc_typical=fit.pc_typical,
                       rater_sd_bias=fit.sd_bias,
                       rater_sd_log_inconsistency=fit.sd_log_inconsistency,
                       rater_converged=float(fit.converged))
    t = fit.listeners
    worst = t.sort_values("inconsistency", ascending=False).head(3)
    out.lines.append(
        f"Rater model (ML, random bias and inconsistency): typical listener Pc "
        f"{fit.pc_typical:.3f} (q = {fit.q:.2f}); SD of bias {fit.sd_bias:.2f} (logit), SD of "
        f"log inconsistency {fit.sd_log_inconsistency:.2f}; least consistent: "
        + ", ".join(f"{r.listener} (v = {r.inconsistency:.2f})" for r in worst.itertuples())
        + "; most biased: " + ", ".join(
            f"{r.listener} (b = {r.bias:+.2f})"
            for r in t.reindex(t.bias.abs().sort_values(ascending=False).index).head(3)
            .itertuples()))


def _by_confidence(out: StudyAnalysis, main: pd.DataFrame, levels: int, alpha: float) -> None:
    """Accuracy per confidence level (only when the design asks for a rating)."""
    conf = pd.to_numeric(main.get("confidence"), errors="coerce") if "confidence" in main else None
    rows = []
    for level in range(1, levels + 1):
        g = main[conf == level] if conf is not None else main[:0]
        k, n = int(g.correct.sum()), len(g)
        lo, hi = S.clopper_pearson(k, n, alpha) if n else (float("nan"), float("nan"))
        rows.append({"confidence": level, "k": k, "n": n, "pc": k / n if n else float("nan"),
                     "ci_low": lo, "ci_high": hi})
    table = pd.DataFrame(rows)
    out.tables["confidence"] = table
    rated = int(table.n.sum())
    out.metrics["confidence_rated"] = rated
    for r in table.itertuples():
        if r.n:
            out.metrics[f"pc_confidence_{r.confidence}"] = r.pc
    out.lines.append(f"Accuracy by confidence ({rated} of {len(main)} main trials rated): "
                     + ", ".join(f"{r.confidence}: {r.k}/{r.n}" for r in table.itertuples()))


TRIAL_LOG = ("listener", "item", "snr", "correct", "confidence", "rt_ms", "plays_a", "plays_b",
             "plays_x", "switches")


def _trial_tables(out: StudyAnalysis, main: pd.DataFrame) -> None:
    """Tables behind plots 4, 7 and 8 (docs/listening.md#figures): items (95 % CP), confusion,
    per-listener bias, and the trial log."""
    out.tables["items"] = S.per_item(main, 0.05)
    out.tables["confusion"] = confusion_matrix(main)
    out.tables["bias"] = per_listener_bias(main)
    # only the columns the store recorded: plots say which are missing instead of guessing
    out.tables["trial_log"] = main[[c for c in TRIAL_LOG if c in main]].reset_index(drop=True)


def _ladder(out: StudyAnalysis, trials: pd.DataFrame, margin: float, boot: int, seed: int
            ) -> float | None:
    from seofp_lab.listening.psychometric import fit_ladder  # noqa: PLC0415

    lad = trials[trials.trial_type == "ladder"]
    if lad.gain_db.nunique() < 3:
        return None
    g = lad.groupby("gain_db").correct.agg(k="sum", n="count").reset_index()
    fit = fit_ladder(g.gain_db.to_numpy(), g.k.to_numpy(), g.n.to_numpy(), margin, boot, seed)
    out.ladder, out.tables["ladder"] = fit, g
    out.metrics.update(ladder_x75_db=fit.x75, ladder_x75_low=fit.x75_ci[0],
                       ladder_x75_high=fit.x75_ci[1], audibility_margin_db=fit.x75)
    out.lines.append(f"Ladder: x75 = {fit.x75:.1f} dB [{fit.x75_ci[0]:.1f}, {fit.x75_ci[1]:.1f}], "
                     f"x at margin = {fit.x_margin:.1f} dB, deviance {fit.deviance:.1f} on "
                     f"{fit.deviance_df} df (p = {fit.deviance_p:.2f}); M = {fit.x75:.1f} dB "
                     "(g scales all of d, benign phase and level parts included)")
    return fit.x75


def _sensitivity(out: StudyAnalysis, trials: pd.DataFrame, main: pd.DataFrame, done: set,
                 plan: object) -> None:
    everyone = trials[(trials.trial_type == "main") & trials.listener.isin(done)]
    if everyone.listener.nunique() >= 2:
        b = S.gee_bound(everyone, 1 - plan.alpha)
        out.metrics["upper_gee_no_exclusions"] = b.upper
        out.lines.append(f"Sensitivity: without exclusions upper bound {b.upper:.3f} "
                         f"({everyone.listener.nunique()} listeners)")
    half = main.trial_index > main.groupby("listener").trial_index.transform("median")
    out.metrics["pc_first_half"] = float(main[~half].correct.mean())
    out.metrics["pc_second_half"] = float(main[half].correct.mean()) if half.any() else np.nan
    out.lines.append(f"Trial-order effect: Pc first half {out.metrics['pc_first_half']:.3f}, "
                     f"second half {out.metrics['pc_second_half']:.3f}")
