"""Active speech level after ITU-T P.56 method B, and normalisation to a target level
(docs/data.md#mixing).

**Convention.** Levels are in dBov as in ITU-T G.100.1 and the ITU's own ``sv56demo``: 0 dBov is
the power of a full-scale *square* wave, i.e. an RMS of 1.0 on float samples in [-1, 1]. A
full-scale sine therefore measures -3.01 dBov, and -26 dBov is an active RMS of 0.0501 (1643 in
16-bit units), the same -26 dBov that P.862 and VoiceBank-DEMAND use.

**Method** (P.56 §B, vectorised). The rectified signal is smoothed twice by a one-pole filter with
a 30 ms time constant, giving the envelope ``q``. A sample is *active* for threshold ``c`` if ``q``
reached ``c`` within the last 200 ms (the hangover). For a grid of thresholds, the level while
active, ``A(c) = 10 log10(sum x^2 / n_active(c))``, is compared with ``C = 20 log10 c``; the active
level is ``A`` where ``A - C`` falls to the 15.9 dB margin, interpolated linearly between grid
points. Departures from the recommendation:

- the threshold grid is relative to the envelope's maximum (0.25 dB steps over 140 dB) instead of
  fixed powers of two in 16-bit units, so ``active_level_db(g * x) == active_level_db(x) +
  20 log10 g`` up to rounding, and normalising needs no iteration;
- samples are floats, so there is no quantisation floor.

Gated or digital silence (G.722's -80 to -100 dB gaps) stays below the crossing threshold, which
sits about 16 dB under the active level. P.56 would still count the envelope's decay and the 200 ms
hangover that run into such a gap; here a sample whose 5 ms RMS lies 65 dB below the peak sample
is never active, so inserting digital silence leaves the level unchanged (third departure;
it is also relative, so scaling stays exact). Quiet pauses with room noise keep P.56's behaviour.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.signal import lfilter

from seofp_lab.errors import AudioError

TIME_CONSTANT_S = 0.03  # envelope smoothing, P.56 §B.2
HANGOVER_S = 0.2  # activity persists this long after the envelope drops, P.56 §B.2
MARGIN_DB = 15.9  # A - C at the operating threshold, P.56 §B.2
GRID_STEP_DB = 0.25
GRID_SPAN_DB = 140.0
GATE_DB = -65.0  # a 5 ms RMS this far below the peak sample is gated silence (speech: > -55)
GATE_S = 0.005


def _checked(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.number):
        raise AudioError(f"Expected a non-empty 1-D real signal but got shape {x.shape} {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise AudioError("Expected finite samples but got NaN or inf")
    return x


def active_level_db(x: np.ndarray, fs: int = 16000) -> float:
    """Active speech level of ``x`` in dBov (0 dBov = RMS 1.0, see the module docstring).

    Args:
        x: (time,) samples, float in [-1, 1] (any real dtype is converted to float64).
        fs: sample rate in Hz; it sets the envelope time constant and the hangover.

    Returns:
        The active level in dBov, or ``-inf`` for an all-zero signal.

    >>> t = np.arange(32000) / 16000
    >>> round(active_level_db(np.sin(2 * np.pi * 440 * t)), 1)  # a full-scale sine
    -3.0
    """
    x = _checked(x)
    energy = float(np.dot(x, x))
    if energy == 0.0:
        return float("-inf")
    g = np.exp(-1.0 / (fs * TIME_CONSTANT_S))
    p = lfilter([1.0 - g], [1.0, -g], np.abs(x))
    q = lfilter([1.0 - g], [1.0, -g], p)
    hang = max(1, int(round(HANGOVER_S * fs)))
    # q reached c somewhere in the last `hang` samples <=> the running max over them reaches c
    recent = maximum_filter1d(q, size=hang, origin=(hang - 1) // 2, mode="constant", cval=0.0)
    # gated or digital silence never counts, not even in the hangover: inserting it leaves the level
    gate = max(1, int(round(GATE_S * fs)))
    local_power = uniform_filter1d(x * x, size=gate)
    loud = local_power > (np.abs(x).max() * 10 ** (GATE_DB / 20)) ** 2
    recent_sorted = np.sort(recent[loud])
    peak = float(recent_sorted[-1])
    c_db = 20 * np.log10(peak) - np.arange(GRID_SPAN_DB, -GRID_STEP_DB / 2, -GRID_STEP_DB)
    c = 10 ** (c_db / 20)  # ascending thresholds; the last one is the peak itself
    c[-1] = peak  # exactly, so at least one sample is active
    n_active = recent_sorted.size - np.searchsorted(recent_sorted, c, side="left")
    keep = n_active > 0
    a_db = 10 * np.log10(energy / n_active[keep])
    diff = a_db - c_db[keep]  # falls as the threshold rises
    below = np.flatnonzero(diff <= MARGIN_DB)
    if below.size == 0:  # even the peak threshold leaves A - C above the margin: a lone click
        return float(a_db[-1])
    j = int(below[0])
    if j == 0:  # active everywhere on the grid: a stationary signal such as a tone
        return float(a_db[0])
    # linear interpolation of A at the crossing of (A - C) with the margin
    w = (diff[j - 1] - MARGIN_DB) / (diff[j - 1] - diff[j])
    return float(a_db[j - 1] + w * (a_db[j] - a_db[j - 1]))


def normalize_active_level(x: np.ndarray, target_db: float = -26.0, fs: int = 16000) -> np.ndarray:
    """Scale ``x`` so that its active level is ``target_db`` dBov.

    Args:
        x: (time,) samples.
        target_db: wanted active level in dBov.
        fs: sample rate in Hz.

    Returns:
        (time,) scaled copy; float32 input stays float32, anything else becomes float64. The caller
        checks the peak: at -26 dBov speech peaks stay far below full scale.

    Raises:
        AudioError: if ``x`` is all zeros (there is no level to scale).
    """
    level = active_level_db(x, fs)
    if not np.isfinite(level):
        raise AudioError("Expected a signal with active speech but got digital silence")
    gain = 10 ** ((target_db - level) / 20)
    out_dtype = np.float32 if np.asarray(x).dtype == np.float32 else np.float64
    return (np.asarray(x, dtype=np.float64) * gain).astype(out_dtype)
