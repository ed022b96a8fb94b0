from __future__ import annotations

from pathlib import Path

import pytest

from seofp_lab.config import CONFIGS_DIR, ConfigError, load_yaml_model
from seofp_lab.train.sweep import SweepConfig, points


@pytest.mark.parametrize("path", sorted((CONFIGS_DIR / "sweep").glob("*.yaml")), ids=str)
def test_every_sweep_loads(path: Path) -> None:
    assert points(load_yaml_model(path, SweepConfig))


def test_grid_points_are_the_product() -> None:
    s = SweepConfig(
        experiment="demo_baseline", grid={"a.b": [1, 2], "c": ["x", "y", "z"]}, overrides=["t=1"]
    )
    pts = points(s)
    assert (
        len(pts) == 6 and pts[0] == ["t=1", "a.b=1", "c=x"] and pts[-1] == ["t=1", "a.b=2", "c=z"]
    )


def test_bad_sweep_file(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("experiment: demo_baseline\ngrids: {}\n")
    with pytest.raises(ConfigError, match="grids"):
        load_yaml_model(p, SweepConfig)
