"""Per-serve transforms, tickets and the server's playback gate (docs/listening_blinding.md).

The attacks are the ones a devtools user runs on captured audio: subtract X from A and from B
(or correlate at zero lag) and pick the closer; compare A with B to spot null trials. With plain
dithered copies they win every trial (checked, so the test can fail); with the per-serve
transforms they are at chance. Seeds are fixed, so the outcome is reproducible.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from synthetic_study import make_study

from seofp_lab.listening import blinding
from seofp_lab.listening.blinding import VAULT, perturb, served_wav, wav_pcm
from seofp_lab.listening.stimuli import render_wav

RATE = 48000


def _speechy(rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 16))
    x = x * np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.7
    return 0.1 * x / np.sqrt(np.mean(x**2))  # about -20 dBFS RMS


def _trial(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(A, B, x_is): main trials differ by noise 30 dB down (a SEOFP-like difference)."""
    base = _speechy(rng)
    other = base if kind == "null" else base + rng.standard_normal(len(base)) * 0.1 * 10 ** (
        -30 / 20)
    return (base, other, "A") if rng.random() < 0.5 else (other, base, "B")


def _attack(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[str, str, float]:
    """Subtraction and zero-lag correlation, no alignment; plus the A-B residual (null spotter)."""
    n = min(len(a), len(b), len(x))
    a, b, x = a[:n], b[:n], x[:n]
    by_sub = "A" if np.sqrt(np.mean((x - a) ** 2)) < np.sqrt(np.mean((x - b) ** 2)) else "B"
    by_corr = "A" if np.corrcoef(x, a)[0, 1] > np.corrcoef(x, b)[0, 1] else "B"
    return by_sub, by_corr, float(np.sqrt(np.mean((a - b) ** 2)))


def _run(serve, n: int = 80, seed: int = 0) -> tuple[int, int, float]:
    rng = np.random.default_rng(seed)
    sub = corr = 0
    ab = {"main": [], "null": []}
    for i in range(n):
        kind = "null" if i % 4 == 0 else "main"
        a, b, x_is = _trial(rng, kind)
        x = a if x_is == "A" else b
        got = [wav_pcm(serve(c, rng))[0] for c in (a, b, x)]
        s, c, r = _attack(*got)
        ab[kind].append(r)
        if kind == "main":
            sub += s == x_is
            corr += c == x_is
    null_p = stats.mannwhitneyu(ab["null"], ab["main"]).pvalue
    return sub, corr, float(null_p)


def test_plain_dithered_copies_give_x_away() -> None:
    """The control: what the app served before (dither only) loses every trial to the attack."""
    sub, corr, null_p = _run(lambda c, rng: render_wav(c, RATE, rng))
    assert sub == corr == 60
    assert null_p < 1e-6  # and null trials stand out


def test_per_serve_transforms_leave_the_attack_at_chance() -> None:
    sub, corr, null_p = _run(lambda c, rng: served_wav(c, RATE, rng))
    for k in (sub, corr):
        assert stats.binomtest(k, 60, 0.5).pvalue > 0.05, (sub, corr)
    assert null_p > 0.05  # null trials look like the others


def test_transform_is_small_and_keeps_channels_together() -> None:
    rng = np.random.default_rng(1)
    x = np.stack([_speechy(rng), -_speechy(np.random.default_rng(1))], 1)
    y = perturb(x, RATE, rng)
    assert y.shape == (len(x) + blinding.pad_samples(RATE), 2)
    np.testing.assert_allclose(y[:, 0], -y[:, 1], atol=1e-9)  # antiphase survives
    gain_db = 10 * np.log10(np.sum(y**2) / np.sum(x**2))
    assert abs(gain_db) <= blinding.MAX_GAIN_DB + 0.01
    lag = np.argmax(np.correlate(y[:600, 0], x[:500, 0], "valid"))
    assert 0 <= lag <= blinding.MAX_DELAY_S * RATE + 1
    wavs = {served_wav(x[:, 0], RATE) for _ in range(3)}
    assert len({len(w) for w in wavs}) == 1 and len(wavs) == 3  # one size, never one byte string


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from seofp_lab.listening.listener import StudyService
    from seofp_lab.listening.stimuli import prepare_study

    monkeypatch.setenv("SEOFP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)
    study = make_study(tmp_path, screening={"headphone_trials": 0, "headphone_pass": 0,
                                            "environment_trials": 0, "environment_pass": 0})
    prepare_study(study)
    service = StudyService(study)
    lis = service.listener(service.enroll())
    lis.consent("1", True)
    lis.save_metadata({})
    return lis


def test_tickets_are_one_use_and_the_server_clock_gates_the_answer(listener, monkeypatch) -> None:
    from seofp_lab.errors import StudyError

    served = listener.next_trial()
    assert len(set(served.tickets)) == 3
    with pytest.raises(StudyError, match="never served"):  # a forged answer alone: refused
        listener.record_answer(served.public_id, "A", {"ms_heard_x": 9e9}, enforce_playback=True)
    wavs = [VAULT.take(t) for t in served.tickets]
    assert all(w and w[:4] == b"RIFF" for w in wavs)
    assert all(VAULT.take(t) is None for t in served.tickets)  # spent
    gate = listener.playback(served)
    assert not gate.ok and gate.wait_s > 0 and gate.clip_ms == pytest.approx(served.clip_ms)
    with pytest.raises(StudyError, match="still to go"):
        listener.record_answer(served.public_id, "A", enforce_playback=True)
    later = blinding.clock() + timedelta(seconds=gate.needed_s + 5)
    assert listener.playback(served, now=later).ok
    monkeypatch.setattr(blinding, "clock", lambda: later)
    listener.record_answer(served.public_id, "A", {"ms_heard_x": 9e9, "rt_from_first_x_ms": -3.6e6},
                           enforce_playback=True)
    from sqlalchemy import select

    from seofp_lab.listening.store import Answer

    with listener.service.store.session() as s:
        a = s.scalars(select(Answer)).one()
    # stored timings are the server's: the forged 9e9 ms is capped by the time since X's serve
    assert 0 <= a.ms_heard_x < 60_000 and 0 <= a.rt_from_first_x_ms < 60_000
    nxt = listener.next_trial()  # a new trial revokes nothing it should not; old tickets stay dead
    assert VAULT.take(served.tickets[0]) is None and nxt.tickets != served.tickets
    timings = blinding.serve_timings(listener.service.store, listener.service.study.name)
    assert len(timings) == 1 and timings["clip_ms"].iloc[0] == pytest.approx(served.clip_ms)
    assert timings["first_served_x"].notna().all()
