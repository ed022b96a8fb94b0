"""Where the C engine's time goes on a whole model, piece by piece, against this core's peak.

For each model of ``bench_models.py`` (2-s utterance, one thread) and each C kernel: the numpy
STFT and features, every LSTM layer's input projection (one GEMM over all frames) and its
recurrence (the rest of the layer: one W_hh product and the gates per frame), the FC and output
layers, the gain and the inverse STFT; the multiply-adds of each piece, its rate, and the time it
would take at the arithmetic peak measured here (back-to-back FMAs, ``bench_paper_claim.py``).
Medians of interleaved samples (pieces and kernels alternate).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/profile_engine.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
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
from bench_paper_claim import BUILDS, build, measure_peak  # noqa: E402
from random_models import seofp_model  # noqa: E402

FS = 16000


def pieces(eng: engine_mod.Engine, wave: np.ndarray) -> dict[str, tuple[Callable[[], object],
                                                                          float]]:
    """name -> (run, multiply-adds) for an LSTM-family engine; inputs computed once here."""
    spec = stft.stft(wave, eng.n_fft, eng.hop)
    feats = np.ascontiguousarray((stft.lps(spec, eng.lps_eps) - eng.mean) / eng.std, np.float32)
    frames = feats.shape[0]
    out: dict[str, tuple[Callable[[], object], float]] = {
        "stft + features": (lambda: (stft.lps(stft.stft(wave, eng.n_fft, eng.hop), eng.lps_eps)
                                     - eng.mean) / eng.std, 0.0)}
    x = feats
    for li, dirs in enumerate(eng.cells):
        n_in, h = dirs[0][0].cols, eng.hidden
        gemm_macs = len(dirs) * frames * 4 * h * n_in
        rec_macs = len(dirs) * frames * 4 * h * h

        def gemms(dirs=dirs, x=x) -> None:
            for wih, _, _ in dirs:
                K.gemm(wih, x)

        if len(dirs) == 2:
            def layer(dirs=dirs, x=x) -> np.ndarray:
                return K.blstm_layer(dirs[0], dirs[1], x)[0]
        else:
            def layer(dirs=dirs, x=x, h=h) -> np.ndarray:
                o = np.empty((x.shape[0], h), np.float32)
                wih, whh, b = dirs[0]
                K.lstm_direction(wih, whh, b, x, np.zeros(h, np.float32),
                                 np.zeros(h, np.float32), o)
                return o
        out[f"L{li} input GEMM"] = (gemms, float(gemm_macs))
        out[f"L{li} whole layer"] = (layer, float(gemm_macs + rec_macs))
        x = layer()
    if eng.fc is not None:
        fc_x = x
        out["fc"] = (lambda: K.linear(eng.fc[0], eng.fc[1], fc_x, "relu"),
                     float(frames * eng.fc[0].rows * eng.fc[0].cols))
        x = K.linear(eng.fc[0], eng.fc[1], x, "relu")[0]
    act = "sigmoid" if eng.target == "mask" else "none"
    out_x = x
    out["output layer"] = (lambda: K.linear(eng.out[0], eng.out[1], out_x, act),
                           float(frames * eng.out[0].rows * eng.out[0].cols))
    out["gain + inverse STFT"] = (lambda: stft.istft(stft.with_phase(np.abs(spec), spec),
                                                     wave.size, eng.n_fft, eng.hop), 0.0)
    out["whole model"] = (lambda: eng.enhance(wave), 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="demo,blstm257,lstm256")
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--prune", type=float, default=0.0,
                    help="zero this fraction of every weight by magnitude (0.5: the demo's "
                         "pruned variant)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peak = measure_peak(build("vector", BUILDS["vector"], Path(tmp)).lib)["fma"]
    console = Console(width=150)
    wave = (np.random.default_rng(0).standard_normal(2 * FS) * 0.1).astype(np.float32)
    for name in args.models.split(","):
        family, params, _ = MODELS[name]
        mf = modelfile.read(serialize_model(seofp_model(family, params, prune=args.prune)))
        runs = {k: pieces(engine_mod.Engine(mf, k), wave)  # type: ignore[arg-type]
                for k in ("fp32", "intadd", "decode")}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.samples):
            for k, ps in runs.items():
                for p, (fn, _) in ps.items():
                    t0 = time.perf_counter()
                    fn()
                    times.setdefault((k, p), []).append(time.perf_counter() - t0)
        med = {key: 1e3 * float(np.median(t)) for key, t in times.items()}
        pruned = f", {args.prune:.0%} pruned" if args.prune else ""
        table = Table(title=f"{name} {params}{pruned}: 2 s utterance, ms per piece (medians of "
                            f"{args.samples}), peak {peak:.1f} multiply-adds per ns (FMA)")
        for col in ("piece", "M multiply-adds", "fp32 ms", "intadd ms", "decode ms",
                    "intadd G/s", "ms at peak", "intadd / peak time"):
            table.add_column(col, justify="right")
        total_macs = 0.0
        for p, (_, macs) in runs["intadd"].items():
            if p.endswith("whole layer"):  # the recurrence: layer minus its input GEMM
                g = p.replace("whole layer", "input GEMM")
                for k in runs:
                    med[(k, p.replace("whole layer", "recurrence"))] = med[(k, p)] - med[(k, g)]
                macs -= runs["intadd"][g][1]
                p = p.replace("whole layer", "recurrence")
            if p != "whole model":
                total_macs += macs
            else:
                macs = total_macs
            at_peak = macs / peak / 1e6
            rate = macs / med[("intadd", p)] / 1e6 if macs else 0.0
            table.add_row(p, f"{macs / 1e6:.1f}" if macs else "", f"{med[('fp32', p)]:.2f}",
                          f"{med[('intadd', p)]:.2f}", f"{med[('decode', p)]:.2f}",
                          f"{rate:.1f}" if macs else "", f"{at_peak:.2f}" if macs else "",
                          f"{med[('intadd', p)] / at_peak:.1f}x" if macs else "")
        console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


if __name__ == "__main__":
    main()
