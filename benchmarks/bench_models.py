"""Whole-model latency: PyTorch fp32 eager, PyTorch dynamic int8 (LSTM and Linear quantized), ONNX
Runtime (the network in ORT, one thread, the same numpy STFT around it), the
C engine's fp32 loop, intadd and decode, interleaved in one run (docs/engine.md#benchmarking).

Models have random weights rounded to SEOFP (the paper's s1e5 window), realistic feature
statistics and batch-norm statistics; inputs are random waveforms (never zeros).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_models.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seofp_lab.infer import engine as engine_mod
from seofp_lab.infer import kernels as K
from seofp_lab.infer import modelfile
from seofp_lab.infer.bench import bench_model, print_table
from seofp_lab.infer.export import serialize_model

# random SEOFP-rounded models are a test helper (tests/random_models.py), shared with this benchmark
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from random_models import seofp_model  # noqa: E402

# name: (family, constructor parameters, utterance seconds)
MODELS: dict[str, tuple[str, dict[str, object], float]] = {
    "demo": ("blstm", {"hidden": 128, "layers": 2, "fc": 0, "target": "mask"}, 2.0),  # make demo
    "blstm257": ("blstm", {"hidden": 257, "layers": 2, "fc": 300}, 2.0),  # the paper's BLSTM
    "blstm512": ("blstm", {"hidden": 512, "layers": 2, "fc": 0}, 2.0),
    "lstm256": ("lstm", {"hidden": 256, "layers": 2, "fc": 0, "target": "mask"}, 2.0),  # causal
    "lstm512": ("lstm", {"hidden": 512, "layers": 2, "fc": 0, "target": "mask"}, 2.0),
    "fcn10": ("fcn", {}, 1.0),  # the papers' FCN-10 (30 channels, kernel 55)
}


def skip_control(model: torch.nn.Module, seconds: float, samples: int) -> tuple[float, float]:
    """A pruned model's C intadd with the zero-skipping index (pack_layer's rule) and without it
    (every zero weight masked in the dense tiles), interleaved in one run: p50 ms of each."""
    mf = modelfile.read(serialize_model(model))
    share = K.SKIP_ZEROS_MIN_SHARE
    skip = engine_mod.Engine(mf, "intadd")
    try:
        K.SKIP_ZEROS_MIN_SHARE = 2.0  # no layer qualifies
        masked = engine_mod.Engine(mf, "intadd")
    finally:
        K.SKIP_ZEROS_MIN_SHARE = share
    wave = (np.random.default_rng(0).standard_normal(int(seconds * 16000)) * 0.1).astype(
        np.float32)
    times: dict[str, list[float]] = {"skip": [], "masked": []}
    for i in range(samples + 3):
        for name, eng in (("skip", skip), ("masked", masked)):
            t0 = time.perf_counter()
            eng.enhance(wave)
            if i >= 3:  # warm-up
                times[name].append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times["skip"])), 1e3 * float(np.median(times["masked"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="demo,blstm257,lstm256,fcn10",
                    help=f"comma-separated, from {sorted(MODELS)}")
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prune", type=float, default=0.0,
                    help="zero this fraction of every weight by magnitude (the demo's pruned "
                         "variant: 0.5); also times C intadd with and without zero skipping")
    args = ap.parse_args()
    for name in args.models.split(","):
        family, params, seconds = MODELS[name]
        result = bench_model(seofp_model(family, params, prune=args.prune), seconds, args.samples,
                             args.warmup)
        pruned = f", {args.prune:.0%} pruned" if args.prune else ""
        print_table(result, f"{name} {params}{pruned}: {seconds:g} s utterance, 1 thread, "
                            f"{args.samples} interleaved samples")
        if args.prune:  # the control of zero skipping: the same model with every zero masked
            sk, ma = skip_control(seofp_model(family, params, prune=args.prune), seconds,
                                  args.samples)
            print(f"C intadd, same run, {args.samples} interleaved samples: zero skipping "
                  f"{sk:.2f} ms, zero weights masked {ma:.2f} ms p50 ({ma / sk:.2f}x)")


if __name__ == "__main__":
    main()
