"""The pre-registered study definition (``studies/NAME/study.yaml``) and the trial schedule.

The schedule of a participant is a pure function of the study seed, the participant's own seed and
counterbalancing slot, and the frozen item list
(docs/listening.md#randomisation-and-counterbalancing): rebuilt on resume or audit, never
re-drawn. Design: docs/listening_analysis.md#design. Order cells: 1 = reference is A and X = A,
2 = reference A and X = B, 3 = probe A and X = A, 4 = probe A and X = B; each cell occurs
equally often among a listener's test trials.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from seofp_lab.config import Strict, load_yaml_model
from seofp_lab.errors import StudyError
from seofp_lab.listening.crowd import CrowdSpec

TrialType = Literal["practice", "main", "catch", "null", "trap", "ladder"]
Clip = Literal["baseline", "compressed", "catch", "trap", "ladder_ref", "ladder"]


class ItemSelection(Strict):
    """The item pool and how a listener's items are drawn from it (docs/listening_analysis.md
    #design)."""

    count: int | None = Field(48, ge=1)  # the pool size; None: every test item of the runs
    snrs: list[float] | None = None  # None: every SNR present
    noises: list[str] | None = None
    # each listener hears tests_per_listener items of the pool: "random" draws a per-listener
    # random subset (stratified by SNR, from the listener's seed); "rotation" a window of the
    # pool rotated by the counterbalancing slot (a Latin-square-like cover of the pool)
    assignment: Literal["random", "rotation"] = "random"


class TrialCounts(Strict):
    practice: int = Field(6, ge=0)
    blocks: int = Field(2, ge=1)
    test_per_block: int = Field(16, ge=1)
    catch_per_block: int = Field(2, ge=0)
    null_per_block: int = Field(2, ge=0)
    trap_per_block: int = Field(0, ge=0)  # gold items: B (or A) heavily degraded, X obvious
    break_seconds: float = Field(60.0, ge=0.0)
    # an unfinished participant holds a counterbalancing slot this long after enrolment;
    # then the slot goes to the next enrolment (finished participants keep theirs)
    hold_minutes: float = Field(120.0, gt=0.0)


class Screening(Strict):
    headphone_trials: int = Field(6, ge=0)  # Woods et al. (2017) antiphase 3-AFC
    headphone_pass: int = Field(5, ge=0)
    environment_trials: int = Field(4, ge=0)  # 50 vs 40 dB SNR pairs (ITU-T P.808)
    environment_pass: int = Field(3, ge=0)
    catch_min_fraction: float = Field(0.75, ge=0.0, le=1.0)
    max_no_x_fraction: float = Field(0.2, ge=0.0, le=1.0)
    min_median_rt_s: float = Field(3.0, ge=0.0)
    max_blur_per_block: int = Field(3, ge=0)
    max_same_response: float = Field(0.9, ge=0.0, le=1.0)
    trap_min_fraction: float = Field(1.0, ge=0.0, le=1.0)  # per listener, and pooled


class AnalysisPlan(Strict):
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    margin: float = Field(0.575, gt=0.5, lt=1.0)  # primary p_U: one classic JND
    secondary_margins: list[float] = Field(default_factory=lambda: [0.60, 0.65])
    listeners: int = Field(24, ge=2)  # after screening
    # the claim is invalid when more than this fraction of completed listeners is flagged by
    # the cheating detector (flagged listeners are excluded in any case)
    max_flagged_fraction: float = Field(0.0, ge=0.0, le=1.0)


class StimulusSpec(Strict):
    target_lufs: float = -26.0
    peak_dbfs: float = Field(-1.0, le=0.0)
    sample_rate: int = 48000
    max_seconds: float = Field(4.0, ge=0.4)
    min_seconds: float = Field(0.4, ge=0.4)  # BS.1770 gating needs 400 ms
    catch: Literal["noise", "lowpass", "both"] = "both"
    side_metrics: bool = True  # PESQ/STOI per pair; off for synthetic fixtures


class Ladder(Strict):
    enabled: bool = False
    levels_db: list[float] = Field(default_factory=lambda: [-12, -6, 0, 6, 12, 18, 24])
    trials_per_level: int = Field(6, ge=1)
    items: int = Field(4, ge=1)


class PlayerSpec(Strict):
    min_play_seconds: float = Field(1.0, ge=0.0)  # each of A, B, X before the answer unlocks
    crossfade_ms: float = Field(8.0, ge=0.0, le=50.0)


class StudyDefinition(Strict):
    """A pre-registered ABX study; its SHA-256 goes with every trial
    (docs/listening.md#pre-registration)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    title: str = "Listening study"
    consent_version: str = "1"
    consent_text: str = (
        "You will hear short speech clips over headphones and say which of two clips a third "
        "one matches. It takes about 20 minutes. Your answers are stored without your name; "
        "you may stop at any time."
    )
    baseline_run: str | None = None  # a run id, or latest:ROLE (resolved once, at prepare)
    compressed_run: str | None = None
    runs_experiment: str = "seofp-demo"  # where latest:ROLE is looked up
    baseline_dir: Path | None = None  # instead of a run id: a directory with manifest.csv
    compressed_dir: Path | None = None
    mlflow_experiment: str = "seofp-listening"
    seed: int = 0
    items: ItemSelection = ItemSelection()
    trials: TrialCounts = TrialCounts()
    screening: Screening = Screening()
    analysis: AnalysisPlan = AnalysisPlan()
    stimuli: StimulusSpec = StimulusSpec()
    ladder: Ladder = Ladder()
    player: PlayerSpec = PlayerSpec()
    crowd: CrowdSpec = CrowdSpec()  # codes, redirects, device/bandwidth/time checks
    # a confidence rating after each answer (docs/listening_participants.md#confidence): false
    # (not asked), true (3 levels), the number of levels (2..7) or the labels, lowest first;
    # the pages ask it and the analysis reports accuracy by confidence only when it is set
    confidence: bool | int | list[str] = False

    @model_validator(mode="after")
    def _check(self) -> StudyDefinition:
        if self.baseline_run is None and self.baseline_dir is None:
            raise ValueError("Expected baseline_run (a run id) or baseline_dir")
        if self.compressed_run is None and self.compressed_dir is None:
            raise ValueError("Expected compressed_run (a run id) or compressed_dir")
        t = self.trials
        if (t.test_per_block * t.blocks) % 4:
            raise ValueError(
                "Expected blocks * test_per_block divisible by 4 (four order cells equally often)"
                f" but got {t.blocks} * {t.test_per_block}"
            )
        if self.screening.headphone_pass > self.screening.headphone_trials:
            raise ValueError("Expected screening.headphone_pass <= headphone_trials")
        if self.screening.environment_pass > self.screening.environment_trials:
            raise ValueError("Expected screening.environment_pass <= environment_trials")
        if not isinstance(self.confidence, bool) and not 2 <= self.confidence_levels <= 7:
            raise ValueError("Expected confidence: false, true, 2..7 levels or 2..7 labels but "
                             f"got {self.confidence!r}")
        if isinstance(self.confidence, list) and (
                len(set(self.confidence)) != len(self.confidence)
                or not all(label.strip() for label in self.confidence)):
            raise ValueError("Expected distinct, non-empty confidence labels but got "
                             f"{self.confidence!r}")
        if self.items.count is not None and self.items.count < self.tests_per_listener:
            raise ValueError(f"Expected items.count (the pool) >= {self.tests_per_listener} "
                             f"test trials per listener but got {self.items.count}")
        return self

    @property
    def confidence_levels(self) -> int:
        """0 when no confidence rating is asked, else the number of levels."""
        if isinstance(self.confidence, bool):
            return 3 if self.confidence else 0
        if isinstance(self.confidence, list):
            return len(self.confidence)
        return int(self.confidence)

    def confidence_labels(self) -> list[str]:
        """The confidence scale as the page shows it, lowest first ([] when not asked)."""
        if isinstance(self.confidence, list):
            return list(self.confidence)
        if self.confidence_levels == 3:
            return ["1 - guessing", "2 - fairly sure", "3 - sure"]
        return [str(k) for k in range(1, self.confidence_levels + 1)]

    @property
    def tests_per_listener(self) -> int:
        return self.trials.test_per_block * self.trials.blocks


def load_study(study_dir: str | Path) -> tuple[StudyDefinition, str]:
    """Read ``study_dir/study.yaml``; return the definition and the SHA-256 of the file's bytes.

    Relative ``*_dir`` paths are resolved against the study folder.
    """
    path = Path(study_dir) / "study.yaml"
    if not path.is_file():
        raise StudyError(f"Expected a study definition at {path} but it does not exist")
    study = load_yaml_model(path, StudyDefinition)
    updates = {}
    for key in ("baseline_dir", "compressed_dir"):
        value = getattr(study, key)
        if value is not None and not value.is_absolute():
            updates[key] = (path.parent / value).resolve()
    if updates:
        study = study.model_copy(update=updates)
    return study, hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Item:
    """One stimulus item (utterance x noise x SNR) as frozen in the manifest."""

    item_id: str
    utterance_id: str
    snr: float


@dataclass(frozen=True)
class TrialSpec:
    """One scheduled trial. ``ref``/``probe`` name manifest clips; they never reach the browser."""

    index: int
    block: int  # 0: practice; 1..blocks: main; blocks + 1: ladder
    trial_type: TrialType
    item_id: str
    ref: Clip
    probe: Clip
    order_cell: int  # 1..4
    gain_db: float | None = None
    feedback: bool = False

    @property
    def x_is(self) -> Literal["A", "B"]:
        return "A" if self.order_cell in (1, 3) else "B"

    @property
    def clip_a(self) -> Clip:
        return self.ref if self.order_cell in (1, 2) else self.probe

    @property
    def clip_b(self) -> Clip:
        return self.probe if self.order_cell in (1, 2) else self.ref


def item_pool(items: list[Item], study_seed: int) -> list[Item]:
    """Study-seeded order with SNRs interleaved, so any window is balanced over SNR."""
    rng = np.random.default_rng([study_seed, 1])
    groups: dict[float, list[Item]] = {}
    for it in sorted(items, key=lambda i: i.item_id):
        groups.setdefault(it.snr, []).append(it)
    shuffled = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    out: list[Item] = []
    for k in range(max(len(g) for g in shuffled)):
        out.extend(g[k] for g in shuffled if k < len(g))
    return out


def _cells(n: int, rng: np.random.Generator) -> list[int]:
    """Order cells in blocks of 4, each block a permutation of 1..4."""
    out: list[int] = []
    while len(out) < n:
        out.extend(int(c) + 1 for c in rng.permutation(4))
    return out[:n]


def _shuffle_block(trials: list[dict], utterance: dict[str, str], rng: np.random.Generator,
                   guard: int) -> list[dict]:
    """Shuffle so no utterance repeats back to back and no catch/null sits in the first places."""
    for _ in range(2000):
        order = [trials[i] for i in rng.permutation(len(trials))]
        if any(t["trial_type"] in ("catch", "null", "trap") for t in order[:guard]):
            continue
        pairs = zip(order, order[1:], strict=False)
        if all(utterance[a["item_id"]] != utterance[b["item_id"]] for a, b in pairs):
            return order
    raise StudyError(
        "Expected a block order without repeated utterances on consecutive trials but none was "
        "found in 2000 shuffles; use more utterances or fewer trials per block"
    )


def listener_items(study: StudyDefinition, pool: list[Item], participant_seed: int,
                   slot: int) -> list[Item]:
    """The items one listener hears in main trials: a subset of the pool (items.assignment).

    "random": from the listener's seed, SNRs taken in turn, each time a random item of that
    SNR among those whose sentence (utterance) is least used so far, until
    ``tests_per_listener`` items; of up to 200 such draws the first whose SNR counts and
    sentence counts each differ by at most one is kept (else the most balanced): a different
    random subset per listener, balanced over SNRs and sentences as far as the pool allows.
    "rotation": the pool's window starting at ``slot * n``.
    """
    n_test = study.tests_per_listener
    if study.items.assignment == "rotation":
        start = (slot * n_test) % len(pool)
        return [pool[(start + j) % len(pool)] for j in range(n_test)]
    rng = np.random.default_rng([study.seed, participant_seed, 3])
    groups: dict[float, list[Item]] = {}
    for it in pool:
        groups.setdefault(it.snr, []).append(it)
    best: tuple[int, list[Item]] | None = None
    for _ in range(200):  # randomised greedy draws; the first balanced one is kept
        draw = _greedy_subset([g for _, g in sorted(groups.items())], n_test, rng)
        utt = Counter(it.utterance_id for it in draw)
        snr = Counter(it.snr for it in draw)
        spread = max(utt.values()) - min(utt.values()) + max(snr.values()) - min(snr.values())
        if best is None or spread < best[0]:
            best = (spread, draw)
        if max(utt.values()) - min(utt.values()) <= 1 and max(snr.values()) - min(
                snr.values()) <= 1:
            break
    return best[1]


def _greedy_subset(groups: list[list[Item]], n: int, rng: np.random.Generator) -> list[Item]:
    """SNR groups in turn (random order), each time a random item of the group among those
    whose sentence is least used so far."""
    decks = [[g[i] for i in rng.permutation(len(g))] for g in groups]
    decks = [decks[j] for j in rng.permutation(len(decks))]
    out: list[Item] = []
    used: Counter[str] = Counter()
    while len(out) < n:
        for deck in decks:
            if deck and len(out) < n:
                least = min(used[it.utterance_id] for it in deck)
                pick = next(it for it in deck if used[it.utterance_id] == least)
                deck.remove(pick)
                used[pick.utterance_id] += 1
                out.append(pick)
    return out


def build_schedule(study: StudyDefinition, items: list[Item], participant_seed: int,
                   participant_index: int, ladder_items: list[str] | None = None
                   ) -> list[TrialSpec]:
    """The whole schedule of one participant: practice, main blocks, optional ladder.

    Args:
        study: the definition (counts, seed, ladder).
        items: the manifest's items (each has baseline, compressed, catch and trap clips).
        participant_seed: the participant's stored CSPRNG seed.
        participant_index: the counterbalancing slot (the store's ``Participant.slot``; for
            participants enrolled before slots existed, their enrolment index): its parity
            sets the block order, and with items.assignment "rotation" it rotates the item
            window.
        ladder_items: item ids that have ladder clips (practice uses their top level).
    """
    t = study.trials
    n_test = study.tests_per_listener
    if len(items) < n_test:
        raise StudyError(f"Expected at least {n_test} items for {n_test} test trials per "
                         f"listener but the manifest has {len(items)}")
    rng = np.random.default_rng([study.seed, participant_seed])
    pool = item_pool(items, study.seed)
    utt = {i.item_id: i.utterance_id for i in items}
    mine = listener_items(study, pool, participant_seed, participant_index)
    by_snr = sorted(mine, key=lambda i: i.snr)  # stable: cells and blocks balanced over SNR
    cells = _cells(n_test, rng)
    blocks: list[list[dict]] = [[] for _ in range(t.blocks)]

    def place(trial: dict, candidates: list[int]) -> None:
        """Into the block with the fewest trials of this utterance (then the fewest trials)."""
        u = utt[trial["item_id"]]
        b = min(candidates, key=lambda k: (sum(utt[x["item_id"]] == u for x in blocks[k]),
                                           len(blocks[k]), k))
        blocks[b].append(trial)

    per_block = t.test_per_block
    for it, cell in zip(by_snr, cells, strict=False):
        place(dict(trial_type="main", item_id=it.item_id, ref="baseline", probe="compressed",
                   order_cell=cell), [k for k in range(t.blocks) if len(blocks[k]) < per_block])
    kinds = (["catch"] * (t.catch_per_block * t.blocks) + ["null"] * (t.null_per_block * t.blocks)
             + ["trap"] * (t.trap_per_block * t.blocks))
    extra_cells = _cells(len(kinds), rng)
    seen = {k: 0 for k in ("catch", "null", "trap")}
    for kind, cell in zip(kinds, extra_cells, strict=True):
        b = seen[kind] % t.blocks
        seen[kind] += 1
        used = [utt[x["item_id"]] for x in blocks[b]]
        # least-used utterances of this block first, at random among them
        order = sorted(rng.permutation(len(pool)), key=lambda k: used.count(pool[k].utterance_id))
        it = pool[int(order[0])]
        probe = {"catch": "catch", "null": "baseline", "trap": "trap"}[kind]
        blocks[b].append(dict(trial_type=kind, item_id=it.item_id, ref="baseline",
                              probe=probe, order_cell=cell))
    if participant_index % 2:  # counterbalance block order
        blocks.reverse()
    specs: list[TrialSpec] = []
    ladder_ids = ladder_items or []
    practice_cells = _cells(t.practice, rng)
    for j in range(t.practice):
        use_ladder = bool(ladder_ids) and j % 2 == 0
        item = ladder_ids[j // 2 % len(ladder_ids)] if use_ladder else pool[j % len(pool)].item_id
        specs.append(TrialSpec(
            index=len(specs), block=0, trial_type="practice", item_id=item,
            ref="ladder_ref" if use_ladder else "baseline",
            probe="ladder" if use_ladder else "catch",
            order_cell=practice_cells[j], feedback=True,
            gain_db=max(study.ladder.levels_db) if use_ladder else None))
    for b, block in enumerate(blocks, start=1):
        for trial in _shuffle_block(block, utt, rng, guard=min(2, len(block) - 1)):
            specs.append(TrialSpec(index=len(specs), block=b, **trial))
    if study.ladder.enabled and ladder_ids:
        per_level = study.ladder.trials_per_level
        lad = []
        for level in study.ladder.levels_db:
            for j, cell in enumerate(_cells(per_level, rng)):
                lad.append(dict(trial_type="ladder", item_id=ladder_ids[j % len(ladder_ids)],
                                ref="ladder_ref", probe="ladder", order_cell=cell,
                                gain_db=float(level)))
        for trial in (lad[i] for i in rng.permutation(len(lad))):
            specs.append(TrialSpec(index=len(specs), block=t.blocks + 1, **trial))
    return specs


def schedule_digest(specs: list[TrialSpec]) -> str:
    """SHA-256 of a schedule, for audits: the same inputs always give the same digest."""
    blob = json.dumps([s.__dict__ for s in specs], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()
