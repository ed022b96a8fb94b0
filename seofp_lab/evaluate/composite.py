"""CSIG, CBAK, COVL: Hu & Loizou's composite measures (IEEE TASLP 16(1), 2008), in numpy.

Each composite is a linear regression on four objective measures of a (clean, processed) pair,
clipped to the 1..5 rating scale. LLR, WSS and segSNR follow Loizou's ``composite.m`` (Pellom and
Hansen's measures): 30-ms frames of the window ``0.5 * (1 - cos(2 pi n / (N + 1)))``, n = 1..N,
advanced by a quarter frame (75 % overlap), ``floor((len - N) / hop)`` frames, both signals plus
float64 eps; LLR and WSS average the best 95 % of frames, segSNR every frame clamped to
[-10, 35] dB. The PESQ term is the ``pesq`` package's P.862.2 wide-band MOS-LQO at 16 kHz, as the
MATLAB toolbox and the usual Python ports feed it for 16-kHz audio (docs/metrics.md). The WSS
filter bank is the reference's 25 critical bands below 4 kHz, at every sampling rate.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.030
TRIM = 0.95  # LLR and WSS: mean of the smallest 95 % of the frame distances
SEGSNR_RANGE = (-10.0, 35.0)  # dB
_EPS = np.finfo(np.float64).eps  # MATLAB's eps
# critical bands (Hz) of the reference's WSS: centres and bandwidths
_CENTRES = np.array([50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378,
                     798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16,
                     1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63])
_BANDWIDTHS = np.array([70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398,
                        105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776,
                        217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136])
_K_MAX, _K_LOCMAX = 20.0, 1.0  # Klatt's weighting constants


def regression(pesq: float, llr: float, wss: float, segsnr: float) -> dict[str, float]:
    """The published regressions, clipped to [1, 5].

    Loizou's worked example (his toolbox's readme) gives CSIG 3.3050, CBAK 2.6160, COVL 2.7133:

    >>> r = regression(pesq=2.255732, llr=0.681368, wss=49.671978, segsnr=3.991727)
    >>> [round(r[k], 4) for k in ("csig", "cbak", "covl")]
    [3.305, 2.616, 2.7133]
    """
    raw = {
        "csig": 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss,
        "cbak": 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * segsnr,
        "covl": 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss,
    }
    return {k: float(np.clip(v, 1.0, 5.0)) for k, v in raw.items()}


def _frames(x: np.ndarray, fs: int) -> np.ndarray:
    """(frames, N) Hann-windowed frames, the reference's count and layout."""
    n = round(FRAME_S * fs)
    hop = n // 4
    count = (x.size - n) // hop
    if count < 1:
        raise ValueError(f"Expected at least {n + hop} samples ({FRAME_S * 1e3:.0f}-ms frames) "
                         f"but got {x.size}")
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, n + 1) / (n + 1)))
    return np.lib.stride_tricks.sliding_window_view(x, n)[::hop][:count] * window


def _trimmed_mean(d: np.ndarray) -> float:
    """Mean of the smallest ``round(0.95 * len)`` values (MATLAB's round: halves go up)."""
    keep = int(np.floor(TRIM * d.size + 0.5))
    return float(np.mean(np.sort(d)[:keep]))


def segsnr_frames(clean: np.ndarray, processed: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame SNR in dB, clamped to [-10, 35]."""
    c, p = _frames(clean, fs), _frames(processed, fs)
    snr = 10 * np.log10(np.sum(c**2, 1) / (np.sum((c - p) ** 2, 1) + _EPS) + _EPS)
    return np.clip(snr, *SEGSNR_RANGE)


def _lpc(frames: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation lags (frames, order+1) and LPC polynomials [1, -a] by Levinson-Durbin."""
    n = frames.shape[1]
    r = np.stack([np.sum(frames[:, : n - k] * frames[:, k:], 1) for k in range(order + 1)], 1)
    a = np.zeros((frames.shape[0], order))
    err = r[:, 0].copy()
    for i in range(order):
        k = (r[:, i + 1] - np.sum(a[:, :i] * r[:, i:0:-1], 1)) / err
        if i:
            a[:, :i] = a[:, :i] - k[:, None] * a[:, i - 1 :: -1]
        a[:, i] = k
        err = (1 - k * k) * err
    return r, np.concatenate([np.ones((a.shape[0], 1)), -a], 1)


def llr_frames(clean: np.ndarray, processed: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame log-likelihood ratio of the processed LPC model under the clean autocorrelation
    (order 10 below 10 kHz, else 16); no upper clamp, as in the composite."""
    order = 10 if fs < 10000 else 16
    r_clean, a_clean = _lpc(_frames(clean, fs), order)
    _, a_proc = _lpc(_frames(processed, fs), order)
    lags = np.abs(np.subtract.outer(np.arange(order + 1), np.arange(order + 1)))
    toeplitz = r_clean[:, lags]  # (frames, order+1, order+1)
    num = np.einsum("fi,fij,fj->f", a_proc, toeplitz, a_proc)
    den = np.einsum("fi,fij,fj->f", a_clean, toeplitz, a_clean)
    return np.log(num / den)


def _critical_filters(fs: int, half: int) -> np.ndarray:
    """(25, half) Gaussian critical-band weights on FFT bins, zero below -30 dB."""
    f0 = np.floor(_CENTRES / (fs / 2) * half)
    bw = _BANDWIDTHS / (fs / 2) * half
    norm = np.log(_BANDWIDTHS[0]) - np.log(_BANDWIDTHS)
    bins = np.arange(half)
    w = np.exp(-11 * ((bins - f0[:, None]) / bw[:, None]) ** 2 + norm[:, None])
    return w * (w > np.exp(-30.0 / (2.0 * 2.303)))


def _nearest_peaks(energy: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Per band, the level of the nearest peak: searched rightwards on a rising slope, leftwards
    otherwise, with the reference's indexing. energy (frames, 25), slope (frames, 24)."""
    nb = slope.shape[1]
    pos = np.arange(nb)
    right = np.minimum.accumulate(np.where(slope <= 0, pos, nb)[:, ::-1], 1)[:, ::-1]
    left = np.maximum.accumulate(np.where(slope > 0, pos, -1), 1)
    idx = np.where(slope > 0, right - 1, left + 1)
    return np.take_along_axis(energy, idx, 1)


def wss_frames(clean: np.ndarray, processed: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame weighted spectral slope distance (Klatt 1982, 25 bands)."""
    n = round(FRAME_S * fs)
    n_fft = 1 << int(np.ceil(np.log2(2 * n)))
    filt = _critical_filters(fs, n_fft // 2)
    levels, slopes, weights = [], [], []
    for x in (clean, processed):
        spec = np.abs(np.fft.rfft(_frames(x, fs), n_fft)[:, : n_fft // 2]) ** 2
        e = 10 * np.log10(np.maximum(spec @ filt.T, 1e-10))
        s = np.diff(e, axis=1)
        w_max = _K_MAX / (_K_MAX + e.max(1, keepdims=True) - e[:, :-1])
        w_loc = _K_LOCMAX / (_K_LOCMAX + _nearest_peaks(e, s) - e[:, :-1])
        levels.append(e)
        slopes.append(s)
        weights.append(w_max * w_loc)
    w = (weights[0] + weights[1]) / 2
    return np.sum(w * (slopes[0] - slopes[1]) ** 2, 1) / np.sum(w, 1)


def measures(clean: np.ndarray, processed: np.ndarray, fs: int) -> dict[str, float]:
    """LLR and WSS (95 % trimmed means) and segSNR (mean) of one pair, as the composite uses them.

    Raises:
        ValueError: unequal lengths, shorter than one frame and a hop, or a non-finite result.
    """
    if clean.shape != processed.shape or clean.ndim != 1:
        raise ValueError(f"Expected two 1-D signals of one length but got {clean.shape} and "
                         f"{processed.shape}")
    c = np.asarray(clean, np.float64) + _EPS
    p = np.asarray(processed, np.float64) + _EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "llr": _trimmed_mean(llr_frames(c, p, fs)),
            "wss": _trimmed_mean(wss_frames(c, p, fs)),
            "segsnr": float(np.mean(segsnr_frames(c, p, fs))),
        }
    bad = [k for k, v in out.items() if not np.isfinite(v)]
    if bad:
        raise ValueError(f"Expected finite {', '.join(bad)} but got {out}")
    return out


def composite(clean: np.ndarray, processed: np.ndarray, fs: int,
              pesq: float | None = None) -> dict[str, float]:
    """``{"csig", "cbak", "covl"}`` of one pair; ``pesq`` is wide-band PESQ if already known."""
    m = measures(clean, processed, fs)
    if pesq is None:
        from pesq import pesq as _pesq  # noqa: PLC0415

        pesq = float(_pesq(fs, clean, processed, "wb"))
    return regression(pesq, m["llr"], m["wss"], m["segsnr"])
