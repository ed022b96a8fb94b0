"""The listening-study section: what ``seofp study analyze`` logged to its MLflow run.

Read from the run (``listening.report.log_to_mlflow``): metrics ``listening_*`` (pc, k, n,
listeners, p_detect, upper_gee, margin, equivalent, dprime_differencing, ...), params (alpha,
margin), tags (study, compared runs), and artifacts ``listening/claim.txt``,
``listening/analysis.txt`` and ``listening/plots/*.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seofp_lab import tracking
from seofp_lab.report.artifacts import Artifacts
from seofp_lab.report.runs import RunRecord

Verdict = Literal[
    "equivalent", "discriminable", "discriminable, within margin", "inconclusive", "no data"
]


@dataclass
class ListeningSummary:
    study: str
    run_id: str
    baseline_run: str
    compressed_run: str
    verdict: Verdict
    claim: str
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (label, formatted value)
    plots: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, PNG bytes)
    text: str = ""


def verdict(m: dict[str, float], alpha: float) -> Verdict:
    """Discrimination (exact test vs chance) and equivalence (upper bound below the margin).

    >>> verdict({"pc": 0.52, "p_detect": 0.3, "equivalent": 1.0}, 0.05)
    'equivalent'
    >>> verdict({"pc": 0.8, "p_detect": 1e-6, "equivalent": 0.0}, 0.05)
    'discriminable'
    """
    if "pc" not in m:
        return "no data"
    detected = m.get("p_detect", 1.0) < alpha
    equivalent = m.get("equivalent", 0.0) >= 0.5
    if detected and equivalent:
        return "discriminable, within margin"
    if detected:
        return "discriminable"
    return "equivalent" if equivalent else "inconclusive"


def _f(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def summarize(run: RunRecord) -> ListeningSummary:
    """The section's content from one listening-analysis run; absent numbers show as a dash."""
    m = {
        k.removeprefix("listening_"): v
        for k, v in run.metrics.items()
        if k.startswith("listening_")
    }
    alpha = float(run.params.get("alpha", "0.05"))
    arts = Artifacts(run)
    claim = (arts.read("listening/claim.txt") or b"").decode("utf-8", "replace").strip()
    text = (arts.read("listening/analysis.txt") or b"").decode("utf-8", "replace").rstrip()
    s = ListeningSummary(
        study=run.tags.get(tracking.TAG_STUDY, run.name),
        run_id=run.run_id,
        baseline_run=run.tags.get(tracking.TAG_BASELINE, ""),
        compressed_run=run.tags.get(tracking.TAG_COMPRESSED, ""),
        verdict=verdict(m, alpha),
        claim=claim,
        text=text,
    )
    k, n = m.get("k"), m.get("n")
    pc_text = "—"
    if k is not None and n:
        from seofp_lab.listening.stats import clopper_pearson  # noqa: PLC0415

        lo, hi = clopper_pearson(int(k), int(n), alpha)
        pc_text = f"{k / n:.3f} ({int(k)}/{int(n)}), {1 - alpha:.0%} CI [{lo:.3f}, {hi:.3f}]"
    s.numbers = [
        ("proportion correct (pooled)", pc_text),
        (
            "P̄c (GEE) and one-sided upper bound",
            f"{_f(m.get('pc_gee'))}, ≤ {_f(m.get('upper_gee'))}",
        ),
        ("equivalence margin", _f(m.get("margin", _float(run.params.get("margin"))))),
        ("exact one-sided p (vs chance)", _f(m.get("p_detect"), ".3g")),
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
