"""``seofp sweep configs/sweep/NAME.yaml``: a grid of runs, or staged chains baseline -> variants.

Two forms (docs/paper_table.md):

- **grid**: ``experiment`` plus ``grid`` (dotted key -> values); every combination is one
  independent run.
- **chains**: per chain, a baseline trained from scratch, then compressed variants fine-tuned from
  it (``compression.init_from``), each with its equal-budget fp32 control
  (``seofp_lab.train.control``); variants with the same fine-tuning recipe share one control point.

Every run is tagged ``seofp.sweep`` (the sweep's name), ``seofp.sweep_point`` (the point's key,
e.g. ``blstm/s1e8``) and ``seofp.sweep_stage`` (grid | baseline | control | variant), so a
re-run or ``--point I`` finds the finished runs in MLflow and skips them
(:mod:`seofp_lab.train.sweep_run`).
``--list`` prints every point with its stage, what it starts from and whether it is done.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from seofp_lab.config import (
    CONFIGS_DIR,
    ConfigError,
    ExperimentConfig,
    Strict,
    load_config,
    load_yaml_model,
)

Stage = Literal["grid", "baseline", "control", "variant"]


class SweepVariant(Strict):
    """One compressed variant of a chain, fine-tuned from the chain's baseline."""

    name: str  # the point key's second part: "<chain>/<name>"
    compression: str | None = None  # a file under configs/compression/ (``compression=NAME``)
    overrides: list[str] = Field(default_factory=list)


class SweepChain(Strict):
    """A baseline and its variants: the staged form of a sweep."""

    name: str  # "blstm": points are "blstm/baseline", "blstm/control", "blstm/<variant>"
    experiment: str  # the baseline's experiment (a name under configs/experiment/ or a path)
    overrides: list[str] = Field(default_factory=list)  # every point of the chain
    baseline: list[str] = Field(default_factory=list)  # only the baseline (its budget)
    finetune: list[str] = Field(default_factory=list)  # every variant and control (their budget)
    variants: list[SweepVariant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SweepChain:
        names = [v.name for v in self.variants]
        reserved = {"baseline", "control"} & set(names)
        clash = sorted({n for n in names if names.count(n) > 1} | reserved)
        if clash or "/" in self.name:
            raise ValueError(f"Expected distinct variant names other than baseline/control and a "
                             f"chain name without '/' but got {clash or self.name!r}")
        return self


class SweepResources(Strict):
    cpus: float = Field(1.0, gt=0.0, le=1024.0)
    gpus: float = Field(0.0, ge=0.0, le=64.0)
    retries: int = Field(2, ge=0, le=20)


class SweepConfig(Strict):
    name: str | None = None  # the seofp.sweep tag; default: the file's stem
    experiment: str | None = None  # grid form: a name under configs/experiment/ or a path
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # dotted key -> values
    chains: list[SweepChain] = Field(default_factory=list)  # staged form
    overrides: list[str] = Field(default_factory=list)  # applied to every point
    evaluate: bool = True
    bench: bool = True  # benchmark compressed runs on the C engine (``seofp bench``)
    bench_seconds: float = Field(2.0, gt=0.0)  # the benchmarked utterance's length
    bench_samples: int = Field(31, ge=3)  # timed samples per contender (p50, p90)
    # what one point needs on a launcher (``seofp sweep --launcher ray|slurm``): cpus, gpus and
    # retries of a point whose worker died (docs/sweeps.md#launchers)
    resources: SweepResources = Field(default_factory=lambda: SweepResources())
    slurm: dict[str, Any] = Field(default_factory=dict)  # extra submitit slurm_* parameters

    @model_validator(mode="after")
    def _one_form(self) -> SweepConfig:
        if (self.experiment is None) == (not self.chains):
            raise ValueError("Expected either 'experiment' (grid form) or 'chains' (staged form) "
                             "but got " + ("both" if self.chains else "neither"))
        if self.chains and self.grid:
            raise ValueError("Expected 'grid' only with 'experiment' (grid form)")
        names = [c.name for c in self.chains]
        if len(set(names)) != len(names):
            raise ValueError(f"Expected distinct chain names but got {names}")
        return self


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its key, stage, config file, overrides and the points it starts from.

    ``needs`` names, for a control, the baseline; for a variant, the baseline then the control.
    ``overrides`` do not name those runs yet (their ids exist only once they are trained):
    :func:`point_config` adds them.
    """

    index: int
    key: str
    stage: Stage
    experiment: Path
    overrides: tuple[str, ...]
    needs: tuple[str, ...] = ()
    control_for: tuple[str, ...] = ()  # a control: the variants that share it


def experiment_path(name: str) -> Path:
    p = Path(name)
    return p if p.suffix == ".yaml" else CONFIGS_DIR / "experiment" / f"{name}.yaml"


def load_sweep(path: str | Path) -> SweepConfig:
    """The sweep file, validated, with ``name`` defaulting to the file's stem."""
    sweep = load_yaml_model(path, SweepConfig)
    return sweep if sweep.name else sweep.model_copy(update={"name": Path(path).stem})


def _value(v: Any) -> str:
    """A grid value as an override reads it back: null/true/false, lists in flow style."""
    return str(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else (
        json.dumps(v))


def _grid_points(sweep: SweepConfig, extra: tuple[str, ...]) -> list[Point]:
    keys = list(sweep.grid)
    combos = itertools.product(*(sweep.grid[k] for k in keys)) if keys else [()]
    exp = experiment_path(sweep.experiment or "")
    out = []
    for i, c in enumerate(combos):
        grid = [f"{k}={_value(v)}" for k, v in zip(keys, c, strict=True)]
        out.append(Point(i, ",".join(grid) or "all", "grid", exp,
                         (*sweep.overrides, *grid, *extra)))
    return out


def _variant_overrides(sweep: SweepConfig, chain: SweepChain, v: SweepVariant,
                       extra: tuple[str, ...]) -> tuple[str, ...]:
    comp = [f"compression={v.compression}"] if v.compression else []
    return (*sweep.overrides, *chain.overrides, *chain.finetune, *comp, *v.overrides, *extra)


def plan(sweep: SweepConfig, extra: tuple[str, ...] = ()) -> list[Point]:
    """Every point in the order it runs: per chain the baseline, then each control before the
    variants that share it.

    Args:
        extra: overrides applied last to every point (``seofp sweep --override``).
    """
    from seofp_lab.train.control import control_key  # noqa: PLC0415

    if not sweep.chains:
        return _grid_points(sweep, extra)
    out: list[Point] = []
    for chain in sweep.chains:
        exp = experiment_path(chain.experiment)
        base_key = f"{chain.name}/baseline"
        out.append(Point(len(out), base_key, "baseline", exp,
                         (*sweep.overrides, *chain.overrides, *chain.baseline, *extra)))
        groups: dict[str, list[SweepVariant]] = {}  # control key -> variants sharing it
        for v in chain.variants:
            ov = _variant_overrides(sweep, chain, v, extra)
            cfg = load_config(exp, [*ov, f"compression.init_from=<{base_key}>"])
            if not cfg.compression.compressed:
                raise ConfigError(f"sweep {sweep.name}: variant {chain.name}/{v.name} is not "
                                  "compressed; expected a compression format, pruning or "
                                  "weight sharing (a chain's fp32 runs are its baseline and "
                                  "controls)")
            groups.setdefault(control_key(cfg), []).append(v)
        for j, members in enumerate(groups.values()):
            ckey = f"{chain.name}/control" + ("" if j == 0 else f"_{members[0].name}")
            names = tuple(f"{chain.name}/{v.name}" for v in members)
            first = members[0]
            out.append(Point(len(out), ckey, "control", exp,
                             _variant_overrides(sweep, chain, first, extra), (base_key,), names))
            for v in members:
                out.append(Point(len(out), f"{chain.name}/{v.name}", "variant", exp,
                                 _variant_overrides(sweep, chain, v, extra), (base_key, ckey)))
    return out


def points(sweep: SweepConfig) -> list[list[str]]:
    """Each point's overrides (a grid point's: the sweep's then its grid values, key order kept)."""
    return [list(p.overrides) for p in plan(sweep)]


def sweep_tags(sweep: SweepConfig, p: Point) -> dict[str, str]:
    from seofp_lab import tracking  # noqa: PLC0415

    return {tracking.TAG_SWEEP: sweep.name or "", tracking.TAG_SWEEP_POINT: p.key,
            tracking.TAG_SWEEP_STAGE: p.stage}


def point_config(sweep: SweepConfig, p: Point, runs: dict[str, str]) -> ExperimentConfig:
    """The point's experiment config, tagged, starting from the runs of the points it needs.

    For a control point this is the config of the first variant sharing it (with the control's
    tags); ``seofp_lab.train.control`` removes the compression. ``runs`` maps point keys to run
    ids; a placeholder ``<key>`` is used for a missing one (``--list`` validates with it).
    """
    extra: list[str] = []
    if p.stage in ("control", "variant"):
        base = runs.get(p.needs[0], f"<{p.needs[0]}>")
        extra = [f"compression.init_from={base}", f"tracking.baseline_run={base}"]
    if p.stage == "variant" and p.needs[1] in runs:
        extra.append(f"tracking.control_run={runs[p.needs[1]]}")
    cfg = load_config(p.experiment, [*p.overrides, *extra])
    data = cfg.model_dump(mode="json")
    data["tracking"]["tags"] = {**data["tracking"]["tags"], **sweep_tags(sweep, p)}
    return ExperimentConfig.model_validate(data)


__all__ = ["Point", "SweepChain", "SweepConfig", "SweepVariant", "experiment_path", "load_sweep",
           "plan", "point_config", "points", "sweep_tags"]
