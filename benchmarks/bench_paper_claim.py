"""The paper's 1.212x in its own setting: scalar C, an fp32 multiply against the integer add.

``benchmarks/paper_claim.c`` is compiled twice with cffi: scalar (``-O2 -fno-tree-vectorize
-fno-tree-slp-vectorize``: one multiply or one integer add per product, as a plain C loop on a
CPU without SIMD) and vectorised (``-O3 -mavx2 -mfma``: the same source, 8 lanes per
instruction). Both with ``-ffp-contract=off``, so the multiply is a multiply and an add, never a
fused multiply-add. Contenders per build: ``mul`` (fp32 weights), ``intadd`` (the paper's
x_bits + w_bits - bias on 32-bit weight words) and ``code8`` (the same add from one byte per
weight: the code is shifted into place first). Shapes: the FCN-10 convolutions as products over
64 time steps (30 x 1,650 per middle layer) and the paper BLSTM's matrices at batch 1 (one
frame). Columns are rounded down to a multiple of 16 (the loops' lane count; 1,650 -> 1,648,
257 -> 256, 514 -> 512, 300 -> 288). For reference the engine's own AVX2 kernels (fp32 FMA vs
intadd on 16-bit addends and 1-byte codes, ``infer/kernels.py``) run on the same shapes.

Ratios are mul time / intadd time (> 1: the integer adder is faster), medians of interleaved
samples, one thread; "best" is the ratio of the fastest samples (steadier on a loaded machine).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_paper_claim.py
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from cffi import FFI
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import kernels as K
from seofp_lab.infer.bench import environment

HERE = Path(__file__).resolve().parent
CDEF = """
void mul_gemm(const float *w, int rows, int cols, const float *x, int n, float *y, int reps);
void intadd_gemm(const uint32_t *wb, int rows, int cols, const uint32_t *xb, int n, float *y,
                 int reps);
void code8_gemm(const uint8_t *code, int rows, int cols, const uint32_t *xb, int n, float *y,
                int reps);
double peak_fma(long iters);
double peak_intadd(long iters);
"""
BUILDS = {
    "scalar": ["-O2", "-fno-tree-vectorize", "-fno-tree-slp-vectorize", "-ffp-contract=off"],
    "vector": ["-O3", "-mavx2", "-mfma", "-ffp-contract=off"],
}
# name: (rows, cols, n): FCN-10 layers over 64 time steps, the paper BLSTM's matrices per frame
SHAPES = {
    "fcn first conv 30x55": (30, 48, 64),
    "fcn middle conv 30x1650": (30, 1648, 64),
    "fcn last conv 1x1650": (1, 1648, 64),
    "blstm W_ih l0 1028x257": (1028, 256, 1),
    "blstm W_hh 1028x257": (1028, 256, 1),
    "blstm W_ih l1 1028x514": (1028, 512, 1),
    "blstm fc 300x514": (300, 512, 1),
    "blstm out 257x300": (257, 288, 1),
}
BIAS = np.uint32(127 << 23)


def build(name: str, flags: list[str], tmp: Path) -> ModuleType:
    ffi = FFI()
    ffi.cdef(CDEF)
    module = f"_paper_claim_{name}"
    ffi.set_source(module, (HERE / "paper_claim.c").read_text(), extra_compile_args=flags)
    path = ffi.compile(tmpdir=str(tmp))
    spec = importlib.util.spec_from_file_location(module, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def operands(rows: int, cols: int, n: int, rng: np.random.Generator) -> dict[str, Any]:
    e = rng.integers(-12, -2, size=(rows, cols))
    w = np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)
    x = rng.standard_normal((n, cols)).astype(np.float32)
    e_min = int(e.min())
    code = (((w < 0).astype(np.uint8) << 7) | (e - e_min + 1)).astype(np.uint8)
    fold = np.uint32((e_min - 1) % (1 << 9) << 23)  # (e_min - 1) << 23 mod 2^32
    return {"w": w, "x": x, "wb": w.view(np.uint32).copy(), "code": code,
            "xb": (x.view(np.uint32) - BIAS).astype(np.uint32),
            "xb8": (x.view(np.uint32) + fold).astype(np.uint32),
            "ref": x.astype(np.float64) @ w.astype(np.float64).T}


def contenders(mods: dict[str, ModuleType], op: dict[str, Any],
               y: np.ndarray) -> dict[str, Callable[[int], object]]:
    """name -> run(reps): each C build's mul, intadd and code8, and the engine's kernels."""
    (n, rows), cols = y.shape, op["w"].shape[1]
    runs: dict[str, Callable[[int], object]] = {}
    for b, m in mods.items():
        lib, ffi = m.lib, m.ffi
        fy = ffi.from_buffer("float[]", y)
        for name, fn, wk, xk, t in (("mul", lib.mul_gemm, "w", "x", "float[]"),
                                     ("intadd", lib.intadd_gemm, "wb", "xb", "uint32_t[]"),
                                     ("code8", lib.code8_gemm, "code", "xb8", "uint32_t[]")):
            wp = ffi.from_buffer("uint8_t[]" if wk == "code" else t, op[wk])
            xp = ffi.from_buffer(t, op[xk])
            runs[f"{b} {name}"] = functools.partial(_call, fn, wp, rows, cols, xp, n, fy)
    for kern, lay, name in (("fp32", "auto", "engine mul"), ("intadd", "addends", "engine intadd"),
                            ("intadd", "codes", "engine code8")):
        layer = K.pack_layer(op["w"], kern, lay)  # type: ignore[arg-type]
        runs[name] = functools.partial(_engine, layer, op["x"])
    return runs


def _call(fn: Any, w: Any, rows: int, cols: int, x: Any, n: int, y: Any, reps: int) -> None:
    fn(w, rows, cols, x, n, y, reps)


def _engine(layer: K.PackedLayer, x: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        K.gemm(layer, x)


def measure_peak(lib: Any, samples: int = 9) -> dict[str, float]:
    """Products per ns of back-to-back FMAs and of integer add + float add pairs (medians)."""
    out = {}
    for name, fn in (("fma", lib.peak_fma), ("intadd", lib.peak_intadd)):
        rates = []
        for _ in range(samples):
            t0 = time.perf_counter()
            products = fn(200_000)
            rates.append(products / (time.perf_counter() - t0) / 1e9)
        out[name] = float(np.median(rates))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--target-ms", type=float, default=4.0, help="time per sample and contender")
    args = ap.parse_args()
    builds = dict(BUILDS) if K.lib.seofp_avx2_supported() else {"scalar": BUILDS["scalar"]}
    with tempfile.TemporaryDirectory() as tmp:
        mods = {b: build(b, flags, Path(tmp)) for b, flags in builds.items()}
        rng = np.random.default_rng(0)
        table = Table(title=f"fp32 multiply vs integer add: ns per product, 1 thread, medians of "
                            f"{args.samples} interleaved samples")
        for col in ("shape (rows x cols, n)", "build", "mul (engine: fp32 FMA)",
                    "intadd (engine: 16-bit)", "code8 (engine: 8-bit)", "mul / intadd",
                    "mul / code8", "mul / intadd, best"):
            table.add_column(col, justify="right")
        for label, (rows, cols, n) in SHAPES.items():
            op = operands(rows, cols, n, rng)
            y = np.empty((n, rows), np.float32)
            runs = contenders(mods, op, y)
            for name, r in runs.items():  # every contender computes the same sums
                y[:] = 0
                if name.startswith("engine"):
                    continue
                r(1)
                bound = cols * 2.0**-22 * (np.abs(op["x"]) @ np.abs(op["w"]).T)
                if not (np.abs(y - op["ref"]) <= bound + 1e-30).all():
                    sys.exit(f"{label}: {name} disagrees with the float64 product")
            reps = {}
            for name, r in runs.items():
                t0 = time.perf_counter()
                r(1)
                once = max(time.perf_counter() - t0, 1e-7)
                reps[name] = max(1, int(args.target_ms * 1e-3 / once))
            times: dict[str, list[float]] = {nm: [] for nm in runs}
            for _ in range(args.samples):
                for name, r in runs.items():
                    t0 = time.perf_counter()
                    r(reps[name])
                    times[name].append((time.perf_counter() - t0) / reps[name])
            per = {nm: 1e9 * float(np.median(t)) / (rows * cols * n) for nm, t in times.items()}
            best = {nm: float(np.min(t)) for nm, t in times.items()}  # robust to a loaded machine
            for b in (*mods, "engine"):
                m, i, c = (per[f"{b} {k}"] for k in ("mul", "intadd", "code8"))
                table.add_row(f"{label} ({rows}x{cols}, {n})" if b == "scalar" else "", b,
                              f"{m:.3f}", f"{i:.3f}", f"{c:.3f}", f"{m / i:.3f}", f"{m / c:.3f}",
                              f"{best[f'{b} mul'] / best[f'{b} intadd']:.3f}")
    console = Console(width=140)
    console.print(table)
    if "vector" in mods:
        peak = measure_peak(mods["vector"].lib)
        console.print("arithmetic peak of this core (products per ns, 1 thread, 8 lanes x 12 "
                      "chains): " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()))
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))
    console.print("builds: " + "; ".join(f"{b}: {' '.join(f)}" for b, f in builds.items()))


if __name__ == "__main__":
    main()
