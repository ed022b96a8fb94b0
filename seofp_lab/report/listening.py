"""The listening-study section: what ``seofp study analyze`` logged to its MLflow run.

Read from the run (``listening.report.log_analysis``): the claim as decided by
:func:`seofp_lab.listening.decision.decide` (``listening/claim.json``: verdict, estimate and
interval of the clustered model), metrics ``listening_*`` (pc, k, n, listeners, p_detect,
dprime_differencing, ...), tags (study, compared runs), and artifacts
``listening/analysis.txt`` and ``listening/plots/*.png``. Nothing here decides a verdict: a run
without ``claim.json`` (logged before it existed) shows "not recorded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seofp_lab import tracking
from seofp_lab.listening.decision import CLAIM_ARTIFACT, Claim
from seofp_lab.report.artifacts import Artifacts
from seofp_lab.report.runs import RunRecord

Verdict = Literal["equivalent", "noticeable", "detectable", "inconclusive", "invalid",
                  "not recorded"]


@dataclass
class ListeningSummary:
    study: str
    run_id: str
    baseline_run: str
    compressed_run: str
    verdict: Verdict  # the stored claim's verdict; the report never decides one itself
    claim: str
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (label, formatted value)
    plots: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, PNG bytes)
    text: str = ""


def stored_claim(arts: Artifacts) -> Claim | None:
    """The claim ``seofp study analyze`` decided (``listening/claim.json``), if it stored one."""
    blob = arts.read(CLAIM_ARTIFACT)
    if blob is None:
        return None
    return Claim.from_json(blob.decode("utf-8", "replace"))


def _f(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def summarize(run: RunRecord) -> ListeningSummary:
    """The section's content from one listening-analysis run; absent numbers show as a dash."""
    m = {
        k.removeprefix("listening_"): v
        for k, v in run.metrics.items()
        if k.startswith("listening_")
    }
    arts = Artifacts(run)
    claim = stored_claim(arts)
    text = (arts.read("listening/analysis.txt") or b"").decode("utf-8", "replace").rstrip()
    s = ListeningSummary(
        study=run.tags.get(tracking.TAG_STUDY, run.name),
        run_id=run.run_id,
        baseline_run=run.tags.get(tracking.TAG_BASELINE, ""),
        compressed_run=run.tags.get(tracking.TAG_COMPRESSED, ""),
        verdict=claim.verdict if claim is not None else "not recorded",
        claim=claim.text if claim is not None else "",
        text=text,
    )
    k, n = m.get("k"), m.get("n")
    pooled = f"{k / n:.3f} ({int(k)}/{int(n)})" if k is not None and n else "—"
    interval = "—"
    if claim is not None and claim.listeners:
        interval = (f"{claim.estimate:.3f}, {1 - 2 * claim.alpha:.0%} CI [{claim.lower:.3f}, "
                    f"{claim.upper:.3f}] ({claim.method}, listeners as clusters)")
    s.numbers = [
        ("P̄c with its clustered CI (the claim's)", interval),
        ("equivalence margin", _f(claim.margin if claim is not None else m.get("margin"))),
        ("proportion correct (pooled, descriptive)", pooled),
        ("exact one-sided p (pooled, descriptive)", _f(m.get("p_detect"), ".3g")),
        ("d′ (differencing)", _f(m.get("dprime_differencing"), ".2f")),
        (
            "listeners analysed / recruited",
            f"{_f(m.get('analysed'), '.0f')} / {_f(m.get('recruited'), '.0f')}",
        ),
        ("main trials analysed", _f(n, ".0f")),
        ("listeners above chance (Holm)", _f(m.get("listeners_holm"), ".0f")),
        (
            "null trials correct (blinding check)",
            f"{_f(m.get('null_correct'), '.0f')} / {_f(m.get('null_trials'), '.0f')}",
        ),
        ("typical listener Pc (rater model)", _f(m.get("rater_pc_typical"))),
    ]
    for name in arts.list("listening/plots"):
        if name.endswith(".png") and (data := arts.read(name)) is not None:
            s.plots.append((name.rsplit("/", 1)[-1], data))
    return s


def _float(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None
