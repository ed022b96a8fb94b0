"""LSTM per-frame time (the shapes of docs/engine.md#targets), C kernels vs PyTorch fp32 and dynamic
int8, 1 thread.

Two regimes: cold (contenders strictly interleaved, so every call finds its weights evicted by the
others': a machine serving many models) and warm (each contender runs a burst of consecutive calls
in its turn, the first unrecorded: one model streaming on a dedicated core).
Cases: the offline BLSTM (one call over T frames: W_ih as one GEMM, then W_hh per step; time / T),
the BLSTM 2x512 frame step (one frame through every layer and direction with carried state:
every weight read once per frame, 40 MB in fp32 / 10 MB in codes) and the uni-LSTM 2x512
streaming step (one ``seofp_lstm_stack`` call per frame, as ``Engine.stream``). Contenders are
interleaved sample by sample; medians of >= 31 samples after a warm-up; random SEOFP weights and
random inputs (never zeros). Ratios are against torch fp32 with its default (oneDNN) path;
torch_fp32_nodnn is the same model with oneDNN disabled.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lstm_step.py
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from seofp_lab.infer import kernels as K
from seofp_lab.infer.bench import environment

# C contenders: (kernel, intadd layout); intadd runs with both layouts (seofp.h: 1-byte codes,
# 16-bit addends), which the engine picks between by model size
CONTENDERS = {"c_fp32": ("fp32", "auto"), "c_intadd8": ("intadd", "codes"),
              "c_intadd16": ("intadd", "addends"), "c_decode": ("decode", "auto")}
NAMES = ["torch_fp32", "torch_fp32_nodnn", "torch_int8", *CONTENDERS]
# --threads 2: the same kernels with batch-1 products split over two threads
# (docs/engine.md#threading)
TWO_THREADS = {f"{n}_2t": CONTENDERS[n] for n in ("c_intadd8", "c_intadd16", "c_decode")}


def _w(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    e = rng.integers(-12, -2, size=(rows, cols))
    return np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)


def _threaded(fn: Callable[[], object], n: int) -> Callable[[], object]:
    def run() -> object:
        with K.use_threads(n):
            return fn()
    return run


def _case(rng: np.random.Generator, hidden: int, bidir: bool, frames: int,
          step: bool, two_threads: bool = False) -> dict[str, Callable[[], object]]:
    """Runners of one case; ``step``: one frame per call with carried state."""
    dirs, layers, n_in = (2 if bidir else 1), 2, 257
    ref = nn.LSTM(n_in, hidden, layers, batch_first=True, bidirectional=bidir).eval()
    mats = []
    with torch.no_grad():
        for li in range(layers):
            width = n_in if li == 0 else hidden * dirs
            for d in range(dirs):
                sfx = f"l{li}" + ("_reverse" if d else "")
                wih, whh = _w(rng, 4 * hidden, width), _w(rng, 4 * hidden, hidden)
                bias = (rng.standard_normal(4 * hidden) * 0.1).astype(np.float32)
                getattr(ref, f"weight_ih_{sfx}").copy_(torch.from_numpy(wih))
                getattr(ref, f"weight_hh_{sfx}").copy_(torch.from_numpy(whh))
                getattr(ref, f"bias_ih_{sfx}").copy_(torch.from_numpy(bias))
                getattr(ref, f"bias_hh_{sfx}").zero_()
                mats.append((wih, whh, bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(ref, {nn.LSTM}, dtype=torch.qint8)
    x = rng.standard_normal((frames, n_in)).astype(np.float32)
    tx = torch.from_numpy(x)[None]
    state = (torch.zeros(layers * dirs, 1, hidden), torch.zeros(layers * dirs, 1, hidden))

    def t_run(m: nn.Module, onednn: bool = True) -> Callable[[], object]:
        def run() -> object:
            # oneDNN's per-call set-up dominates one-frame calls; "nodnn" shows torch without it
            with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=onednn):
                return m(tx, state) if step else m(tx)
        return run

    fns: dict[str, Callable[[], object]] = {"torch_fp32": t_run(ref),
                                            "torch_fp32_nodnn": t_run(ref, onednn=False),
                                            "torch_int8": t_run(q)}
    contenders = {**CONTENDERS, **(TWO_THREADS if two_threads else {})}
    for name, (k, layout) in contenders.items():
        packed = [(K.pack_layer(a, k, layout), K.pack_layer(b, k, layout), c)  # type: ignore[arg-type]
                  for a, b, c in mats]
        hs = [np.zeros(hidden, np.float32) for _ in packed]
        cs = [np.zeros(hidden, np.float32) for _ in packed]
        outs = [np.empty((frames, hidden * dirs), np.float32) for _ in range(layers)]

        def c_run(packed=packed, hs=hs, cs=cs, outs=outs) -> object:
            inp = x
            for li in range(layers):
                for d in range(dirs):
                    i = li * dirs + d
                    wih, whh, b = packed[i]
                    if not step:  # a new utterance: zero state
                        hs[i].fill(0.0)
                        cs[i].fill(0.0)
                    K.lstm_direction(wih, whh, b, inp, hs[i], cs[i], outs[li], d * hidden,
                                     d == 1)
                inp = outs[li]
            return inp

        stack = None if bidir else K.LSTMStack(packed)
        st = np.zeros((2 * layers, hidden), np.float32)

        def stack_run(stack=stack, st=st) -> object:
            # the engine's unidirectional path: the whole stack in one C call, state in place
            if not step:
                st.fill(0.0)
            return stack.run(x, st)[0]

        fns[name] = c_run if bidir else stack_run
        if name.endswith("_2t"):
            fns[name] = _threaded(fns[name], 2)
    return fns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--frames", type=int, default=64, help="frames of the offline cases")
    ap.add_argument("--mode", choices=["cold", "warm", "both"], default="both")
    ap.add_argument("--burst", type=int, default=4, help="recorded calls per turn when warm")
    ap.add_argument("--threads", type=int, choices=[1, 2], default=1,
                    help="2: also time the C kernels with batch-1 products on two threads")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = [("BLSTM 2x512 offline", 512, True, args.frames, False),
             ("BLSTM 2x512 frame step", 512, True, 1, True),
             ("BLSTM 2x257 offline", 257, True, args.frames, False),
             ("uni-LSTM 2x512 stream step", 512, False, 1, True)]
    tables = {}
    for mode in ("cold", "warm") if args.mode == "both" else (args.mode,):
        burst = 1 if mode == "cold" else args.burst + 1
        title = ("cold: one call per contender in turn, so each finds its weights evicted by the "
                 "others' (a machine serving many models)" if mode == "cold" else
                 f"warm: {args.burst} consecutive calls per contender in turn after one unrecorded"
                 " (one model streaming on its core)")
        table = Table(title=f"LSTM per-frame time, µs p50 (best) [× torch fp32 p50]; 1 thread "
                            f"(_2t: 2), {args.samples} interleaved rounds; {title}")
        table.add_column("case")
        names = NAMES + (list(TWO_THREADS) if args.threads == 2 else [])
        for n in names:
            table.add_column(n, justify="right")
        tables[mode] = table
        for label, hidden, bidir, frames, step in cases:
            fns = _case(rng, hidden, bidir, frames, step, args.threads == 2)
            times: dict[str, list[float]] = {n: [] for n in fns}
            for i in range(args.samples + args.warmup):
                for n, f in fns.items():  # interleaved A B C D E (warm: A A A B B B ...)
                    for k in range(burst):
                        t0 = time.perf_counter()
                        f()
                        if i >= args.warmup and (k > 0 or burst == 1):
                            times[n].append((time.perf_counter() - t0) / frames)
            base = float(np.median(times["torch_fp32"]))
            table.add_row(label, *(f"{1e6 * np.median(times[n]):.0f} ({1e6 * min(times[n]):.0f}) "
                                   f"[{base / np.median(times[n]):.2f}×]" for n in names))
    console = Console(width=160)
    for table in tables.values():
        console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


if __name__ == "__main__":
    main()
