"""The bridge from ``CompressionConfig`` to objects: callbacks for training, then the final proof.

``train()`` calls :func:`build_compression` before the Trainer exists (``mode: ste`` parametrizes
the model here, so the optimizer sees the fp32 shadow weights), passes ``plan.callbacks`` to the
Trainer, and after fitting calls ``plan.finalize(model)`` (last projection, parametrizations
removed, representability proof, size metrics) and ``plan.artifacts(model, dir)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as L
import torch
from torch import nn

from seofp_lab.compress.plots import exponent_histogram_figure, sparsity_figure
from seofp_lab.compress.pruning import PruningSchedule
from seofp_lab.compress.range import check_representable
from seofp_lab.compress.report import compression_report, layer_table_csv
from seofp_lab.compress.seofp import RepresentabilityError, SEOFPFormat
from seofp_lab.compress.ste import attach_ste_, remove_ste_
from seofp_lab.config import CompressionConfig, ConfigError
from seofp_lab.train.callbacks import CompressionCallback, CompressionState

METRIC_KEYS = ("bits_per_weight", "sparsity", "compression_pct", "compression_pct_paper",
               "size_bytes_paper", "size_bytes_analytic")


def exact_size_bytes(model: nn.Module, group: str) -> int | None:
    """Length of the model's ``.seofp`` file (docs/method.md#sizes), or None for a model the
    exporter does not know (only LSTMEnhancer and FCNEnhancer are exported)."""
    from seofp_lab.infer.export import serialize_model  # noqa: PLC0415 - infer is heavier
    from seofp_lab.models import FCNEnhancer, LSTMEnhancer  # noqa: PLC0415

    if not isinstance(model, (LSTMEnhancer, FCNEnhancer)):
        return None
    return len(serialize_model(model, group))  # type: ignore[arg-type]


@dataclass
class CompressionPlan:
    """Callbacks for the Trainer and what to do with the model after fitting."""

    state: CompressionState
    callbacks: list[L.Callback] = field(default_factory=list)
    last_report: dict[str, Any] | None = None

    @property
    def format_name(self) -> str | None:
        """``"s1e5"`` (the ``seofp.format`` tag), or None without a format."""
        return self.state.fmt.name if self.state.fmt is not None else None

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Pruning masks by stored-tensor name (True = kept); the exporter writes bitmaps."""
        return self.state.masks

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> dict[str, float]:
        """Last projection, STE removed, the representability proof, then the size metrics.

        Metrics: ``bits_per_weight``, ``sparsity``, ``size_bytes_paper``, ``size_bytes_analytic``,
        ``compression_pct_paper``, and ``size_bytes`` (the exported ``.seofp`` file's length, for
        the models the exporter knows) with ``compression_pct`` from it, else from the analytic
        size.

        Raises:
            RepresentabilityError: a quantized value is not ±2^e/0 inside the format's window,
                or a pruned value is not 0.
        """
        st = self.state
        if model is not st.model:
            raise ValueError("Expected finalize() on the model given to build_compression()")
        model.eval()
        if st.mode == "ste":
            st.update_window()
            remove_ste_(st.targets)  # parameters := q(θ); plain names in state_dict again
            st.mode = "paper"  # from here on, projections write every target
        st.project()  # idempotent on rounded values; re-fits a global window, re-applies masks
        if st.fmt is not None:
            check_representable(st.targets, st.fmt, st.masks)
        for s in st.stored:
            mask = st.masks.get(s.name)
            if mask is not None and bool((s.value[~mask] != 0).any()):
                raise RepresentabilityError(f"Expected the pruned values of {s.name} to be 0")
        rep = compression_report(model, st.fmt, st.masks, quantize=st.quantize,
                                 clusters=st.clusters)
        self.last_report = rep
        out = {k: float(rep[k]) for k in METRIC_KEYS}
        size = exact_size_bytes(model, st.fmt.group if st.fmt is not None else "global")
        if size is not None:  # the reported size is the file's (docs/method.md#sizes)
            out["size_bytes"] = float(size)
            out["compression_pct"] = 100.0 * (1.0 - size / rep["fp32_bytes"])
        return out

    def artifacts(self, model: nn.Module, out_dir: Path) -> list[Path]:
        """Exponent histogram and sparsity PNGs, the per-layer CSV and the full report JSON."""
        import matplotlib.pyplot as plt  # noqa: PLC0415 - plots.py already chose Agg

        st = self.state
        rep = compression_report(model, st.fmt, st.masks, quantize=st.quantize,
                                 clusters=st.clusters)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for fname, make in (("exponent_histogram.png", exponent_histogram_figure),
                            ("sparsity.png", sparsity_figure)):
            fig = make(rep)
            fig.savefig(out_dir / fname, dpi=120)
            plt.close(fig)
            paths.append(out_dir / fname)
        (out_dir / "layers.csv").write_text(layer_table_csv(rep))
        (out_dir / "compression_report.json").write_text(json.dumps(rep, indent=1))
        return paths + [out_dir / "layers.csv", out_dir / "compression_report.json"]


def build_compression(cfg: CompressionConfig, model: nn.Module, max_epochs: int) -> CompressionPlan:
    """Objects for one compressed run; ``mode: ste`` parametrizes ``model`` in place now."""
    fmt = None
    if cfg.format is not None:
        fmt = SEOFPFormat.from_name(cfg.format, cfg.group, cfg.fraction_bits)
    elif cfg.fraction_bits:
        raise ConfigError(f"compression: expected a format with fraction_bits={cfg.fraction_bits} "
                          "but got none")
    schedule = None
    if cfg.pruning is not None:
        p = cfg.pruning
        end = max_epochs - 1 if p.end_epoch is None else p.end_epoch
        if not p.start_epoch <= end < max_epochs:
            raise ConfigError(
                f"compression.pruning: expected start_epoch <= end_epoch < train.max_epochs "
                f"({max_epochs}) "
                f"but got start_epoch={p.start_epoch}, end_epoch={end}"
            )
        scope = p.scope
        schedule = PruningSchedule(p.kind, p.sparsity, p.schedule, p.start_epoch, end, scope)
    clusters = cfg.weight_sharing.clusters if cfg.weight_sharing is not None else None
    state = CompressionState(model, fmt, cfg.mode, cfg.quantize, schedule, clusters)
    if fmt is not None and cfg.mode == "ste":
        state.window = attach_ste_(state.targets, fmt)
    return CompressionPlan(state, [CompressionCallback(state)])
