"""Objective speech-quality metrics on 16 kHz mono float arrays (no torch here: worker processes).

PESQ comes from the ``pesq`` package (ITU-T P.862 / P.862.2), STOI and ESTOI from ``pystoi``,
SI-SDR is computed here (Le Roux et al. 2019, zero-mean, scale-invariant).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FS = 16000


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB.

    >>> x = np.sin(np.arange(1600) / 7.0); round(si_sdr(x, 0.5 * x), 1) > 100
    True
    """
    ref = np.asarray(reference, np.float64) - np.mean(reference)
    est = np.asarray(estimate, np.float64) - np.mean(estimate)
    alpha = np.dot(est, ref) / max(np.dot(ref, ref), 1e-20)
    target = alpha * ref
    noise = est - target
    return float(
        10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(noise, noise), 1e-20))
    )


def pesq_wb(reference: np.ndarray, estimate: np.ndarray) -> float:
    from pesq import pesq  # noqa: PLC0415

    return float(pesq(FS, reference, estimate, "wb"))


def pesq_nb(reference: np.ndarray, estimate: np.ndarray) -> float:
    from pesq import pesq  # noqa: PLC0415

    return float(pesq(FS, reference, estimate, "nb"))


def stoi(reference: np.ndarray, estimate: np.ndarray) -> float:
    from pystoi import stoi as _stoi  # noqa: PLC0415

    return float(_stoi(reference, estimate, FS, extended=False))


def estoi(reference: np.ndarray, estimate: np.ndarray) -> float:
    from pystoi import stoi as _stoi  # noqa: PLC0415

    return float(_stoi(reference, estimate, FS, extended=True))


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pesq_wb": pesq_wb,
    "pesq_nb": pesq_nb,
    "stoi": stoi,
    "estoi": estoi,
    "si_sdr": si_sdr,
}


def score(reference: np.ndarray, estimate: np.ndarray, names: list[str]) -> dict[str, float]:
    """All requested metrics of one pair; a metric that fails gives NaN plus ``<name>_error``."""
    if reference.shape != estimate.shape:
        raise ValueError(f"Expected equal lengths but got {reference.shape} and {estimate.shape}")
    out: dict[str, float] = {}
    for name in names:
        try:
            out[name] = METRIC_FUNCTIONS[name](reference, estimate)
        except Exception as exc:  # e.g. PESQ "no utterance detected": kept visible, not dropped
            out[name] = float("nan")
            out[f"{name}_error"] = str(exc)[:200]
    return out
