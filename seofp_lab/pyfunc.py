"""The C engine as an MLflow pyfunc model, so ``mlflow models serve`` enhances audio over HTTP
(docs/mlflow.md#serving).

The logged model holds the run's ``.seofp`` file (what the engine runs) and its checkpoint (what
it came from). ``predict`` takes a DataFrame (or a dict / list of dicts) with, per row, either

- ``wav``: a base64-encoded audio file (any rate, any channel count soundfile reads), answered
  with ``wav``: the enhanced audio as base64 32-bit float WAV at the input's rate, the same bytes
  ``seofp enhance`` writes for that file; or
- ``audio``: a list of float samples in [-1, 1] and ``sample_rate`` (Hz), answered with
  ``audio``: the enhanced samples at that rate, and ``sample_rate``.

A bad row (no such column, undecodable base64, not audio, non-finite samples, too short for one
STFT frame) raises :class:`PayloadError`, an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``:
the scoring server answers it with HTTP 400 and this message.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

SEOFP_ARTIFACT = "seofp"  # the .seofp file, in the logged model's artifacts
CHECKPOINT_ARTIFACT = "checkpoint"
MAX_SECONDS = 600.0  # longer requests are refused (one request holds the whole signal)


class PayloadError(MlflowException):
    """A request the model cannot answer; the scoring server replies HTTP 400 with the message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"seofp enhancer: {message}", error_code=INVALID_PARAMETER_VALUE)


def _rows(model_input: Any) -> list[dict[str, Any]]:
    """The request as a list of row dicts, whatever form the server or a caller passed: a
    DataFrame, a list of row dicts, one row dict, or a dict of columns."""
    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict(orient="records")
    if isinstance(model_input, list) and model_input and all(isinstance(r, dict)
                                                             for r in model_input):
        return list(model_input)
    if isinstance(model_input, dict) and model_input:
        rate = model_input.get("sample_rate")
        one_row = isinstance(model_input.get("wav"), str) or (
            rate is not None and np.ndim(rate) == 0)  # {"inputs": {...}} arrives as 0-d arrays
        if one_row:
            return [{k: v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
                     for k, v in model_input.items()}]
        columns = {k: list(v) for k, v in model_input.items()
                   if isinstance(v, list | tuple | np.ndarray) and np.ndim(v) > 0}
        lengths = {len(v) for v in columns.values()}
        if len(columns) == len(model_input) and len(lengths) == 1:
            return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(),
                                                                        strict=True)]
    raise PayloadError(f"expected a DataFrame, a dict or a list of dicts with a 'wav' or "
                       f"'audio' + 'sample_rate' column but got {type(model_input).__name__}")


def _decode_wav(text: Any, row: int) -> tuple[np.ndarray, int]:
    import soundfile as sf  # noqa: PLC0415

    from seofp_lab.data.audio import read_audio  # noqa: PLC0415
    from seofp_lab.errors import SeofpError  # noqa: PLC0415

    if not isinstance(text, str) or not text:
        raise PayloadError(f"row {row}: expected 'wav' to be a non-empty base64 string but got "
                             f"{type(text).__name__}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"row {row}: 'wav' is not valid base64 ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="seofp-serve-") as tmp:
        path = Path(tmp, "input.wav")
        path.write_bytes(data)
        try:
            rate = int(sf.info(str(path)).samplerate)
            x = read_audio(path)  # 16 kHz mono float32, exactly as `seofp enhance` reads a file
        except (RuntimeError, SeofpError, ValueError) as exc:
            raise PayloadError(f"row {row}: 'wav' does not decode to audio: "
                                 f"{str(exc).replace(str(path), 'the payload')}") from None
    return x, rate


def _array(samples: Any, rate: Any, row: int) -> tuple[np.ndarray, int]:
    from seofp_lab.data.audio import FS, resample_audio  # noqa: PLC0415

    try:
        fs = int(rate)
    except (TypeError, ValueError):
        fs = 0
    if isinstance(rate, float) and not rate.is_integer() or fs < 8000 or fs > 192000:
        raise PayloadError(f"row {row}: expected 'sample_rate' to be an integer rate in Hz "
                             f"(8000 to 192000) next to 'audio' but got {rate!r}")
    try:
        x = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        raise PayloadError(f"row {row}: expected 'audio' to be a list of numbers") from None
    if x.ndim != 1 or x.size == 0:
        raise PayloadError(f"row {row}: expected 'audio' to be a non-empty flat list of samples "
                             f"but got shape {x.shape}")
    if not np.isfinite(x).all():
        raise PayloadError(f"row {row}: expected finite samples in 'audio' but got NaN or inf")
    return resample_audio(x.astype(np.float32), fs, FS), fs


class SeofpEnhancer(mlflow.pyfunc.PythonModel):
    """The pyfunc ``python_model``: one C engine (intadd kernel), loaded once per server."""

    def __init__(self, kernel: str = "intadd") -> None:
        self.kernel = kernel
        self.engine: Any = None

    def load_context(self, context: Any) -> None:
        from seofp_lab.infer.engine import load  # noqa: PLC0415

        self.engine = load(context.artifacts[SEOFP_ARTIFACT], kernel=self.kernel)

    def enhance_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from seofp_lab.data.audio import FS, resample_audio  # noqa: PLC0415
        from seofp_lab.errors import SeofpError  # noqa: PLC0415

        if self.engine is None:
            raise RuntimeError("SeofpEnhancer used before load_context")
        if not rows:
            raise PayloadError("expected at least one row")
        out = []
        for i, row in enumerate(rows):
            wav = row.get("wav")
            has_wav = wav is not None and not (isinstance(wav, float) and math.isnan(wav))
            if has_wav:
                x, rate = _decode_wav(wav, i)
            elif row.get("audio") is not None:
                x, rate = _array(row.get("audio"), row.get("sample_rate"), i)
            else:
                raise PayloadError(f"row {i}: expected a 'wav' (base64 audio file) or an "
                                     f"'audio' (float samples) + 'sample_rate' column but got "
                                     f"{sorted(row) or 'no columns'}")
            if x.size > MAX_SECONDS * FS:
                raise PayloadError(f"row {i}: expected at most {MAX_SECONDS:g} s of audio but "
                                     f"got {x.size / FS:.1f} s")
            try:
                y = self.engine.enhance(x)
            except (SeofpError, ValueError) as exc:  # e.g. shorter than one STFT frame
                raise PayloadError(f"row {i}: {exc}") from None
            y = resample_audio(y, FS, rate)
            if has_wav:
                out.append({"wav": wav_base64(y, rate)})
            else:
                out.append({"audio": y.astype(np.float64).tolist(), "sample_rate": rate})
        return out

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - any input
        return pd.DataFrame(self.enhance_rows(_rows(model_input)))


def wav_base64(y: np.ndarray, rate: int) -> str:
    """``y`` as a 32-bit float WAV file (the bytes ``seofp enhance`` writes), base64."""
    import soundfile as sf  # noqa: PLC0415

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, dtype=np.float32), rate, subtype="FLOAT", format="WAV")
    return base64.b64encode(buf.getvalue()).decode("ascii")
