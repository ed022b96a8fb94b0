"""Run names that say what a run is in the MLflow runs table: role, format, corpus, config.

``baseline fp32 · embedded · demo_baseline``, ``seofp s1e5 · embedded · demo_s1e5``,
``control fp32 · embedded · demo_s1e5_control``. The tags (``seofp.role``, ``seofp.format``,
``seofp.corpus``) stay the machine-readable truth; the name is for reading and searching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seofp_lab.config import ExperimentConfig


def compose(role: str, fmt: str | None, corpus: str, label: str) -> str:
    """A run name from its parts.

    >>> compose("seofp", "s1e5", "embedded", "demo_s1e5")
    'seofp s1e5 · embedded · demo_s1e5'

    >>> compose("control", None, "voicebank_demand", "demo_s1e5_control")
    'control fp32 · voicebank_demand · demo_s1e5_control'
    """
    return f"{role} {fmt or 'fp32'} · {corpus} · {label}"


def run_name(cfg: ExperimentConfig, fmt: str | None) -> str:
    """The name of a training run of ``cfg`` compressed to ``fmt`` (None: fp32); the configured
    ``tracking.run_name`` (or the config's ``name``) comes last."""
    return compose(cfg.compression.role, fmt, cfg.corpus.name, cfg.tracking.run_name or cfg.name)
