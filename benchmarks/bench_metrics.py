"""Cost of each metric per 3-s utterance, single-threaded, as evaluate's workers run them.

Pairs are real embedded-corpus speech mixed with embedded noise at 5 dB; every metric is timed
on the same pairs, interleaved, after a warm-up (imports, ONNX sessions, librosa's first call).
The composites are timed both with PESQ-wb already known (what ``score`` does when pesq_wb is
also asked for) and alone (their own PESQ call included).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from seofp_lab.evaluate import composite, dnsmos, metrics

EMBEDDED = Path(metrics.__file__).resolve().parent.parent / "data" / "embedded"
SECONDS = 3.0


def pairs(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) float32 3-s pairs from the longest embedded speech clips."""
    n = int(SECONDS * metrics.FS)
    speech = [w for f in sorted((EMBEDDED / "speech").rglob("*.flac"))
              if (w := sf.read(f, dtype="float32")[0]).size >= n]
    noise, _ = sf.read(EMBEDDED / "noise" / "market" / "market_00.flac", dtype="float32")
    out = []
    for i, clean in enumerate(speech[:count]):
        clean = clean[:n]
        piece = noise[(i * 4001) % (noise.size - n):][:n]
        gain = np.sqrt(np.sum(clean**2) / np.sum(piece**2) / 10 ** 0.5)
        out.append((clean, (clean + gain * piece).astype(np.float32)))
    return out


def contenders() -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    def composite_known_pesq(c: np.ndarray, x: np.ndarray) -> object:
        return composite.composite(c, x, metrics.FS, pesq=3.0)

    return {
        **metrics.METRIC_FUNCTIONS,
        "composite (PESQ-wb known)": composite_known_pesq,
        "composite (own PESQ-wb)": lambda c, x: composite.composite(c, x, metrics.FS),
        "dnsmos (sig+bak+ovrl)": lambda c, x: dnsmos.dnsmos(x),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utterances", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    data = pairs(args.utterances)
    funcs = contenders()
    for c, x in data[: args.warmup]:
        for f in funcs.values():
            f(c, x)
    times: dict[str, list[float]] = {k: [] for k in funcs}
    for c, x in data:
        for name, f in funcs.items():
            t0 = time.perf_counter()
            f(c, x)
            times[name].append(time.perf_counter() - t0)
    ref = float(np.median(times["pesq_wb"]))
    print(f"{len(data)} utterances of {SECONDS:g} s, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'metric':28s} {'p50 ms':>9s} {'p90 ms':>9s} {'x PESQ-wb':>10s}")
    for name, t in times.items():
        ms = 1e3 * np.asarray(t)
        print(f"{name:28s} {np.percentile(ms, 50):9.1f} {np.percentile(ms, 90):9.1f} "
              f"{np.median(t) / ref:10.2f}")


if __name__ == "__main__":
    main()
