"""How often the listening study's equivalence claim is made, by simulation
(docs/listening.md#equivalence).

For the pre-registered design (24 listeners x 32 test trials, margin 0.575) it prints the
fraction of simulated studies whose one-sided 95 % upper bound falls below the margin:
at true P̄c = 0.5 (power: should be >= 0.8), 0.52 and 0.55, and at P̄c = margin (false
equivalence: should be <= 0.05), for identical and for differing listeners, with the GEE bound
the analysis uses, the t bound on per-listener proportions, and the pooled exact bound (which
the analysis does not use, shown to say why).

    OMP_NUM_THREADS=1 python benchmarks/listening_simulation.py --reps 1000
"""

from __future__ import annotations

import argparse
import time

from seofp_lab.listening.power import simulate_equivalence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--listeners", type=int, default=24)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--margin", type=float, default=0.575)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    L, T, m, reps = args.listeners, args.trials, args.margin, args.reps
    print(f"{L} listeners x {T} trials, margin {m}, {reps} simulated studies per cell")
    print(f"{'true P̄c':>8} {'spread':>6} {'method':>8} {'claims':>7} {'± se':>6} {'s':>5}")
    cells = [(0.50, 0.1, "gee"), (0.52, 0.1, "gee"), (0.55, 0.1, "gee")]
    cells += [(m, s, meth) for s in (0.0, 0.1, 0.3) for meth in ("gee", "t", "pooled")]
    for k, (pc, spread, method) in enumerate(cells):
        t0 = time.perf_counter()
        sim = simulate_equivalence(L, T, pc, m, reps, spread, method, seed=args.seed + k)
        print(f"{pc:>8.3f} {spread:>6.1f} {method:>8} {sim.claims:>7.3f} {sim.se:>6.3f} "
              f"{time.perf_counter() - t0:>5.1f}")


if __name__ == "__main__":
    main()
