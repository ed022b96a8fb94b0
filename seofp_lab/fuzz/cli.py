"""``seofp fuzz``: mutated model files, configs and audio through a capped worker; outcome counts.

Exit status 1 when any case ended in NaN, a traceback, memory over the cap, a crash or a hang;
``--keep DIR`` copies those cases there to reproduce them (each is also a function of the seed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

TARGETS = ("model", "config", "audio")


def fuzz(targets: tuple[str, ...] = TARGETS, cases: int = 200, seed: int = 0,
         budget_s: float | None = None, timeout_s: float = 20.0, mem_mb: int = 2048,
         keep: Path | None = None):  # noqa: ANN201 - (Tally, cases run per target, seconds)
    """Run up to ``cases`` cases per target (or until ``budget_s`` seconds per target)."""
    from seofp_lab.fuzz import cases as cases_mod  # noqa: PLC0415
    from seofp_lab.fuzz.runner import Tally, Worker, run_cases  # noqa: PLC0415

    tally, ran = Tally(), {}
    worker = Worker(mem_mb)
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="seofp-fuzz-") as tmp:
            for target in targets:
                made = cases_mod.generate(target, seed, cases, Path(tmp) / target)
                ran[target] = run_cases(target, made, worker, tally, timeout_s, budget_s)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for r in tally.bad:
                    shutil.copy2(r.path, keep / r.path.name)
    finally:
        worker.close()
    return tally, ran, time.monotonic() - t0


def table(tally, ran: dict[str, int], title: str):  # noqa: ANN001, ANN201 - rich Table
    from rich.table import Table  # noqa: PLC0415

    from seofp_lab.fuzz.worker import OUTCOMES  # noqa: PLC0415

    t = Table(title=title)
    for c in ("target", "cases", *OUTCOMES):
        t.add_column(c, justify="left" if c == "target" else "right")
    for target, n in ran.items():
        counts = tally.counts.get(target, {})
        t.add_row(target, str(n), *(str(counts.get(o, 0)) for o in OUTCOMES))
    return t


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fuzz", help="fuzz the model file, config loader and audio reader")
    p.add_argument("--target", action="append", choices=TARGETS,
                   help="what to fuzz (repeatable; default: all three)")
    p.add_argument("--cases", type=int, default=200, help="cases per target (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop each target after this many seconds")
    p.add_argument("--timeout-s", type=float, default=20.0, help="per case; more is a hang")
    p.add_argument("--mem-mb", type=int, default=2048,
                   help="memory a case may use beyond the worker's imports (RLIMIT_AS)")
    p.add_argument("--keep", type=Path, default=None, help="copy the defective cases here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.console import console  # noqa: PLC0415

    targets = tuple(args.target) if args.target else TARGETS
    tally, ran, seconds = fuzz(targets, args.cases, args.seed, args.budget_s, args.timeout_s,
                               args.mem_mb, args.keep)
    out = console()
    out.print(table(tally, ran, f"seofp fuzz: seed {args.seed}, {sum(ran.values())} cases in "
                               f"{seconds:.0f} s, {args.mem_mb} MiB cap, {args.timeout_s:g} s "
                               f"timeout"))
    for r in tally.bad[:20]:
        out.print(f"[red]{r.outcome}[/red] {r.name} ({r.kernel}): {r.detail}")
    return 1 if tally.bad else 0
