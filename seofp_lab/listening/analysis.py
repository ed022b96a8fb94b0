"""The study analysis, in the order of docs/listening.md#analysis-overview: flow, null leak, catch,
primary, detection,
listeners, conditions, ladder, sensitivity; and the claim it allows (docs/listening.md#claims).

Input: the tables of :mod:`seofp_lab.listening.data` (one row per answered trial; one per
participant). Output: :class:`StudyAnalysis` with flat metrics (for MLflow), tables and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seofp_lab.listening import stats as S
from seofp_lab.listening.bias import confusion_matrix, per_listener_bias
from seofp_lab.listening.power import detection_power
from seofp_lab.listening.protocol import StudyDefinition


@dataclass
class StudyAnalysis:
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    claim: str = ""
    lines: list[str] = field(default_factory=list)
    ladder: object | None = None  # PsychometricFit when the study had a ladder

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def exclusions(trials: pd.DataFrame, participants: pd.DataFrame, study: StudyDefinition
               ) -> pd.DataFrame:
    """The pre-registered exclusion rules, one row per participant with the reasons that hit."""
    scr = study.screening
    out = []
    for _, p in participants.iterrows():
        mine = trials[trials.listener == p.listener]
        reasons = []
        if p.status == "screened_out":
            reasons.append("screened out: " + str(p.screen_exclusion))
        elif p.status not in ("debrief", "done"):
            reasons.append("incomplete")
        test = mine[mine.trial_type.isin(["main", "catch", "null"])]
        catch = mine[mine.trial_type == "catch"]
        catch_fail = len(catch) > 0 and catch.correct.mean() < scr.catch_min_fraction
        if catch_fail:
            reasons.append(f"catch {int(catch.correct.sum())}/{len(catch)}")
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


def _claim(detected: bool, upper: float, pc: float, ci: tuple[float, float], margin: float,
           n_holm: int, n_listeners: int, dprime: float, ladder_m: float | None) -> str:
    if not detected and upper < margin:
        return (f"Not reliably noticeable: P̄c ≤ {upper:.3f} (one-sided 95 %) < margin "
                f"{margin:.3f}.")
    if detected and upper < margin:
        return (f"Detectable but below the margin: P̄c = {pc:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]; "
                f"{n_holm} of {n_listeners} listeners individually (Holm).")
    if not detected:
        return (f"Inconclusive: a noticeable difference is not ruled out (P̄c up to "
                f"{upper:.3f}).")
    m = f", M = {ladder_m:.1f} dB" if ladder_m is not None else ""
    return f"Noticeable: P̄c = {pc:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], d′ = {dprime:.2f}{m}."


def analyze(trials: pd.DataFrame, participants: pd.DataFrame, study: StudyDefinition,
            boot: int = 1000, seed: int = 0) -> StudyAnalysis:
    """Run every pre-registered analysis; nothing here reads the store or writes files."""
    plan, out = study.analysis, StudyAnalysis()
    m, say = out.metrics, out.lines.append
    ex = exclusions(trials, participants, study)
    out.tables["exclusions"] = ex
    keep = set(ex.listener[~ex.excluded])
    done = set(participants.listener[participants.status.isin(["debrief", "done"])])
    m.update(recruited=len(participants), completed=len(done), analysed=len(keep),
             screened_out=int((participants.status == "screened_out").sum()))
    say(f"Study {study.name}: {m['recruited']} recruited, {m['screened_out']} screened out, "
        f"{m['completed']} completed, {m['analysed']} analysed")
    for reason, n in ex[ex.excluded].reasons.str.split("; ").explode().value_counts().items():
        say(f"  excluded: {reason}: {n}")

    nulls = trials[(trials.trial_type == "null") & trials.listener.isin(done)]
    if len(nulls):
        k, n = int(nulls.correct.sum()), len(nulls)
        kstar = S.min_correct(n, plan.alpha)
        m.update(null_correct=k, null_trials=n, null_p=S.p_value(k, n), null_leak=float(k >= kstar))
        say(f"Null trials: {k}/{n} correct (leak if >= {kstar}), p = {m['null_p']:.3f}"
            + ("  ** STOP: the blinding leaks **" if k >= kstar else ""))
    catch = trials[(trials.trial_type == "catch") & trials.listener.isin(keep)]
    if len(catch):
        m["catch_pc"] = float(catch.correct.mean())
        say(f"Catch trials: {m['catch_pc']:.3f} correct ({len(catch)} trials)")

    main = trials[(trials.trial_type == "main") & trials.listener.isin(keep)]
    if main.empty:
        out.claim = "No analysable main trials yet."
        say(out.claim)
        return out
    k, n, L = int(main.correct.sum()), len(main), main.listener.nunique()
    ci = S.clopper_pearson(k, n, 0.05)
    bound = S.gee_bound(main, 1 - plan.alpha)
    tb = S.t_bound(main, 1 - plan.alpha)
    bb = S.bootstrap_bound(main, reps=boot, level=1 - plan.alpha, seed=seed)
    m.update(pc=k / n, k=k, n=n, listeners=L, p_detect=S.p_value(k, n), pc_gee=bound.pc,
             upper_gee=bound.upper, upper_t=tb.upper, upper_bootstrap=bb.upper,
             upper_pooled_cp=S.cp_upper(k, n, plan.alpha), rho=bound.rho or 0.0,
             margin=plan.margin, equivalent=float(bound.upper < plan.margin),
             bayes_factor_10=S.bayes_factor(k, n))
    m["n_effective"] = S.effective_n(L, n / L, m["rho"])
    say(f"Primary (margin {plan.margin}): P̄c = {bound.pc:.3f}, one-sided "
        f"{1 - plan.alpha:.0%} upper bound {bound.upper:.3f} ({bound.method}); t "
        f"{tb.upper:.3f}, bootstrap {bb.upper:.3f}; pooled CP {m['upper_pooled_cp']:.3f} "
        f"(not used: rho = {m['rho']:.3f}, effective N = {m['n_effective']:.0f} of {n})")
    for sm_ in plan.secondary_margins:
        m[f"equivalent_{sm_:g}"] = float(bound.upper < sm_)
    say(f"Detection: {k}/{n} = {k / n:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], exact one-sided "
        f"p = {m['p_detect']:.4g}, BF10 = {m['bayes_factor_10']:.3g}")
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
    ladder_m = _ladder(out, trials[trials.listener.isin(keep)], plan.margin, boot, seed)
    _sensitivity(out, trials, main, done, plan)
    n_eff = max(int(m["n_effective"]), 1)
    grid = np.linspace(0.5, 1.0, 501)
    mde = next((float(p) for p in grid if detection_power(n_eff, p, plan.alpha) >= 0.8), 1.0)
    m["min_detectable_pc"] = mde
    say(f"Achieved design: minimum detectable P̄c {mde:.3f} (power 0.8, effective N {n_eff})")
    out.claim = _claim(m["p_detect"] < plan.alpha, bound.upper, bound.pc, ci, plan.margin,
                       m["listeners_holm"], L, sdt["dprime_differencing"], ladder_m)
    say(f"Claim ({L} listeners, {n} trials, {int(ex.excluded.sum())} excluded, margin "
        f"{plan.margin}, this stimulus set only): {out.claim}")
    return out


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
