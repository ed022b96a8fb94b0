"""Batch > 1 products (the tiled GEMM) per shape: C fp32 against C intadd in each layout.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gemm_tiles.py
The shapes are the whole models' batch products (input projections of all 126 frames of a 2-s
utterance, FC and output layers, the FCN's im2col convolutions). Contenders are interleaved
sample by sample on random data (never zeros); G/s = 1e9 multiply-adds per second, p50; the
ratio is intadd's rate over C fp32's in the same run. "pruned" has a share --zeros (default
half) of its weights zero; its G/s count every weight, zero or not (the dense work it replaces).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import kernels as K
from seofp_lab.infer.bench import environment

# rows x cols @ n: the demo BLSTM 2 x 128 (input 257 / 256, output 257 x 256), the paper's
# BLSTM 2 x 257 + FC 300 (input 257 / 514, FC 300 x 514, output 257 x 300 padded to 288 here),
# the FCN-10's middle convolutions (30 x 1648 per position at 48 positions)
SHAPES = "512x257@126,512x256@126,1028x257@126,1028x514@126,300x514@126,257x256@126," \
         "257x288@126,30x1648@48"
# name: (kernel, layout, pruned, skip_zeros); the pruned ones have a share --zeros of their
# weights zero, "masked" through the dense tiles' zero masks, "skip" through the zero-skipping
# index (kernels/sparse.c)
CONTENDERS = {"fp32": ("fp32", "auto", False, None),
              "intadd16": ("intadd", "addends", False, False),
              "intadd8": ("intadd", "codes", False, False),
              "pruned16 masked": ("intadd", "addends", True, False),
              "pruned16 skip": ("intadd", "addends", True, True),
              "pruned8 skip": ("intadd", "codes", True, True)}


def _weights(rng: np.random.Generator, rows: int, cols: int, zeros: float) -> np.ndarray:
    e = rng.integers(-9, -2, size=(rows, cols))
    w = np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)
    w[rng.random((rows, cols)) < zeros] = 0.0
    return w


class _Call:
    """One contender's seofp_gemm with its buffers allocated once."""

    def __init__(self, layer: K.PackedLayer, x: np.ndarray) -> None:
        self.layer, self.x = layer, x
        self.n = x.shape[0]
        self.y = np.empty((self.n, layer.rows), np.float32)
        self.s = np.empty(int(K.lib.seofp_gemm_scratch_floats(layer.struct, self.n)), np.float32)
        self.args = (layer.struct, K.ffi.from_buffer("float[]", x), self.n, layer.cols,
                     K.ffi.from_buffer("float[]", self.y), layer.rows, 1,
                     K.ffi.from_buffer("float[]", self.s))

    def __call__(self, reps: int) -> float:
        f, a = K.lib.seofp_gemm, self.args
        t = time.perf_counter()
        for _ in range(reps):
            rc = f(*a)
        dt = time.perf_counter() - t
        if rc < 0:
            raise RuntimeError(f"seofp_gemm failed with status {rc}")
        return dt / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--shapes", default=SHAPES, help="rows x cols @ n, comma separated")
    ap.add_argument("--target-ms", type=float, default=4.0, help="time per sample")
    ap.add_argument("--zeros", type=float, default=0.5, help="share of zero weights, pruned")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    console = Console(width=160)
    table = Table(title="batch > 1: G multiply-adds/s p50, ratio vs C fp32 (same run), 1 thread")
    table.add_column("shape")
    for name in CONTENDERS:
        table.add_column(name, justify="right")
    for name in list(CONTENDERS)[1:]:
        table.add_column(f"{name}/fp32", justify="right")
    for spec in args.shapes.split(","):
        shape, n = spec.split("@")
        rows, cols = map(int, shape.split("x"))
        x = rng.standard_normal((int(n), cols)).astype(np.float32)
        calls = {}
        for name, (kernel, layout, pruned, skip) in CONTENDERS.items():
            w = _weights(rng, rows, cols, args.zeros if pruned else 0.0)
            layer = (K.pack_layer(w, "fp32") if kernel == "fp32" else
                     K.pack_layer(w, kernel, layout, skip_zeros=skip))  # type: ignore[arg-type]
            calls[name] = _Call(layer, x)
        ref = {k: c(3) for k, c in calls.items()}  # warm up, and size the repetitions
        reps = {k: max(1, int(args.target_ms * 1e-3 / t)) for k, t in ref.items()}
        times: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(args.samples):
            for k, c in calls.items():
                times[k].append(c(reps[k]))
        macs = rows * cols * int(n)
        rate = {k: macs / float(np.median(v)) / 1e9 for k, v in times.items()}
        table.add_row(spec, *(f"{rate[k]:.1f}" for k in CONTENDERS),
                      *(f"{rate[k] / rate['fp32']:.2f}" for k in list(CONTENDERS)[1:]))
    console.print(table)
    console.print(environment())


if __name__ == "__main__":
    main()
