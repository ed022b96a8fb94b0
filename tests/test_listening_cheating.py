"""The implausible-performance detector on simulated listeners (docs/listening_blinding.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seofp_lab.listening.cheating import flag_listeners
from seofp_lab.listening.psychometric import psi

LEVELS = [-12, -6, 0, 6, 12, 18, 24]


def _study(cheaters: dict[int, str], n_listeners: int = 8, seed: int = 0) -> pd.DataFrame:
    """Honest listeners follow psi(alpha=6 dB, beta=3); a 'devtools' cheater is right on
    every trial; a 'speed' cheater answers in 0.5 s on 4 s clips."""
    rng = np.random.default_rng(seed)
    rows = []
    for who in range(n_listeners):
        kind = cheaters.get(who)
        for level in LEVELS:
            for _ in range(6):
                p = 1.0 if kind == "devtools" else float(psi(level, 6.0, 3.0, 0.02))
                rows.append({"listener": who, "trial_type": "ladder", "gain_db": float(level),
                             "correct": int(rng.random() < p),
                             "rt_ms": 500.0 if kind == "speed" else rng.uniform(4500, 9000)})
        for _ in range(12):
            p = 1.0 if kind == "devtools" else 0.5
            rows.append({"listener": who, "trial_type": "null", "gain_db": None,
                         "correct": int(rng.random() < p),
                         "rt_ms": 500.0 if kind == "speed" else rng.uniform(4500, 9000)})
    return pd.DataFrame(rows).assign(clip_ms=4000.0)


def test_flags_the_cheaters_and_only_them() -> None:
    out = flag_listeners(_study({3: "devtools", 7: "speed"}))
    assert list(out.columns) == ["listener", "flagged", "reason"]
    assert set(out.loc[out["flagged"], "listener"]) == {3, 7}
    why = dict(zip(out["listener"], out["reason"], strict=True))
    assert "ladder:" in why[3] and "null trials:" in why[3]
    assert why[7].startswith("speed:") and why[0] == ""


@pytest.mark.parametrize("seed", range(2))
def test_honest_listeners_are_not_flagged(seed: int) -> None:
    assert not flag_listeners(_study({}, seed=seed))["flagged"].any()


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="correct"):
        flag_listeners(pd.DataFrame({"listener": [1], "trial_type": ["null"]}))
