"""DNSMOS P.835 (Reddy et al., ICASSP 2022): SIG, BAK and OVRL of a signal alone, no reference.

The models and the scoring code are the ``speechmos`` package's (Microsoft's DNS-challenge
release): its wheel holds ``dnsmos_models/sig_bak_ovr.onnx``, so nothing is downloaded. We only
open its two ONNX sessions on the CPU with a thread count of our choosing (one per worker process
under ``evaluate``); segmentation (9.01-s windows, 1-s hop, shorter clips tiled), the
non-personalised model and its polynomial mapping are the package's own. The package refuses
samples outside [-1, 1], so a signal is clipped there first, as a 16-bit file would hold it.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from seofp_lab.errors import SeofpError

FS = 16000
NAMES = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
_KEYS = {"dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_ovrl": "ovrl_mos"}
INSTALL_HINT = "pip install 'seofp-lab[dnsmos]' (speechmos, onnxruntime, librosa)"


class DnsmosUnavailable(SeofpError):
    """speechmos, onnxruntime or librosa is not installed."""


def _threads() -> int:
    """OMP_NUM_THREADS when set (evaluate's workers set 1), else 0: onnxruntime's default."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


@cache
def _scorer(threads: int):  # noqa: ANN202 - a speechmos DNSMOS
    try:
        import onnxruntime as ort  # noqa: PLC0415
        from speechmos import dnsmos  # noqa: PLC0415 - imports librosa
    except ImportError as exc:
        raise DnsmosUnavailable(f"Expected the DNSMOS packages ({INSTALL_HINT}) but got: "
                                f"{exc}") from None
    models = Path(dnsmos.__file__).parent / "dnsmos_models"
    paths = [models / "sig_bak_ovr.onnx", models / "model_v8.onnx"]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DnsmosUnavailable(f"Expected the DNSMOS models inside the speechmos package but "
                                f"got none at {missing}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1

    class _Dnsmos(dnsmos.DNSMOS):
        def __init__(self) -> None:  # the package's, with session options and CPU only
            self.primary_model_path = str(paths[0])
            cpu = ["CPUExecutionProvider"]
            self.onnx_sess = ort.InferenceSession(str(paths[0]), opts, providers=cpu)
            self.p808_onnx_sess = ort.InferenceSession(str(paths[1]), opts, providers=cpu)

    return _Dnsmos()


def check_available() -> None:
    """Raises DnsmosUnavailable, naming what to install, before any work is done."""
    _scorer(_threads())


def dnsmos(signal: np.ndarray, fs: int = FS) -> dict[str, float]:
    """``{"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}`` of a 16 kHz mono signal (1..5 MOS)."""
    if fs != FS:
        raise ValueError(f"Expected a {FS} Hz signal for DNSMOS but got {fs} Hz")
    x = np.asarray(signal, np.float32)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"Expected a finite, non-empty 1-D signal but got shape {x.shape}")
    out = _scorer(_threads())(np.clip(x, -1.0, 1.0), FS, False)  # False: not personalised
    return {name: float(out[key]) for name, key in _KEYS.items()}


def provenance() -> str:
    """Package, versions and mode, for the ``seofp.metric.dnsmos_*`` tags."""
    try:
        versions = f"speechmos {metadata.version('speechmos')}, onnxruntime " \
                   f"{metadata.version('onnxruntime')} CPU"
    except metadata.PackageNotFoundError:
        return f"speechmos (not installed: {INSTALL_HINT})"
    return (f"{versions}, DNSMOS P.835 sig_bak_ovr.onnx (not personalised), 9.01-s windows "
            f"at a 1-s hop (shorter clips tiled), samples clipped to [-1, 1]")
