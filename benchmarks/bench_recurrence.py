"""Time per recurrent LSTM step (W_hh product, gates, state) of the whole-model benchmark's models.

For each model of ``bench_models.py`` (2-s utterance, 126 frames, one thread), each intadd layout
and each LSTM layer: the layer's C call (``blstm_layer`` or ``lstm_direction``) minus its input
projections (one GEMM per direction over all frames), divided by frames x directions: the time of
one direction's step. ``--prune 0.5`` zeros half of every weight by magnitude first (the demo's
pruned variant: intadd then masks zero weights). Medians and best of interleaved samples (on a
shared machine the best is the steadier number); compare two builds by running this script
against each (only ratios within a quiet period mean anything).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_recurrence.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import engine as engine_mod
from seofp_lab.infer import kernels as K
from seofp_lab.infer import modelfile, stft
from seofp_lab.infer.bench import environment
from seofp_lab.infer.export import serialize_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
# random SEOFP-rounded models are a test helper (tests/random_models.py), shared with this benchmark
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_models import MODELS  # noqa: E402
from random_models import seofp_model  # noqa: E402

FS = 16000
KINDS = {0: "codes", 4: "addends", 5: "nibbles"}  # seofp.h SEOFP_INTADD, _INTADD16, _INTADD4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="demo,blstm257,lstm256")
    ap.add_argument("--layouts", default="auto,addends,codes",
                    help="intadd layouts (auto, addends, codes, nibbles)")
    ap.add_argument("--samples", type=int, default=21)
    ap.add_argument("--prune", type=float, default=0.0)
    args = ap.parse_args()
    console = Console(width=130)
    wave = (np.random.default_rng(0).standard_normal(2 * FS) * 0.1).astype(np.float32)
    table = Table(title=f"us per direction-step of the recurrence (median of {args.samples}, "
                        f"{args.prune:.0%} pruned)")
    for col in ("model", "layout", "layer", "W_hh", "kind", "zeros", "us / step p50",
                "us / step best", "G products/s best"):
        table.add_column(col, justify="right")
    for name in args.models.split(","):
        family, params, _ = MODELS[name]
        exp_bits = 3 if "nibbles" in args.layouts else 8
        mf = modelfile.read(serialize_model(seofp_model(family, params, exponent_bits=exp_bits,
                                                        prune=args.prune)))
        for layout in args.layouts.split(","):
            eng = engine_mod.Engine(mf, "intadd", intadd_layout=layout)  # type: ignore[arg-type]
            spec = stft.stft(wave, eng.n_fft, eng.hop)
            x = np.ascontiguousarray((stft.lps(spec, eng.lps_eps) - eng.mean) / eng.std,
                                     np.float32)
            frames = x.shape[0]
            for li, dirs in enumerate(eng.cells):
                h = eng.hidden

                def gemms(dirs=dirs, x=x) -> None:
                    for wih, _, _ in dirs:
                        K.gemm(wih, x)

                def layer(dirs=dirs, x=x, h=h) -> np.ndarray:
                    if len(dirs) == 2:
                        return K.blstm_layer(dirs[0], dirs[1], x)[0]
                    o = np.empty((x.shape[0], h), np.float32)
                    wih, whh, b = dirs[0]
                    K.lstm_direction(wih, whh, b, x, np.zeros(h, np.float32),
                                     np.zeros(h, np.float32), o)
                    return o

                tl, tg = [], []
                for _ in range(2):
                    layer(), gemms()
                for _ in range(args.samples):
                    t0 = time.perf_counter()
                    layer()
                    t1 = time.perf_counter()
                    gemms()
                    tl.append(t1 - t0)
                    tg.append(time.perf_counter() - t1)
                steps = frames * len(dirs)
                p50 = (np.median(tl) - np.median(tg)) / steps
                best = (np.min(tl) - np.min(tg)) / steps
                whh = dirs[0][1]
                table.add_row(name, layout, str(li), f"{whh.rows} x {whh.cols}",
                              KINDS.get(whh.c_kind, str(whh.c_kind)), str(whh.zeros),
                              f"{p50 * 1e6:.2f}", f"{best * 1e6:.2f}",
                              f"{whh.rows * whh.cols / best / 1e9:.1f}")
                x = layer()
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


if __name__ == "__main__":
    main()
