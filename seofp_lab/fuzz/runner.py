"""The fuzz runner: feeds cases to a worker process, times them out, restarts it after a crash.

:func:`run_cases` is the whole harness: each case goes to ``python -m seofp_lab.fuzz.worker``
(memory capped there); no answer within ``timeout_s`` is a ``hang`` (the worker is killed), a
worker that dies is a ``crash``, and either way the next case gets a fresh worker.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from seofp_lab.fuzz.worker import OUTCOMES

STARTUP_S = 300.0  # a loaded 2-core machine imports numpy, scipy and cffi slowly


@dataclass(frozen=True)
class Result:
    """One case and how it ended."""

    name: str
    path: Path
    kernel: str
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Tally:
    """Outcome counts per target, and the cases that were not ``ok`` or ``refused``."""

    counts: dict[str, Counter] = field(default_factory=dict)
    bad: list[Result] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    def add(self, target: str, r: Result) -> None:
        self.counts.setdefault(target, Counter())[r.outcome] += 1
        self.results.append(r)
        if r.outcome not in ("ok", "refused"):
            self.bad.append(r)


class Worker:
    """One worker process; :meth:`run` restarts it when the previous case killed it."""

    def __init__(self, mem_mb: int, user: int | None = None, preload: bool = True) -> None:
        self.mem_mb, self.user, self.preload = mem_mb, user, preload
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                              os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "seofp_lab.fuzz.worker", "--mem-mb", str(self.mem_mb)]
            + ([] if self.preload else ["--no-preload"])
            + ([] if self.user is None else ["--user", str(self.user)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env)
        line = self._read(proc, STARTUP_S)
        if line != "ready":
            proc.kill()
            raise RuntimeError(f"the fuzz worker did not start (said {line!r})")
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], timeout: float) -> str | None:
        """One line, "" if the process ended, None on timeout."""
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return None
        return proc.stdout.readline().strip()

    def ensure(self) -> None:
        """Start the worker now if it is not running (its imports take seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()

    def run(self, job: dict, timeout_s: float) -> tuple[str, str]:
        self.ensure()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._lost("crash")
        line = self._read(self.proc, timeout_s)
        if line is None:
            return self._lost("hang", f"no answer in {timeout_s:g} s")
        if not line:
            return self._lost("crash")
        answer = json.loads(line)
        return answer["outcome"], answer.get("detail", "")

    def _lost(self, outcome: str, detail: str = "") -> tuple[str, str]:
        assert self.proc is not None
        self.proc.kill()
        rc = self.proc.wait()
        self.proc = None
        return outcome, detail or f"worker ended with status {rc}"

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def run_cases(target: str, cases: Iterable[tuple[str, Path, str]], worker: Worker,
              tally: Tally, timeout_s: float = 20.0, budget_s: float | None = None) -> int:
    """Run ``cases`` of ``target`` until they end or ``budget_s`` passes; returns how many ran."""
    worker.ensure()  # its start-up is not part of the budget
    start, ran = time.monotonic(), 0
    for name, path, kernel in cases:
        if budget_s is not None and time.monotonic() - start > budget_s:
            break
        t0 = time.monotonic()
        outcome, detail = worker.run({"target": target, "path": str(path), "kernel": kernel},
                                     timeout_s)
        assert outcome in OUTCOMES, outcome
        tally.add(target, Result(name, path, kernel, outcome, detail, time.monotonic() - t0))
        ran += 1
    return ran
