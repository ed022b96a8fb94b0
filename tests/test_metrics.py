"""Metrics against known values, and the evaluation aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.evaluate.metrics import estoi, pesq_nb, pesq_wb, score, si_sdr, stoi
from seofp_lab.evaluate.run import aggregate
from seofp_lab.tracking import metric_key


def _speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    voiced = sum(np.sin(2 * np.pi * h * np.cumsum(f0) / 16000) / h for h in range(1, 20))
    envelope = 0.5 * (1 + np.sign(np.sin(2 * np.pi * 2.5 * t)))  # syllable-like on/off
    return (0.1 * voiced * envelope + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


def test_identical_signals_score_at_the_top() -> None:
    x = _speechlike()
    assert pesq_wb(x, x) == pytest.approx(4.644, abs=1e-3)
    assert pesq_nb(x, x) == pytest.approx(4.549, abs=1e-2)
    assert stoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert estoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert si_sdr(x, x) > 100


def test_noise_lowers_every_metric() -> None:
    x = _speechlike()
    noisy = x + 0.05 * np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    clean_scores = score(x, x, ["pesq_wb", "stoi", "si_sdr"])
    noisy_scores = score(x, noisy, ["pesq_wb", "stoi", "si_sdr"])
    assert all(noisy_scores[k] < clean_scores[k] for k in clean_scores)


def test_si_sdr_known_value() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    s -= s.mean()
    n = rng.standard_normal(16000)
    n -= n.mean()
    n -= n @ s / (s @ s) * s  # orthogonal noise at exactly -6.02 dB relative power
    est = s + 0.5 * n / np.linalg.norm(n) * np.linalg.norm(s)
    assert si_sdr(s, est) == pytest.approx(20 * np.log10(2.0), abs=1e-6)


def test_si_sdr_is_zero_mean_and_training_computes_the_same_number() -> None:
    """One definition (docs/method.md#si-sdr): offsets do not count, numpy and torch agree."""
    import torch  # noqa: PLC0415

    from seofp_lab.train.module import si_sdr_torch  # noqa: PLC0415

    rng = np.random.default_rng(1)
    ref = rng.standard_normal((4, 8000))
    est = ref + rng.standard_normal((4, 8000)) * np.array([[0.1], [0.5], [1.0], [3.0]])
    expected = [si_sdr(r, e) for r, e in zip(ref, est, strict=True)]
    # a DC offset on either signal changes nothing: both signals are made zero-mean first
    shifted = [si_sdr(r + 0.7, e - 0.3) for r, e in zip(ref, est, strict=True)]
    assert shifted == pytest.approx(expected, abs=1e-9)
    got = si_sdr_torch(torch.from_numpy(est + 0.2).float(), torch.from_numpy(ref - 0.4).float())
    assert got.tolist() == pytest.approx(expected, abs=1e-3)
    # without the mean removal the offsets would change the number: the checks above can fail
    r, e = ref + 0.7, est - 0.3
    target = ((e * r).sum(-1) / (r * r).sum(-1))[:, None] * r
    raw = 10 * np.log10((target**2).sum(-1) / ((e - target) ** 2).sum(-1))
    assert np.abs(raw - expected).max() > 0.5


# pesq divides by the peak of an all-zero signal before it reports the failure
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_failed_metric_is_kept_visible() -> None:
    silent = np.zeros(16000, np.float32)
    out = score(silent, silent, ["pesq_wb"])
    assert np.isnan(out["pesq_wb"]) and "pesq_wb_error" in out


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        score(np.zeros(10), np.zeros(11), ["si_sdr"])


def test_aggregate_means_and_per_snr() -> None:
    rows = [{"snr": 2.5, "enhanced_stoi": 0.8, "noisy_stoi": 0.7},
            {"snr": 2.5, "enhanced_stoi": 0.6, "noisy_stoi": 0.5},
            {"snr": 7.5, "enhanced_stoi": 0.9, "noisy_stoi": float("nan")}]
    out = aggregate(rows, ["stoi"])
    assert out["stoi"] == pytest.approx(0.7667, abs=1e-4)
    assert out["stoi_snr2.5"] == pytest.approx(0.7)
    assert out["noisy_stoi"] == pytest.approx(0.6)
    assert "noisy_stoi_snr7.5" not in out


def test_metric_key_names() -> None:
    assert metric_key("stoi", snr=7.5, noisy=True) == "noisy_stoi_snr7.5"
    assert metric_key("pesq_wb", snr=-5) == "pesq_wb_snr-5"
    with pytest.raises(ValueError):
        metric_key("pesq")
