"""Objective speech-quality metrics on 16 kHz mono float arrays (no torch here: worker processes).

PESQ comes from the ``pesq`` package (ITU-T P.862 / P.862.2), STOI and ESTOI from ``pystoi``,
SI-SDR is computed here (Le Roux et al. 2019, zero-mean, scale-invariant), CSIG/CBAK/COVL in
:mod:`seofp_lab.evaluate.composite` and DNSMOS P.835 through ``speechmos``
(:mod:`seofp_lab.evaluate.dnsmos`, no reference used). docs/metrics.md lists ranges and costs.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import numpy as np

from seofp_lab.evaluate import composite as _composite
from seofp_lab.evaluate import dnsmos as _dnsmos

FS = 16000


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB of zero-mean signals (docs/method.md#si-sdr), in float64.

    The one definition: evaluation, the listening stimuli's side data and (in torch, for training)
    :func:`seofp_lab.train.module.si_sdr_torch` compute the same number.

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
COMPOSITE = ("csig", "cbak", "covl")  # one computation gives all three
DNSMOS = _dnsmos.NAMES  # one computation gives all three; the estimate alone
METRICS = (*METRIC_FUNCTIONS, *COMPOSITE, *DNSMOS)


def _group(name: str, reference: np.ndarray, estimate: np.ndarray,
           known: dict[str, float]) -> dict[str, float]:
    if name in COMPOSITE:
        pesq = known.get("pesq_wb")  # reused when already scored
        return _composite.composite(reference, estimate, FS,
                                    pesq if pesq is not None and np.isfinite(pesq) else None)
    return _dnsmos.dnsmos(estimate, FS)


def check_metrics(names: list[str]) -> None:
    """Refuse unknown metric names, and DNSMOS without its packages, before any work is done.

    Raises:
        SeofpError: naming the allowed metrics, or what to install for DNSMOS.
    """
    from seofp_lab.errors import SeofpError  # noqa: PLC0415

    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise SeofpError(f"Expected metric names from {', '.join(METRICS)} but got "
                         f"{', '.join(names) or 'none'}")
    if any(n in DNSMOS for n in names):
        _dnsmos.check_available()


def score(reference: np.ndarray, estimate: np.ndarray, names: list[str]) -> dict[str, float]:
    """All requested metrics of one pair; a metric that fails gives NaN plus ``<name>_error``.

    The composites and the DNSMOS scores are computed once per group, whichever of the three
    are asked for; DNSMOS rates ``estimate`` alone."""
    if reference.shape != estimate.shape:
        raise ValueError(f"Expected equal lengths but got {reference.shape} and {estimate.shape}")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"Expected metric names from {list(METRICS)} but got {unknown}")
    out: dict[str, float] = {}
    groups: dict[tuple[str, ...], dict[str, float] | Exception] = {}
    # PESQ-wb first, so that the composites can reuse it
    for name in sorted(names, key=lambda n: n != "pesq_wb"):
        try:
            if name in METRIC_FUNCTIONS:
                out[name] = METRIC_FUNCTIONS[name](reference, estimate)
                continue
            key = COMPOSITE if name in COMPOSITE else DNSMOS
            if key not in groups:
                try:
                    groups[key] = _group(name, reference, estimate, out)
                except Exception as exc:  # noqa: BLE001 - reported per metric below
                    groups[key] = exc
            got = groups[key]
            if isinstance(got, Exception):
                raise got
            out[name] = got[name]
        except _dnsmos.DnsmosUnavailable:
            raise  # a missing package is a setup error, not a bad utterance
        except Exception as exc:  # e.g. PESQ "no utterance detected": kept visible, not dropped
            out[name] = float("nan")
            out[f"{name}_error"] = str(exc)[:200]
    return {**{n: out[n] for n in names}, **{k: v for k, v in out.items() if k not in names}}


def _version(package: str) -> str:
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package} (not installed)"


def provenance(names: list[str] | None = None) -> dict[str, str]:
    """``{metric: "package version, mode"}``: what made each metric (the ``seofp.metric.<name>``
    run tags).

    >>> provenance(["stoi"])["stoi"].startswith("pystoi ")
    True
    """
    pesq, pystoi, own = _version("pesq"), _version("pystoi"), _version("seofp-lab")
    comp = (f"{own} numpy composite (Hu & Loizou 2008 regressions, clipped to 1..5; LLR order 16, "
            f"WSS 25 bands, segSNR [-10, 35] dB; 30-ms Hann frames, 7.5-ms hop) on {pesq} "
            "P.862.2 wide-band MOS-LQO")
    table = {
        "pesq_wb": f"{pesq}, ITU-T P.862.2 wide-band MOS-LQO, 16 kHz",
        "pesq_nb": f"{pesq}, ITU-T P.862 narrow-band with P.862.1 MOS-LQO mapping, 16 kHz input",
        "stoi": f"{pystoi}, STOI extended=False (resampled to 10 kHz inside)",
        "estoi": f"{pystoi}, ESTOI extended=True (resampled to 10 kHz inside)",
        "si_sdr": f"{own} numpy, zero-mean scale-invariant SDR (Le Roux et al. 2019), dB",
        **dict.fromkeys(COMPOSITE, comp),
        **dict.fromkeys(DNSMOS, _dnsmos.provenance()),
    }
    for name in ("csig", "cbak", "covl"):
        table[name] = f"{name.upper()}: {table[name]}"
    for name in DNSMOS:
        table[name] = f"{name.split('_')[1].upper()}: {table[name]}"
    return {n: table[n] for n in (names or list(METRICS))}
