"""GEMV (batch 1) and GEMM (batch 64) throughput of the C kernels vs numpy's OpenBLAS.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gemv.py
Interleaved samples on random data (never zeros); median and best; Gw/s = 1e9 weights/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import kernels as K
from seofp_lab.infer.bench import environment

ROTATE_BYTES = 64 << 20  # DRAM case: each contender cycles through >= 64 MB of matrices


# C contenders: name -> (kernel, intadd layout, bytes per weight). intadd runs in its three weight
# layouts (1-byte codes, 16-bit addends, 4-bit nibbles); the weights sit in a 7-exponent window
# (s1e3) so that every layout holds them (speed does not depend on the values)
C_CONTENDERS = {"c_fp32": ("fp32", "auto", 4.0), "c_intadd8": ("intadd", "codes", 1.0),
                "c_intadd16": ("intadd", "addends", 2.0), "c_intadd4": ("intadd", "nibbles", 0.5),
                "c_decode": ("decode", "auto", 1.0)}


def _pack(w: np.ndarray, name: str) -> K.PackedLayer:
    kernel, layout, _ = C_CONTENDERS[name]
    return K.pack_layer(w, kernel, layout)  # type: ignore[arg-type]


def _weights(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    e = rng.integers(-9, -2, size=(rows, cols))
    return np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--shapes", default="1024x1024,4096x1024,1028x257")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dram", default="4096x4096",
                    help="DRAM-resident shape (rotating matrices); empty to skip")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    console = Console(width=150)
    for batch in (1, args.batch):
        table = Table(title=f"batch {batch}: Gw/s p50 (best) and speed-up vs OpenBLAS, 1 thread")
        table.add_column("shape")
        names = ["openblas", *C_CONTENDERS]
        for n in names:
            table.add_column(n, justify="right")
        for shape in args.shapes.split(","):
            rows, cols = map(int, shape.split("x"))
            w = _weights(rng, rows, cols)
            x = rng.standard_normal((batch, cols)).astype(np.float32)
            layers = {n: _pack(w, n) for n in C_CONTENDERS}
            fns = {"openblas": (lambda x=x, w=w: x @ w.T) if batch > 1 else (
                lambda x=x, w=w: w @ x[0])}
            for n, layer in layers.items():
                fns[n] = (lambda lay=layer, x=x: K.gemm(lay, x)) if batch > 1 else (
                    lambda lay=layer, x=x: K.gemv(lay, x[0]))
            times: dict[str, list[float]] = {n: [] for n in fns}
            for i in range(args.samples + 3):
                for n, f in fns.items():  # interleaved A B C D
                    t0 = time.perf_counter()
                    f()
                    if i >= 3:
                        times[n].append(time.perf_counter() - t0)
            weights = rows * cols * batch / 1e9
            base = float(np.median(times["openblas"]))
            cells = [f"{weights / np.median(times[n]):.2f} ({weights / min(times[n]):.2f}) "
                     f"{base / np.median(times[n]):.2f}x" for n in names]
            table.add_row(shape, *cells)
        console.print(table)
    if args.dram:
        _dram(rng, console, args.dram, args.samples)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


def _dram(rng: np.random.Generator, console: Console, shape: str, samples: int) -> None:
    """Batch 1 from DRAM (docs/engine.md#benchmarking): every sample uses the next matrix of a
    rotating set of >= 64 MB per contender (>= 2x the L3) and a fresh input vector."""
    rows, cols = map(int, shape.split("x"))
    w = _weights(rng, rows, cols)
    count = {"openblas": 4.0, **{n: c[2] for n, c in C_CONTENDERS.items()}}  # bytes per weight
    sets: dict[str, list] = {}
    for name, size in count.items():
        n = -(-ROTATE_BYTES // int(rows * cols * size)) + 1
        mats = []
        for i in range(n):  # distinct matrices: a sign flip per copy keeps them different data
            wi = w if i % 2 == 0 else -w
            wi = np.roll(wi, i, axis=1)
            mats.append(np.ascontiguousarray(wi) if name == "openblas" else _pack(wi, name))
        sets[name] = mats
    xs = rng.standard_normal((samples + 3, cols)).astype(np.float32)
    times: dict[str, list[float]] = {n: [] for n in sets}
    for i in range(samples + 3):
        for name, mats in sets.items():  # interleaved
            m, x = mats[i % len(mats)], xs[i]
            t0 = time.perf_counter()
            if name == "openblas":
                m @ x
            else:
                K.gemv(m, x)
            if i >= 3:
                times[name].append(time.perf_counter() - t0)
    table = Table(title=f"batch 1 from DRAM, {rows}x{cols}, rotating >= 64 MB per contender: "
                        "Gw/s p50 (best), speed-up vs OpenBLAS")
    names = list(sets)
    for n in ["shape", *names]:
        table.add_column(n, justify="right")
    weights = rows * cols / 1e9
    base = float(np.median(times["openblas"]))
    table.add_row(shape, *(f"{weights / np.median(times[n]):.2f} ({weights / min(times[n]):.2f}) "
                           f"{base / np.median(times[n]):.2f}x" for n in names))
    console.print(table)


if __name__ == "__main__":
    main()
