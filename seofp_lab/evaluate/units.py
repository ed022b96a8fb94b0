"""The statistical units of two aligned score tables: utterance, talker and noise recording.

``evaluate()`` writes ``utterance`` and ``noise_clip`` (from the test set's manifest) next to
``speaker`` in each per-utterance CSV. Runs evaluated before those columns existed lack them; then
:func:`resolve_units` derives the utterance from the item id where the id has the pool test set's
form ``<utterance>_<noise>_snr<snr>`` (``_2``, ``_3`` ... for repeats), which is exact by
construction, and otherwise takes each item as its own utterance (right for paired corpora, which
have one mixture per pair). Either way :attr:`Units.note` says what was done, and the comparison
prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from seofp_lab.errors import PairingError

Unit = Literal["utterance", "speaker", "mixture"]
UNITS: tuple[Unit, ...] = ("utterance", "speaker", "mixture")
REEVALUATE = "re-evaluate both runs (`seofp evaluate RUN`) to record it"


@dataclass(frozen=True)
class Units:
    """One label per aligned item (test-set order) for each kind of unit."""

    utterance: np.ndarray  # (n,) str
    talker: np.ndarray | None  # (n,) str; None when no table has a 'speaker' column
    noise_clip: np.ndarray | None  # (n,) str; None when no table has a 'noise_clip' column
    note: str  # how the units were found when a column was missing; "" when all were logged

    def labels(self, unit: Unit) -> np.ndarray:
        """The cluster label of each item for ``unit`` (``mixture``: the item's own index)."""
        if unit == "utterance":
            return self.utterance
        if unit == "speaker":
            if self.talker is None:
                raise PairingError("Expected a 'speaker' column in the per-utterance scores for "
                                   "--unit speaker but got none; use --unit utterance")
            return self.talker
        if unit == "mixture":
            return np.arange(len(self.utterance)).astype(str)
        raise PairingError(f"Expected unit one of {', '.join(UNITS)} but got {unit!r}")

    def counts(self, keep: np.ndarray | None = None) -> dict[str, int | None]:
        """``n_mixtures``, ``n_utterances``, ``n_talkers``, ``n_noise_clips`` of the kept items
        (None: unknown)."""
        keep = np.ones(len(self.utterance), bool) if keep is None else keep

        def distinct(x: np.ndarray | None) -> int | None:
            return None if x is None else len(set(x[keep].tolist()))

        return {"n_mixtures": int(keep.sum()), "n_utterances": distinct(self.utterance),
                "n_talkers": distinct(self.talker), "n_noise_clips": distinct(self.noise_clip)}


def _column(both: pd.DataFrame, name: str) -> np.ndarray | None:
    """``name`` from run A's or run B's columns (as strings); a disagreement is a PairingError."""
    got = []
    for side in ("a", "b"):
        col = f"{name}_{side}"
        if col in both.columns and both[col].notna().all() and (both[col].astype(str) != "").all():
            got.append(both[col].astype(str).to_numpy())
    if len(got) == 2 and not np.array_equal(got[0], got[1]):
        i = int(np.flatnonzero(got[0] != got[1])[0])
        raise PairingError(f"Expected both runs to agree on the {name} of each item but got "
                           f"{got[0][i]!r} in A and {got[1][i]!r} in B for {both.index[i]!r} "
                           "(different test sets)")
    return got[0] if got else None


def _from_id(item_id: str, noise: str, snr: float) -> str | None:
    """``rain`` at 5 dB: ``u1_rain_snr5`` or ``u1_rain_snr5_2`` -> ``u1``; else None."""
    if not np.isfinite(snr):
        return None
    suffix = f"_{noise}_snr{snr:g}"
    m = re.fullmatch(rf"(.+){re.escape(suffix)}(?:_\d+)?", item_id)
    return m.group(1) if m else None


def resolve_units(both: pd.DataFrame) -> Units:
    """The units of :func:`paired.align`'s table (see the module docstring)."""
    notes = []
    talker = _column(both, "speaker")
    if talker is None:
        notes.append("no 'speaker' column: talkers unknown")
    noise_clip = _column(both, "noise_clip")
    utterance = _column(both, "utterance")
    if utterance is None:
        noise = _column(both, "noise")
        snr = both["snr_a"].to_numpy(float)
        ids = both.index.astype(str).tolist()
        derived = ([None] * len(ids) if noise is None else
                   [_from_id(i, n, s) for i, n, s in zip(ids, noise, snr, strict=True)])
        n_ok = sum(u is not None for u in derived)
        if n_ok == len(ids) and ids:
            utterance = np.array(derived, dtype=object).astype(str)
            notes.append("no 'utterance' column (scores older than it): utterances derived from "
                         f"the item ids <utterance>_<noise>_snr<snr>; {REEVALUATE}")
        elif n_ok == 0:
            utterance = np.array(ids, dtype=object).astype(str)
            notes.append("no 'utterance' column and the item ids do not name one: each mixture "
                         "is taken as its own utterance (right for a paired corpus, one mixture "
                         f"per pair; for a pool test set {REEVALUATE})")
        else:
            raise PairingError(
                f"Expected an 'utterance' column in the per-utterance scores, or item ids that "
                f"all name their utterance, but got {n_ok} of {len(ids)} ids of the form "
                f"<utterance>_<noise>_snr<snr>; {REEVALUATE}"
            )
    if noise_clip is None:
        notes.append("no 'noise_clip' column: noise recordings unknown"
                     + ("" if any(REEVALUATE in n for n in notes) else f"; {REEVALUATE}"))
    return Units(utterance, talker, noise_clip, "; ".join(notes))


__all__ = ["UNITS", "Unit", "Units", "resolve_units"]
