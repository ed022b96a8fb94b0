"""The fuzz harness: it tells every outcome apart, and a short seeded budget finds no defect.

The short budget here is what CI runs; docs/fuzzing.md has the long run's command and counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seofp_lab.fuzz import cases
from seofp_lab.fuzz.cli import fuzz
from seofp_lab.fuzz.runner import Tally, Worker, run_cases

pytestmark = pytest.mark.kernel


def test_the_harness_tells_every_outcome_apart(tmp_path: Path) -> None:
    modes = ["ok", "refused", "nan", "traceback", "memory", "crash", "hang", "ok"]
    jobs = []
    for i, mode in enumerate(modes):
        path = tmp_path / f"{i}.txt"
        path.write_text(mode)
        jobs.append((mode, path, "intadd"))
    tally, worker = Tally(), Worker(mem_mb=256, preload=False)
    try:
        assert run_cases("selftest", jobs, worker, tally, timeout_s=3.0) == len(modes)
    finally:
        worker.close()
    assert [r.name for r in tally.bad] == ["nan", "traceback", "memory", "crash", "hang"]
    assert [r.outcome for r in tally.bad] == ["nan", "traceback", "memory", "crash", "hang"]
    assert tally.counts["selftest"]["ok"] == 2  # the worker came back after the crash and hang
    assert "KeyError: 'selftest'" in tally.bad[1].detail


def test_cases_are_a_function_of_the_seed(tmp_path: Path) -> None:
    for target in ("model", "config", "audio"):
        a = [p.read_bytes() for _, p, _ in cases.generate(target, 3, 6, tmp_path / "a")]
        b = [p.read_bytes() for _, p, _ in cases.generate(target, 3, 6, tmp_path / "b")]
        c = [p.read_bytes() for _, p, _ in cases.generate(target, 4, 6, tmp_path / "c")]
        assert a == b and a != c


def test_a_short_budget_finds_no_crash_traceback_hang_or_nan() -> None:
    """What CI runs on every commit (about 20 s); kernels rotate over intadd, decode, fp32."""
    tally, ran, _ = fuzz(cases=400, seed=20260101, budget_s=4.0, timeout_s=20.0)
    assert all(n >= 10 for n in ran.values()), ran
    assert not tally.bad, [(r.name, r.outcome, r.detail) for r in tally.bad]
    assert tally.counts["model"]["refused"] > 0 and tally.counts["audio"]["ok"] > 0
