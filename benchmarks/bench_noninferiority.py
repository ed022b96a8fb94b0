"""How often a false "non-inferior" verdict is given: mixture-level vs clustered CIs.

Simulated paired differences at the margin: ``d = -margin + talker + utterance + residual``, so the
true mean difference is exactly ``-margin`` and every "non-inferior" verdict is false. The design
is the demo test set's: 41 utterances x 2 mixtures. The nominal one-sided error is 2.5 % (the
lower bound of a 95 % CI); the clustered rate must stay <= 5 %. docs/statistics.md has the
methods.

Two questions, two scenarios:

- ``these talkers``: the claim is about new utterances of the tested talkers. Talker offsets are
  fixed (drawn, then centred so the tested talkers average 0); the utterance is the unit.
- ``new talkers``: the claim is about talkers not tested. Talker offsets are random, 10 (the
  minimum for a verdict) or 12 talkers; the talker is the unit (the utterance-level rate is shown
  to say why).

ICC = the share of the variance of ``d`` due to the utterance (or talker) effect; with 2 mixtures
per utterance the mixture-level CI's variance is too small by a factor of about 1 + ICC_utt.

    OMP_NUM_THREADS=1 python benchmarks/bench_noninferiority.py  # ~1 min of CPU on one core
    OMP_NUM_THREADS=1 python benchmarks/bench_noninferiority.py --sims 4000 --resamples 9999
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from seofp_lab.evaluate.clustered import cluster_bootstrap_ci, mixed_model
from seofp_lab.evaluate.paired import MIN_CLUSTERS, mean_diff_ci, verdict

NOMINAL = 0.025  # one-sided: the lower bound of a two-sided 95 % CI
LIMIT = 0.05


@dataclass(frozen=True)
class Setting:
    scenario: str  # "these talkers" or "new talkers"
    talkers: int
    icc_utt: float
    icc_talker: float
    tails: str = "normal"  # "t4": residuals from a t distribution with 4 degrees of freedom

    @property
    def unit(self) -> str:
        """The unit whose rate must stay <= LIMIT in this scenario."""
        return "utterance" if self.scenario == "these talkers" else "talker"


SETTINGS = (
    Setting("these talkers", 2, 0.0, 0.1),
    Setting("these talkers", 2, 0.5, 0.1),
    Setting("these talkers", 2, 0.9, 0.05),
    Setting("these talkers", 2, 0.5, 0.1, "t4"),
    Setting("new talkers", 10, 0.4, 0.2),  # at the minimum cluster count
    Setting("new talkers", 12, 0.4, 0.3),
)


def simulate(s: Setting, n_utt: int, per_utt: int, margin: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One test set's differences (total variance margin**2) and its utterance and talker labels."""
    talker = np.repeat(np.arange(n_utt) % s.talkers, per_utt)
    utt = np.repeat(np.arange(n_utt), per_utt)
    sd = margin  # the spread of d equals the margin: STOI-like numbers, and the rate is scale-free
    a = rng.normal(0.0, sd * math.sqrt(s.icc_talker), s.talkers)
    if s.scenario == "these talkers":  # fixed offsets: the tested talkers average exactly 0
        a -= np.mean(a[talker])
    b = rng.normal(0.0, sd * math.sqrt(s.icc_utt), n_utt)
    resid = sd * math.sqrt(max(0.0, 1.0 - s.icc_utt - s.icc_talker))
    e = (rng.standard_t(4, utt.size) / math.sqrt(2.0) if s.tails == "t4"  # t4 variance is 2
         else rng.standard_normal(utt.size)) * resid
    return -margin + a[talker] + b[utt] + e, utt.astype(str), talker.astype(str)


def false_claims(s: Setting, sims: int, resamples: int, n_utt: int, per_utt: int, margin: float,
                 seed: int, with_mixed: bool) -> dict[str, float]:
    """The fraction of simulated test sets judged "non-inferior", per method."""
    rng = np.random.default_rng(seed)
    hits = {"mixture": 0, "utterance": 0, "talker": 0, "mixed": 0}
    ci = {"n_resamples": resamples}
    for k in range(sims):
        d, utt, tal = simulate(s, n_utt, per_utt, margin, rng)
        zeros = np.zeros_like(d)
        low, high, _ = mean_diff_ci(zeros, d, seed=k, **ci)  # the former analysis: BCa, mixtures
        hits["mixture"] += verdict(low, high, margin, d.size) == "non-inferior"
        for unit, labels in (("utterance", utt), ("talker", tal)):
            low, high = cluster_bootstrap_ci(d, labels, seed=k, **ci)
            n_units = len(set(labels.tolist()))
            hits[unit] += verdict(low, high, margin, n_units) == "non-inferior"
        if with_mixed:
            est = mixed_model(d, utt, tal)
            hits["mixed"] += math.isfinite(est.ci_low) and est.ci_low > -margin
    return {k: v / sims for k, v in hits.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=1000, help="simulated test sets per setting")
    ap.add_argument("--resamples", type=int, default=1999, help="bootstrap resamples per CI")
    ap.add_argument("--utterances", type=int, default=41)
    ap.add_argument("--mixtures", type=int, default=2, help="mixtures per utterance")
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixed", action="store_true",
                    help="also the mixed model's Wald CI (about 0.05 s a fit: slow)")
    args = ap.parse_args()
    t = Table(title=f"False non-inferiority at the margin: {args.utterances} utterances x "
              f"{args.mixtures} mixtures, {args.sims} simulations per row, {args.resamples} "
              f"resamples; nominal {NOMINAL:.1%}, limit {LIMIT:.0%}")
    for col in ("scenario", "talkers", "ICC utt.", "ICC talker", "residuals", "sims",
                "mixture-level", "utterance-clustered", "talker-clustered",
                *(["mixed model"] if args.mixed else []), "checked", "s"):
        t.add_column(col, justify="left" if col in ("scenario", "residuals", "checked")
                     else "right")
    failed = []
    for i, s in enumerate(SETTINGS):
        t0 = time.perf_counter()
        r = false_claims(s, args.sims, args.resamples, args.utterances, args.mixtures,
                         args.margin, args.seed + i, args.mixed)
        se = math.sqrt(max(r[s.unit], NOMINAL) * (1 - NOMINAL) / args.sims)

        def cell(unit: str, r: dict = r, s: Setting = s) -> str:
            if unit == "talker" and s.talkers < MIN_CLUSTERS:
                return f"0 (insufficient: {s.talkers} < {MIN_CLUSTERS})"
            text = f"{r[unit]:.1%}"
            return f"[bold]{text}[/bold]" if unit == s.unit else text

        ok = r[s.unit] <= LIMIT
        if not ok:
            failed.append(s)
        t.add_row(s.scenario, str(s.talkers), f"{s.icc_utt:g}", f"{s.icc_talker:g}", s.tails,
                  str(args.sims), cell("mixture"), cell("utterance"), cell("talker"),
                  *([f"{r['mixed']:.1%}"] if args.mixed else []),
                  f"{s.unit} {r[s.unit]:.1%} ± {se:.1%} " + ("≤ 5 %" if ok else "[red]> 5 %[/red]"),
                  f"{time.perf_counter() - t0:.0f}")
    Console(width=200).print(t)
    print("Bold: the unit that answers the row's question (these talkers: utterance; new "
          "talkers: talker). ± is the Monte Carlo standard error.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
