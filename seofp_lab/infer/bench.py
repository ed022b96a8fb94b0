"""Side-by-side latency of a model: PyTorch fp32 eager, PyTorch dynamic int8, ONNX Runtime (the
network exported to ONNX with the engine's numpy STFT around it, ``onnx_export.py``), the C
engine's ``fp32`` loop, ``intadd`` and ``decode`` (docs/engine.md#benchmarking: one thread,
warm-up, interleaved samples, p50/p90 and best, every ratio within one run)."""

from __future__ import annotations

import copy
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from seofp_lab.console import console as make_console
from seofp_lab.infer import engine as engine_mod
from seofp_lab.infer import kernels as K
from seofp_lab.infer import modelfile
from seofp_lab.infer.export import serialize_model
from seofp_lab.infer.onnx_export import OnnxEnhancer, OnnxError

FS = 16000
CONTENDERS = ("torch_fp32", "torch_int8", "ort", "c_fp32", "c_intadd", "c_decode")


@dataclass
class BenchResult:
    """Per-contender timings of one run; ``metrics`` holds the names tracking.METRICS knows."""

    rows: list[dict[str, Any]]
    kernel: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """``latency_ms_p50/p90``, ``rtf``, ``speedup_vs_fp32`` and ``speedup_vs_ort`` (ONNX
        Runtime's p50 over this one's) of ``c_<kernel>`` unprefixed, and every contender's as
        ``bench_<contender>_<name>``."""
        out: dict[str, float] = {}
        for row in self.rows:
            vals = {k: row[k] for k in ("latency_ms_p50", "latency_ms_p90", "rtf",
                                        "speedup_vs_fp32", "frame_ms_p50")}
            vals["speedup_vs_ort"] = row["vs_ort"]
            out.update({f"bench_{row['name']}_{k}": v for k, v in vals.items() if v is not None})
            if row["name"] == f"c_{self.kernel}":
                out.update({k: v for k, v in vals.items() if v is not None and k != "frame_ms_p50"})
        return out


def plain_lstm(lstm: nn.LSTM) -> nn.LSTM:
    """A plain ``nn.LSTM`` with the same weights (b_hh = 0 where the source keeps none).

    ``quantize_dynamic`` maps modules by exact type, so the project's ``SingleBiasLSTM`` (an
    ``nn.LSTM`` subclass) would be left in fp32; this copy is what it quantizes.
    """
    plain = nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, bias=True,
                    batch_first=lstm.batch_first, bidirectional=lstm.bidirectional)
    with torch.no_grad():
        for name in plain._flat_weights_names:
            src = getattr(lstm, name, None)
            getattr(plain, name).copy_(src if src is not None else 0.0)
    return plain.eval()


def _torch_int8(model: nn.Module) -> nn.Module | None:
    """Dynamic int8 of the Linear and LSTM layers; None when nothing is quantizable."""
    from torch.ao.quantization import quantize_dynamic  # noqa: PLC0415

    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.LSTM) and type(child) is not nn.LSTM:
                setattr(parent, child_name, plain_lstm(child))
    q = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    changed = any("quantized" in type(m).__module__ for m in q.modules())
    return q if changed else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ort_version() -> str:
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        return "not installed"
    return str(onnxruntime.__version__)


def environment() -> dict[str, str]:
    """What a benchmark table must state (docs/engine.md#benchmarking): CPU, code path, build,
    versions, threads, load average and the BLAS settings."""
    import sysconfig  # noqa: PLC0415

    return {"cpu": _cpu_model(), "cores": str(os.cpu_count()), "variant": K.variant(),
            "compiler": (sysconfig.get_config_var("CC") or "cc").split()[0] + " "
            + (platform.python_compiler() or ""),
            "kernel_flags": "-O3 -std=c11 (target attributes avx2,fma,f16c; runtime dispatch)",
            "torch": torch.__version__, "numpy": np.__version__, "onnxruntime": _ort_version(),
            "threads": f"torch={torch.get_num_threads()} ORT=1 "
                       f"OMP={os.environ.get('OMP_NUM_THREADS', 'unset')} "
                       f"OPENBLAS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
            "load": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset")}


def bench_model(model: nn.Module, seconds: float = 4.0, samples: int = 31, warmup: int = 3,
                kernel: K.Kernel = "intadd", seed: int = 0) -> BenchResult:
    """Side-by-side latency of PyTorch fp32, PyTorch dynamic int8, ONNX Runtime and the three C
    kernels.

    PyTorch's deprecation notices about its own int8 API are silenced here only: the int8
    contender is still what a user would pick instead, and the notices are not about this code.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return _bench_model(model=model, seconds=seconds, samples=samples, warmup=warmup,
                            kernel=kernel, seed=seed)


def _bench_model(model: nn.Module, seconds: float = 4.0, samples: int = 31, warmup: int = 3,
                kernel: K.Kernel = "intadd", seed: int = 0) -> BenchResult:
    """Time every contender on one random utterance of ``seconds``, interleaved A B C ....

    Contenders the model cannot run (intadd/decode on weights that are not SEOFP, int8 on a model
    without quantizable layers, ONNX Runtime when it or ``onnx`` is not installed) are reported
    with ``latency_ms_p50 = None``.
    """
    model = model.eval()
    wave = (np.random.default_rng(seed).standard_normal(int(seconds * FS)) * 0.1).astype(
        np.float32)  # random data, never zeros (docs/engine.md#correctness-tests)
    tw = torch.from_numpy(wave)[None]
    mf = modelfile.read(serialize_model(model))
    runners: dict[str, Callable[[], Any] | None] = {}

    def torch_runner(m: nn.Module) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode():
                return m(tw)
        return run

    runners["torch_fp32"] = torch_runner(model)
    q = _torch_int8(model)
    runners["torch_int8"] = torch_runner(q) if q is not None else None
    try:
        ort = OnnxEnhancer(model, threads=1)
        runners["ort"] = lambda: ort.enhance(wave)
    except OnnxError:
        runners["ort"] = None
    layout = "n/a"
    for k in ("fp32", "intadd", "decode"):
        try:
            eng = engine_mod.Engine(mf, k)  # type: ignore[arg-type]
            runners[f"c_{k}"] = lambda e=eng: e.enhance(wave)
            if k == "intadd":
                layout = eng.intadd_layout
        except K.KernelError:
            runners[f"c_{k}"] = None
    frames = 1 + wave.size // getattr(model, "hop", 256) if hasattr(model, "hop") else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = {**environment(), "intadd_layout": layout}
        live = {n: r for n, r in runners.items() if r is not None}
        for _ in range(warmup):
            for r in live.values():
                r()
        times: dict[str, list[float]] = {n: [] for n in live}
        for _ in range(samples):
            for n, r in live.items():  # interleaved: drift hits every contender alike
                t0 = time.perf_counter()
                r()
                times[n].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    base = float(np.median(times["torch_fp32"]))
    c_base = float(np.median(times["c_fp32"])) if "c_fp32" in times else None
    ort_base = float(np.median(times["ort"])) if "ort" in times else None
    rows = []
    for n in CONTENDERS:
        if n not in times:
            rows.append({"name": n, "latency_ms_p50": None, "latency_ms_p90": None, "rtf": None,
                         "speedup_vs_fp32": None, "frame_ms_p50": None, "best_ms": None,
                         "vs_c_fp32": None, "vs_ort": None})
            continue
        t = np.asarray(times[n])
        p50 = float(np.median(t))
        rows.append({"name": n, "latency_ms_p50": 1e3 * p50,
                     "latency_ms_p90": 1e3 * float(np.percentile(t, 90)),
                     "best_ms": 1e3 * float(t.min()), "rtf": p50 / seconds,
                     "speedup_vs_fp32": base / p50,
                     "vs_c_fp32": c_base / p50 if c_base else None,
                     "vs_ort": ort_base / p50 if ort_base else None,
                     "frame_ms_p50": 1e3 * p50 / frames if frames else None})
    return BenchResult(rows, kernel, env)


def print_table(result: BenchResult, title: str) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title)
    for col in ("contender", "p50 ms", "p90 ms", "best ms", "per frame ms", "RTF", "× torch fp32",
                "× ORT", "× C fp32"):
        table.add_column(col, justify="right")
    for r in result.rows:
        def f(key: str, fmt: str = "{:.2f}", r: dict[str, Any] = r) -> str:
            return "n/a" if r[key] is None else fmt.format(r[key])
        table.add_row(r["name"], f("latency_ms_p50"), f("latency_ms_p90"), f("best_ms"),
                      f("frame_ms_p50", "{:.3f}"), f("rtf", "{:.4f}"), f("speedup_vs_fp32"),
                      f("vs_ort"), f("vs_c_fp32"))
    console = make_console()
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in result.env.items()))


def bench_run(run_id: str, seconds: float = 4.0, samples: int = 31, kernel: K.Kernel = "intadd",
              log: bool = True) -> BenchResult:
    """Benchmark a tracked run's model, print the table, log the metrics to the run."""
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.train.checkpoint import load_checkpoint  # noqa: PLC0415

    model, _, _ = load_checkpoint(tracking.download_artifact(run_id,
                                                             tracking.CHECKPOINT_ARTIFACT))
    result = bench_model(model, seconds, samples, kernel=kernel)
    print_table(result, f"run {run_id}: {seconds:g} s utterance, 1 thread, {samples} samples")
    if log:
        with tracking.resume_run(run_id):
            tracking.log_metrics(result.metrics)
            # where the latencies were measured (reports show it next to them)
            tracking.set_tags({tracking.TAG_KERNEL: kernel,
                               **{f"seofp.bench.{k}": str(v)[:500] for k, v in result.env.items()}})
    return result
