"""GEMV (batch 1) and GEMM (batch 64) throughput of the C kernels vs numpy's OpenBLAS.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gemv.py
Interleaved samples on random data (never zeros); median and best; Gw/s = 1e9 weights/s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import kernels as K


def _weights(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    e = rng.integers(-23, 1, size=(rows, cols))
    return np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--shapes", default="1024x1024,4096x1024,1028x257")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    console = Console()
    for batch in (1, args.batch):
        table = Table(title=f"batch {batch}: Gw/s p50 (best) and speed-up vs OpenBLAS, 1 thread")
        table.add_column("shape")
        names = ["openblas", *(f"c_{k}" for k in K.KERNELS)]
        for n in names:
            table.add_column(n, justify="right")
        for shape in args.shapes.split(","):
            rows, cols = map(int, shape.split("x"))
            w = _weights(rng, rows, cols)
            x = rng.standard_normal((batch, cols)).astype(np.float32)
            layers = {f"c_{k}": K.pack_layer(w, k) for k in K.KERNELS}
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
    console.print(f"variant={K.variant()} load={os.getloadavg()} "
                  f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")


if __name__ == "__main__":
    main()
