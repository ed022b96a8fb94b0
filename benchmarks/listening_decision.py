"""How often each verdict of the decision rule (seofp_lab/listening/decision.py) is reached,
by simulation, for the pre-registered design (docs/listening_analysis.md#the-decision-rule).

Listeners' true Pc are drawn as in seofp_lab/listening/power.py (``simulate_listeners``,
spread 0.1) around each true P̄c; every simulated study goes through :func:`decide` (the GEE
interval with listeners as clusters). The two error rates the rule must keep below alpha: a
false "equivalent" at true P̄c = margin, and a false "noticeable" at true P̄c = margin.

    OMP_NUM_THREADS=1 python benchmarks/listening_decision.py --reps 400
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
import pandas as pd

from seofp_lab.listening.decision import VERDICTS, decide
from seofp_lab.listening.power import simulate_listeners


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--listeners", type=int, default=24)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--margin", type=float, default=0.575)
    ap.add_argument("--spread", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    L, T, m = args.listeners, args.trials, args.margin
    shown = [v for v in VERDICTS if v != "invalid"]
    print(f"{L} listeners x {T} trials, margin {m}, spread {args.spread}, {args.reps} "
          "simulated studies per row; fraction of studies per verdict")
    print(f"{'true P̄c':>8} " + " ".join(f"{v:>12}" for v in shown) + f" {'s':>5}")
    listener = np.repeat(np.arange(L), T)
    for k, pc in enumerate((0.5, 0.52, 0.55, m, 0.6, 0.65, 0.7, 0.8)):
        rng = np.random.default_rng([args.seed, k])
        t0, counts = time.perf_counter(), Counter()
        for _ in range(args.reps):
            p = simulate_listeners(L, T, pc, args.spread, rng)
            correct = (rng.random((L, T)) < p[:, None]).astype(int).ravel()
            counts[decide(pd.DataFrame({"listener": listener, "correct": correct}), m,
                          0.05).verdict] += 1
        print(f"{pc:>8.3f} " + " ".join(f"{counts[v] / args.reps:>12.3f}" for v in shown)
              + f" {time.perf_counter() - t0:>5.1f}")


if __name__ == "__main__":
    main()
