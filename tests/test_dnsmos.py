"""DNSMOS P.835 through speechmos's shipped models, and what each metric records about itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import soundfile as sf

from seofp_lab import tracking
from seofp_lab.config import EvaluationConfig, MetricName
from seofp_lab.evaluate import dnsmos as D
from seofp_lab.evaluate.metrics import METRICS, provenance, score

EMBEDDED = Path(D.__file__).resolve().parent.parent / "data" / "embedded"
# 2.35 s: tiled once to 9.4 s, so one 9.01-s DNSMOS window (the cheapest real clip)
CLIP = EMBEDDED / "speech" / "ast_en_f" / "ast_en_f_002.flac"


@pytest.fixture(scope="module")
def clean_and_noisy() -> tuple[np.ndarray, np.ndarray]:
    clean, fs = sf.read(CLIP, dtype="float32")
    assert fs == 16000
    noise, _ = sf.read(EMBEDDED / "noise" / "market" / "market_00.flac", dtype="float32")
    noise = noise[: clean.size]
    gain = np.sqrt(np.sum(clean**2) / np.sum(noise**2))  # 0 dB
    return clean, (clean + gain * noise).astype(np.float32)


@pytest.mark.slow  # the first call opens the ONNX sessions and warms librosa up
def test_dnsmos_rates_real_speech_in_range_and_noise_lowers_bak(
    clean_and_noisy: tuple[np.ndarray, np.ndarray],
) -> None:
    clean, noisy = clean_and_noisy
    a, b = D.dnsmos(clean), D.dnsmos(noisy)
    for scores in (a, b):
        assert set(scores) == set(D.NAMES)
        assert all(np.isfinite(v) and 1.0 <= v <= 5.0 for v in scores.values()), scores
    assert a["dnsmos_bak"] > b["dnsmos_bak"] + 0.5  # ~3.5 against ~1.6 here
    assert a["dnsmos_ovrl"] > b["dnsmos_ovrl"]


def test_score_rates_the_estimate_alone(clean_and_noisy: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = clean_and_noisy
    other_reference = np.zeros_like(clean)
    assert score(other_reference, noisy, list(D.NAMES)) == D.dnsmos(noisy)


def test_bad_signals_are_refused() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        D.dnsmos(np.zeros(8000, np.float32), fs=8000)
    with pytest.raises(ValueError, match="finite"):
        D.dnsmos(np.full(16000, np.nan, np.float32))


@pytest.fixture
def without_speechmos(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    D._scorer.cache_clear()
    monkeypatch.setitem(sys.modules, "speechmos", None)  # import fails as if not installed
    yield
    D._scorer.cache_clear()


def test_missing_package_is_a_clear_error(without_speechmos: None) -> None:
    with pytest.raises(D.DnsmosUnavailable, match=r"pip install 'seofp-lab\[dnsmos\]'"):
        D.check_available()
    with pytest.raises(D.DnsmosUnavailable):  # not a per-utterance NaN: every one would fail
        score(np.ones(16000), np.ones(16000), ["dnsmos_ovrl"])


def test_provenance_names_package_version_and_mode() -> None:
    p = provenance()
    assert set(p) == set(METRICS)
    assert f"pesq {metadata.version('pesq')}" in p["pesq_wb"] and "P.862.2" in p["pesq_wb"]
    assert "P.862.1" in p["pesq_nb"]
    assert f"pystoi {metadata.version('pystoi')}" in p["stoi"] and "extended=False" in p["stoi"]
    assert "extended=True" in p["estoi"]
    assert p["csig"].startswith("CSIG:") and "pesq " in p["csig"] and "wide-band" in p["csig"]
    for name in D.NAMES:
        assert f"speechmos {metadata.version('speechmos')}" in p[name]
        assert f"onnxruntime {metadata.version('onnxruntime')}" in p[name]
    assert provenance(["stoi"]) == {"stoi": p["stoi"]}


def test_metric_names_agree_across_config_scoring_and_tracking() -> None:
    assert set(get_args(MetricName)) == set(METRICS)
    assert set(METRICS) <= set(tracking.METRICS)  # metric_key accepts every one
    assert set(EvaluationConfig().metrics) == set(METRICS) - set(D.NAMES)  # DNSMOS is opt-in


def test_models_ship_inside_the_package() -> None:
    files = [str(f) for f in metadata.files("speechmos") or []]
    assert any(f.endswith("dnsmos_models/sig_bak_ovr.onnx") for f in files)


def test_evaluate_checks_metric_names_and_packages_before_any_work(
    without_speechmos: None, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from seofp_lab import cli

    assert cli.main(["evaluate", "no-such-run", "--metrics", "pesq_wb,pesq"]) == 2
    assert "Expected metric names from pesq_wb" in capsys.readouterr().err
    assert cli.main(["evaluate", "no-such-run", "--metrics", "stoi,dnsmos_bak"]) == 2
    assert "pip install 'seofp-lab[dnsmos]'" in capsys.readouterr().err  # not "no such run"
