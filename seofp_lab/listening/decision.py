"""The one decision rule of a listening study (docs/listening_analysis.md#the-decision-rule).

Every verdict a study can print, log or render comes from :func:`decide`: ``seofp study
analyze`` prints its sentence, the MLflow record stores it (tag :data:`VERDICT_TAG` and
``listening/claim.json``), and the HTML report shows what was stored without deciding again.

The estimate and both bounds of a claim come from one clustered model (the GEE of
:func:`seofp_lab.listening.stats.gee_bound`, listeners as clusters): the lower and upper
one-sided (1 - alpha) bounds, i.e. a two-sided (1 - 2 alpha) interval.

- any failed validity check: ``invalid`` (with the reasons);
- fewer than 2 analysed listeners or no main trials: ``inconclusive``;
- upper bound < margin: ``equivalent``;
- lower bound > margin: ``noticeable``;
- otherwise, lower bound > 0.5 (detection, the interval straddles the margin): ``detectable``;
- otherwise: ``inconclusive``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Verdict = Literal["equivalent", "noticeable", "detectable", "inconclusive", "invalid"]
VERDICTS: tuple[Verdict, ...] = ("equivalent", "noticeable", "detectable", "inconclusive",
                                 "invalid")
VERDICT_TAG = "seofp.listening_verdict"  # the MLflow tag that carries Claim.label
CLAIM_ARTIFACT = "listening/claim.json"
MIN_LISTENERS = 2


@dataclass(frozen=True)
class Claim:
    """What a study allows to be said, with the interval it rests on."""

    verdict: Verdict
    reasons: tuple[str, ...] = ()  # why invalid (or why inconclusive without an interval)
    estimate: float = float("nan")  # population-average Pc of the clustered model
    lower: float = float("nan")  # one-sided (1 - alpha) lower bound
    upper: float = float("nan")  # one-sided (1 - alpha) upper bound
    method: str = ""  # "gee" or "t" (the fallback when every answer is right or wrong)
    margin: float = float("nan")
    alpha: float = 0.05
    listeners: int = 0
    trials: int = 0
    notes: tuple[str, ...] = field(default=())  # context that does not change the verdict

    @property
    def label(self) -> str:
        """``"invalid: <why>"`` for an invalid study, else the verdict."""
        return f"invalid: {'; '.join(self.reasons)}" if self.verdict == "invalid" else (
            self.verdict)

    @property
    def interval_text(self) -> str:
        if not np.isfinite(self.estimate):
            return "no estimate"
        return (f"P̄c = {self.estimate:.3f}, {1 - 2 * self.alpha:.0%} CI [{self.lower:.3f}, "
                f"{self.upper:.3f}] ({self.method}, {self.listeners} listeners, "
                f"{self.trials} trials), margin {self.margin:.3f}")

    @property
    def text(self) -> str:
        """One sentence: the verdict, what it means and its numbers."""
        meaning = {
            "equivalent": "the upper bound is below the margin: not noticeable at this margin",
            "noticeable": "the lower bound is above the margin: a noticeable difference",
            "detectable": "detected above chance, but the interval straddles the margin",
            "inconclusive": "neither equivalence nor detection is shown",
            "invalid": "a validity check failed; no claim about the difference is made",
        }[self.verdict]
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        extra = "".join(f" {n}" for n in self.notes)
        return f"{self.label.capitalize()}: {meaning}{why}. {self.interval_text}.{extra}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "label": self.label}, indent=1, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> Claim:
        d = json.loads(text)
        d.pop("label", None)
        for key in ("reasons", "notes"):
            d[key] = tuple(d.get(key) or ())
        return cls(**d)


def decide(main: pd.DataFrame, margin: float, alpha: float,
           failures: list[str] | tuple[str, ...] = ()) -> Claim:
    """The claim a study allows, from its analysed main trials and its validity checks.

    Args:
        main: analysed main trials (columns ``listener``, ``correct``), exclusions applied.
        margin: the pre-registered equivalence margin on P̄c (study.yaml ``analysis.margin``).
        alpha: one-sided level of each bound (study.yaml ``analysis.alpha``).
        failures: the failed validity checks (:func:`validity_failures`); any makes the claim
            invalid.

    Returns:
        The :class:`Claim`; its estimate and bounds come from one clustered model.
    """
    from seofp_lab.listening.stats import gee_bound  # noqa: PLC0415

    listeners = int(main["listener"].nunique()) if len(main) else 0
    base = dict(margin=float(margin), alpha=float(alpha), listeners=listeners,
                trials=int(len(main)))
    if listeners >= MIN_LISTENERS:
        b = gee_bound(main, 1 - alpha)
        base.update(estimate=b.pc, lower=b.lower, upper=b.upper, method=b.method)
    if failures:
        return Claim("invalid", tuple(failures), **base)
    if listeners < MIN_LISTENERS:
        return Claim("inconclusive", (f"{listeners} analysed listener(s), at least "
                                      f"{MIN_LISTENERS} needed for a clustered interval",), **base)
    return Claim(verdict_of(base["lower"], base["upper"], margin), (), **base)


def verdict_of(lower: float, upper: float, margin: float) -> Verdict:
    """The rule on an interval alone (no validity failure).

    >>> [verdict_of(0.48, 0.56, 0.575), verdict_of(0.6, 0.7, 0.575),
    ...  verdict_of(0.52, 0.62, 0.575), verdict_of(0.45, 0.62, 0.575)]
    ['equivalent', 'noticeable', 'detectable', 'inconclusive']
    """
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return "inconclusive"
    if upper < margin:
        return "equivalent"
    if lower > margin:
        return "noticeable"
    if lower > 0.5:
        return "detectable"
    return "inconclusive"


def validity_failures(null_k: int, null_n: int, catch_failed: int, trap_failed: int,
                      flagged: int, completed: int, max_flagged_fraction: float,
                      alpha: float) -> list[str]:
    """The study-level validity checks; each failure is one sentence naming what failed.

    Args:
        null_k, null_n: correct and total null trials (X identical to both A and B) of
            completed listeners; a leak when the exact one-sided p < alpha.
        catch_failed, trap_failed: completed listeners below their per-listener catch or trap
            threshold (study.yaml ``screening.catch_min_fraction``, ``trap_min_fraction``);
            such listeners are excluded, and when they are more than half of the completed
            listeners the instrument, not the listeners, failed.
        flagged, completed: listeners flagged by the cheating detector, and listeners who
            completed; fails when flagged / completed > ``max_flagged_fraction``.
        alpha: the null-leak test's level.
    """
    from seofp_lab.listening.stats import p_value  # noqa: PLC0415

    out = []
    if null_n and p_value(null_k, null_n) < alpha:
        out.append(f"null trials {null_k}/{null_n} correct (p = {p_value(null_k, null_n):.3g}):"
                   " the blinding leaks")
    for kind, failed, what in (("catch", catch_failed, "easy differences"),
                               ("trap", trap_failed, "obvious answers")):
        if completed and failed > completed / 2:
            out.append(f"{failed} of {completed} listeners failed the {kind} trials: {what} "
                       "were missed by most listeners (playback or instructions failed)")
    if completed and flagged / completed > max_flagged_fraction:
        out.append(f"{flagged} of {completed} listeners flagged by the cheating detector "
                   f"(more than {max_flagged_fraction:.0%})")
    return out
