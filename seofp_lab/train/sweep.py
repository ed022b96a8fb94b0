"""``seofp sweep configs/sweep/NAME.yaml``: a grid of independent runs of one experiment.

Each point is an ordinary tracked run (the same as ``seofp train`` with overrides), so any
scheduler can launch points separately with ``--point I``; ``--list`` prints the points.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from pydantic import Field

from seofp_lab.config import CONFIGS_DIR, ConfigError, Strict, load_config, load_yaml_model


class SweepConfig(Strict):
    experiment: str  # a name under configs/experiment/ or a path
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # dotted key -> values
    overrides: list[str] = Field(default_factory=list)  # applied to every point
    evaluate: bool = True


def points(sweep: SweepConfig) -> list[list[str]]:
    """Every combination of the grid as a list of overrides (the grid's key order is kept)."""
    keys = list(sweep.grid)
    combos = itertools.product(*(sweep.grid[k] for k in keys)) if keys else [()]
    return [list(sweep.overrides) + [f"{k}={v}" for k, v in zip(keys, c, strict=True)]
            for c in combos]


def experiment_path(name: str) -> Path:
    p = Path(name)
    return p if p.suffix == ".yaml" else CONFIGS_DIR / "experiment" / f"{name}.yaml"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of experiments from configs/sweep/")
    p.add_argument("sweep", help="a sweep YAML, e.g. configs/sweep/formats.yaml")
    p.add_argument("--list", action="store_true", help="print the points and exit")
    p.add_argument("--point", type=int, default=None, help="run only point I (0-based)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sweep = load_yaml_model(args.sweep, SweepConfig)
    exp = experiment_path(sweep.experiment)
    pts = points(sweep)
    for overrides in pts:  # validate every point before the first run starts
        load_config(exp, overrides)
    if args.list:
        for i, o in enumerate(pts):
            print(i, " ".join(o))
        return 0
    if args.point is not None and not 0 <= args.point < len(pts):
        raise ConfigError(f"Expected --point in [0, {len(pts) - 1}] but got {args.point}")
    chosen = [pts[args.point]] if args.point is not None else pts
    from seofp_lab.evaluate.run import evaluate  # noqa: PLC0415
    from seofp_lab.train.run import train  # noqa: PLC0415

    for i, overrides in enumerate(chosen):
        print(f"[{i + 1}/{len(chosen)}] {' '.join(overrides)}")
        result = train(load_config(exp, overrides))
        print(result)
        if sweep.evaluate:
            evaluate(result.run_id)
    return 0
