"""Writes composite_reference.json: LLR, WSS and segSNR of fixed pairs from an independent
implementation (pysepm-evo 0.1.1, a Python port of Loizou's composite.m measures).

pysepm-evo is not a dependency (its ``composite`` names undefined variables and it imports
``scipy.signal.kaiser``, gone since SciPy 1.13); to regenerate, in a scratch folder:

    pip download --no-deps pysepm-evo==0.1.1 && pip install --no-deps --target ./oracle *.whl
    PYTHONPATH=./oracle:. python tests/data/make_composite_reference.py

It needs numba; SRMRpy, which its package imports for a measure not used here, is stubbed.
The pairs come from ``pairs()`` below, which the test imports too.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
EMBEDDED = HERE.parent.parent / "seofp_lab" / "data" / "embedded"
OUT = HERE / "composite_reference.json"


def _mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = noise[: clean.size]
    gain = np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return clean + gain * noise


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(clean, processed) float64 pairs at 16 kHz: a real clip with real and white noise, and a
    band-limited, attenuated copy (spectral distortion without noise)."""
    clean, _ = sf.read(EMBEDDED / "speech" / "ast_en_f" / "ast_en_f_001.flac", dtype="float64")
    clean = clean[:32000]
    machine, _ = sf.read(EMBEDDED / "noise" / "machine" / "machine_00.flac", dtype="float64")
    white = np.random.default_rng(7).standard_normal(clean.size)
    smooth = np.convolve(clean, np.ones(5) / 5, mode="same") * 0.5
    return {
        "machine_5db": (clean, _mix(clean, machine, 5.0)),
        "white_10db": (clean, _mix(clean, white, 10.0)),
        "lowpass_half": (clean, smooth),
    }


def main() -> None:
    import scipy.signal  # noqa: PLC0415
    import scipy.signal.windows  # noqa: PLC0415

    scipy.signal.kaiser = scipy.signal.windows.kaiser  # what pysepm-evo imports
    sys.modules["srmrpy"] = types.ModuleType("srmrpy")  # only its SRMR measure (unused) needs it
    import pysepm_evo  # noqa: PLC0415

    out = {}
    for name, (c, p) in pairs().items():
        out[name] = {
            "llr": float(pysepm_evo.llr(c, p, 16000, used_for_composite=True)),
            "wss": float(pysepm_evo.wss(c, p, 16000)),
            "segsnr": float(pysepm_evo.SNRseg(c, p, 16000)),
        }
    OUT.write_text(json.dumps({"source": "pysepm-evo 0.1.1", "fs": 16000, "pairs": out},
                              indent=1) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
