"""One LSTM frame step (KERNEL.md §7 shapes): BLSTM 2x512 and 2x257 per frame, uni-LSTM 2x512
streaming step, C kernels vs PyTorch (1 thread). Per-frame time of the offline BLSTM is the
utterance time / frames; the streaming step is one frame through every layer with state.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lstm_step.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import kernels as K


def _w(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    e = rng.integers(-12, -2, size=(rows, cols))
    return np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)


def _case(rng: np.random.Generator, hidden: int, bidir: bool, frames: int,
          samples: int) -> dict[str, list[float]]:
    dirs = 2 if bidir else 1
    ref = torch.nn.LSTM(257, hidden, 2, batch_first=True, bidirectional=bidir).eval()
    mats = []
    with torch.no_grad():
        for li in range(2):
            width = 257 if li == 0 else hidden * dirs
            for d in range(dirs):
                sfx = f"l{li}" + ("_reverse" if d else "")
                wih, whh = _w(rng, 4 * hidden, width), _w(rng, 4 * hidden, hidden)
                getattr(ref, f"weight_ih_{sfx}").copy_(torch.from_numpy(wih))
                getattr(ref, f"weight_hh_{sfx}").copy_(torch.from_numpy(whh))
                mats.append((wih, whh))
    x = rng.standard_normal((frames, 257)).astype(np.float32)
    bias = np.zeros(4 * hidden, np.float32)
    packed = {k: [(K.pack_layer(a, k), K.pack_layer(b, k)) for a, b in mats]
              for k in K.KERNELS}
    tx = torch.from_numpy(x)[None]

    def c_run(k: str) -> None:
        inp = x
        for li in range(2):
            out = np.empty((frames, hidden * dirs), np.float32)
            for d in range(dirs):
                wih, whh = packed[k][li * dirs + d]
                K.lstm_direction(wih, whh, bias, inp, np.zeros(hidden, np.float32),
                                 np.zeros(hidden, np.float32), out, d * hidden, d == 1)
            inp = out

    def t_run() -> None:
        with torch.inference_mode():
            ref(tx)

    fns = {"torch": t_run, **{f"c_{k}": (lambda k=k: c_run(k)) for k in K.KERNELS}}
    times: dict[str, list[float]] = {n: [] for n in fns}
    for i in range(samples + 3):
        for n, f in fns.items():
            t0 = time.perf_counter()
            f()
            if i >= 3:
                times[n].append((time.perf_counter() - t0) / frames)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--frames", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    table = Table(title="LSTM per-frame time, µs p50 (best); 1 thread")
    table.add_column("model")
    names = ["torch", *(f"c_{k}" for k in K.KERNELS)]
    for n in names:
        table.add_column(n, justify="right")
    cases = [("BLSTM 2x512 offline", 512, True, args.frames),
             ("BLSTM 2x257 offline", 257, True, args.frames),
             ("uni-LSTM 2x512 stream step", 512, False, 1)]
    for label, hidden, bidir, frames in cases:
        times = _case(rng, hidden, bidir, frames, args.samples)
        table.add_row(label, *(f"{1e6 * np.median(times[n]):.0f} ({1e6 * min(times[n]):.0f})"
                               for n in names))
    Console().print(table)
    Console().print(f"variant={K.variant()} load={os.getloadavg()}")


if __name__ == "__main__":
    main()
