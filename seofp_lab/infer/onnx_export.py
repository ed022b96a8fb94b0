"""A model's network as ONNX, and an ONNX Runtime runner with the engine's numpy STFT around it.

For an LSTM-family model the ONNX graph is the trainable mapping only (``LSTMEnhancer.network``:
standardisation, LSTM, FC, output layer and, for a mask model, the bounded sigmoid gain), from the
noisy LPS ``(1, frames, bins)`` to the gain or standardised clean LPS of the same shape; the STFT,
the LPS and the resynthesis stay in numpy (``infer/stft.py``), exactly as in the C engine. An FCN
is exported whole (waveform ``(1, time)`` in and out). This is what a user who deploys with ONNX
Runtime would run, and the benchmark's ONNX Runtime contender (``infer/bench.py``).

The exporter is torch's TorchScript-based one (``dynamo=False``): it needs the ``onnx`` package and
handles ``nn.LSTM`` as one ONNX ``LSTM`` node per layer.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seofp_lab.errors import SeofpError
from seofp_lab.infer import stft

OPSET = 17


class OnnxError(SeofpError):
    """The ONNX export or ONNX Runtime could not run (a missing package, an unsupported model)."""


class _Network(nn.Module):
    """``LSTMEnhancer.network`` as a module of its own: LPS in, gain or standardised LPS out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, lps_values: torch.Tensor) -> torch.Tensor:
        return self.model.network(lps_values)


def _is_lstm(model: nn.Module) -> bool:
    from seofp_lab.models import LSTMEnhancer  # noqa: PLC0415

    return isinstance(model, LSTMEnhancer)


def onnx_bytes(model: nn.Module) -> bytes:
    """The model's network (LSTM family) or the whole model (FCN) as an ONNX graph, fp32."""
    from seofp_lab.models import FCNEnhancer  # noqa: PLC0415

    model = model.eval()
    if _is_lstm(model):
        bins = model.n_fft // 2 + 1
        module: nn.Module = _Network(model)
        example = torch.randn(1, 8, bins) - 6.0
        names, axes = ["lps"], {"lps": {1: "frames"}, "out": {1: "frames"}}
    elif isinstance(model, FCNEnhancer):
        module, example = model, torch.randn(1, 1024) * 0.1
        names, axes = ["wave"], {"wave": {1: "time"}, "out": {1: "time"}}
    else:
        raise OnnxError(f"Expected an LSTMEnhancer or FCNEnhancer but got "
                        f"{type(model).__name__}")
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():  # torch's notes on its legacy exporter and LSTM batches
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), buf, dynamo=False, input_names=names,
                              output_names=["out"], dynamic_axes=axes, opset_version=OPSET)
    except Exception as exc:  # torch raises its own exporter errors (e.g. onnx not installed)
        raise OnnxError(f"ONNX export of {type(model).__name__} failed: {exc} (the exporter "
                        f"needs the 'onnx' package)") from exc
    return buf.getvalue()


def export_onnx(model: nn.Module, path: str | Path) -> Path:
    """Write :func:`onnx_bytes` to ``path`` atomically and return the path."""
    path = Path(path)
    data = onnx_bytes(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def export_run_onnx(run_id: str, path: str | Path) -> Path:
    """Export a tracked run's checkpoint as ONNX (:func:`onnx_bytes`) to ``path``."""
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.train.checkpoint import load_checkpoint  # noqa: PLC0415

    model, _, _ = load_checkpoint(tracking.download_artifact(run_id,
                                                             tracking.CHECKPOINT_ARTIFACT))
    return export_onnx(model, path)


def session(data: bytes | str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread."""
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError as exc:
        raise OnnxError("ONNX Runtime is not installed (pip install onnxruntime)") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    src = data if isinstance(data, bytes) else str(data)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


class OnnxEnhancer:
    """A model's ONNX graph in ONNX Runtime, with the C engine's numpy STFT around it."""

    def __init__(self, model: nn.Module, threads: int = 1) -> None:
        self.lstm = _is_lstm(model)
        self.sess = session(onnx_bytes(model), threads)
        self.input = self.sess.get_inputs()[0].name
        if self.lstm:
            self.n_fft, self.hop, self.target = model.n_fft, model.hop, model.target
            self.mean = model.feat_mean.detach().cpu().numpy().astype(np.float32)
            self.std = model.feat_std.detach().cpu().numpy().astype(np.float32)

    def network(self, values: np.ndarray) -> np.ndarray:
        """The graph on one input without its batch axis: LPS ``(frames, bins)`` or a wave."""
        x = np.ascontiguousarray(values, np.float32)[None]
        return self.sess.run(None, {self.input: x})[0][0]

    def enhance(self, wave: np.ndarray) -> np.ndarray:
        """``(time,)`` float32 -> ``(time,)`` float32, as ``Engine.enhance``."""
        if not self.lstm:
            return self.network(wave)
        spec = stft.stft(wave, self.n_fft, self.hop)
        y = self.network(stft.lps(spec))
        if self.target == "mask":
            mag = np.abs(spec)
            out = stft.with_phase(y * mag, spec, mag)
        else:
            out = stft.with_phase(stft.lps_to_magnitude(y * self.std + self.mean), spec)
        return stft.istft(out, wave.size, self.n_fft, self.hop)


class _Step(nn.Module):
    """One streaming step of a unidirectional LSTM model with its state as inputs and outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, lps_values: torch.Tensor, h0: torch.Tensor,
                c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model
        h, (hn, cn) = m.lstm((lps_values - m.feat_mean) / m.feat_std, (h0, c0))
        if m.fc is not None:
            h = torch.relu(m.fc(h))
        y = m.out(h)
        if m.target == "mask":
            y = m.mask_floor + (1.0 - m.mask_floor) * torch.sigmoid(y)
        return y, hn, cn


class OnnxStepper:
    """A unidirectional LSTM model's network in ONNX Runtime, frame by frame with carried state
    (the streaming contender: one ``run`` per hop, as ``Engine.stream`` makes one C call)."""

    def __init__(self, model: nn.Module, threads: int = 1) -> None:
        if not _is_lstm(model) or model.bidirectional:
            raise OnnxError("Expected a unidirectional LSTMEnhancer for streaming")
        lstm = model.lstm
        self.shape = (lstm.num_layers, 1, lstm.hidden_size)
        bins = model.n_fft // 2 + 1
        example = (torch.randn(1, 1, bins) - 6.0, torch.zeros(self.shape), torch.zeros(self.shape))
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(_Step(model.eval()), example, buf, dynamo=False,
                                  input_names=["lps", "h0", "c0"], output_names=["out", "h", "c"],
                                  dynamic_axes={"lps": {1: "frames"}, "out": {1: "frames"}},
                                  opset_version=OPSET)
        except Exception as exc:  # torch raises its own exporter errors
            raise OnnxError(f"ONNX export of the LSTM step failed: {exc}") from exc
        self.sess = session(buf.getvalue(), threads)
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.shape, np.float32)
        self.c = np.zeros(self.shape, np.float32)

    def step(self, lps_values: np.ndarray) -> np.ndarray:
        """LPS ``(frames, bins)`` -> the network's output, the state carried to the next call."""
        x = np.ascontiguousarray(lps_values, np.float32)[None]
        y, self.h, self.c = self.sess.run(None, {"lps": x, "h0": self.h, "c0": self.c})
        return y[0]
