"""Streaming step of the causal LSTM (configs/model/lstm_causal.yaml: 2 x 256, mask): one hop.

Per-hop contenders, interleaved sample by sample, one thread, state carried from hop to hop:
  network step: one STFT frame's features, the network and the gain, with the same numpy around
    every contender: ONNX Runtime (the LSTM step graph with h/c as inputs and outputs,
    ``onnx_export.OnnxStepper``), PyTorch fp32 (a plain ``nn.LSTM``, carried state) and the C
    engine's fp32, intadd and decode (``Engine.spectral`` on one frame, one C call for the stack);
  whole hop: ``Engine.stream().push`` of 256 samples (framing, STFT, network, overlap-add), the
    C engine's intadd, whose p99 must stay under the hop (16 ms at 16 kHz);
  controls of the intadd step: the checked path (per-layer Python around the same 1-byte stack)
    and 16-bit addends for every matrix (intadd_layout="addends", with the fast path).
Random SEOFP weights (s1e5), random input (never zeros); medians and p99 of the samples.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_streaming.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from seofp_lab.infer import engine as engine_mod
from seofp_lab.infer import modelfile, stft
from seofp_lab.infer.bench import environment, plain_lstm
from seofp_lab.infer.export import serialize_model
from seofp_lab.infer.onnx_export import OnnxStepper

# random SEOFP-rounded models are a test helper (tests/random_models.py), shared with this benchmark
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from random_models import seofp_model  # noqa: E402

FS = 16000
PARAMS = {"hidden": 256, "layers": 2, "fc": 0, "target": "mask"}


def runners(model: torch.nn.Module, frames: np.ndarray,
            wave: np.ndarray) -> dict[str, Callable[[int], object]]:
    """name -> run(i): hop i of the utterance (network step on frame i, or push of hop i)."""
    mf = modelfile.read(serialize_model(model))
    out: dict[str, Callable[[int], object]] = {}
    onnx = OnnxStepper(model)

    def ort(i: int) -> object:
        spec = frames[i:i + 1]
        mag = np.abs(spec)
        return stft.with_phase(onnx.step(stft.lps(spec)) * mag, spec, mag)

    out["ort"] = ort
    shape = (model.lstm.num_layers, 1, model.lstm.hidden_size)
    state = [torch.zeros(shape), torch.zeros(shape)]
    lstm = plain_lstm(model.lstm)  # a plain nn.LSTM (b_hh = 0): torch's fast path

    def torch_fp32(i: int) -> object:
        spec = frames[i:i + 1]
        with torch.inference_mode():
            x = (torch.from_numpy(stft.lps(spec))[None] - model.feat_mean) / model.feat_std
            h, (state[0], state[1]) = lstm(x, (state[0], state[1]))
            y = model.out(h)
            gain = (model.mask_floor + (1.0 - model.mask_floor) * torch.sigmoid(y))[0].numpy()
        mag = np.abs(spec)
        return stft.with_phase(gain * mag, spec, mag)

    out["torch_fp32"] = torch_fp32
    for k in ("fp32", "intadd", "decode"):
        eng = engine_mod.Engine(mf, k)  # type: ignore[arg-type]
        st = eng.stack.new_state()
        out[f"c_{k}"] = lambda i, e=eng, s=st: e.spectral(frames[i:i + 1], s)
    # controls of the step path: the checked path (a state given as a list of rows, per-layer
    # Python, the same 1-byte stack) and the offline layouts (16-bit addends for W_hh)
    rows = list(engine_mod.Engine(mf, "intadd").stack.new_state())
    checked = engine_mod.Engine(mf, "intadd")
    out["c_intadd_checked_path"] = lambda i: checked.spectral(frames[i:i + 1], rows)
    addends = engine_mod.Engine(mf, "intadd", intadd_layout="addends")
    st_a = addends.stack.new_state()
    out["c_intadd_addends"] = lambda i: addends.spectral(frames[i:i + 1], st_a)
    eng = engine_mod.Engine(mf, "intadd")
    streams = [eng.stream()]
    hop = eng.hop

    def push(i: int) -> object:
        if i == 0:
            streams[0] = eng.stream()
        return streams[0].push(wave[i * hop:(i + 1) * hop])

    out["c_intadd_whole_hop"] = push
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="utterance length per pass")
    ap.add_argument("--passes", type=int, default=3, help="passes over the utterance")
    ap.add_argument("--prune", type=float, default=0.0,
                    help="zero this fraction of every weight by magnitude (0.5: a pruned model)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = seofp_model("lstm", PARAMS, prune=args.prune)
    wave = (np.random.default_rng(0).standard_normal(int(args.seconds * FS)) * 0.1).astype(
        np.float32)
    frames = stft.stft(wave, 512, 256)
    run = runners(model, frames, wave)
    hops = min(frames.shape[0], wave.size // 256)
    for i in range(8):  # warm-up
        for r in run.values():
            r(i)
    times: dict[str, list[float]] = {n: [] for n in run}
    for _ in range(args.passes):
        for i in range(hops):
            for n, r in run.items():  # interleaved hop by hop
                t0 = time.perf_counter()
                r(i)
                times[n].append(time.perf_counter() - t0)
    hop_ms = 1e3 * 256 / FS
    ort = float(np.median(times["ort"]))
    pruned = f", {args.prune:.0%} pruned" if args.prune else ""
    table = Table(title=f"causal LSTM {PARAMS}{pruned}: one hop ({hop_ms:g} ms), 1 thread, "
                        f"{len(times['ort'])} interleaved samples each")
    for col in ("contender", "p50 ms", "p99 ms", "max ms", "× ORT (p50)", "p99 < hop"):
        table.add_column(col, justify="right")
    for n, t in times.items():
        a = 1e3 * np.asarray(t)
        p99 = float(np.percentile(a, 99))
        table.add_row(n, f"{np.median(a):.3f}", f"{p99:.3f}", f"{a.max():.3f}",
                      f"{ort / float(np.median(t)):.2f}", "yes" if p99 < hop_ms else "NO")
    console = Console()
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


if __name__ == "__main__":
    main()
