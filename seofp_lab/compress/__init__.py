"""SEOFP compression: formats and rounding, exponent ranges, pruning, weight sharing, sizes.

Imports torch and numpy only (no Lightning, no MLflow): the exporter and tests use it without a
trainer. ``plots`` imports matplotlib lazily and is not imported here.
Names resolve lazily (PEP 562), so ``seofp_lab.compress.codec`` loads without torch: the
C engine runs inference with numpy alone.
"""

from __future__ import annotations

import importlib
from typing import Any

_LOCATION: dict[str, str] = {
    "GroupRange": "range",
    "PruningSchedule": "pruning",
    "RepresentabilityError": "seofp",
    "SEOFPFormat": "seofp",
    "SEOFPParametrization": "seofp",
    "Stored": "range",
    "apply_masks_": "pruning",
    "apply_seofp_": "range",
    "attach_ste_": "ste",
    "channel_masks": "pruning",
    "check_representable": "range",
    "code_length": "codec",
    "compression_report": "report",
    "cubic_sparsity": "pruning",
    "decode_seofp": "codec",
    "encode_seofp": "codec",
    "exponent_range": "codec",
    "exponent_ranges": "range",
    "fit_window": "seofp",
    "kmeans_1d": "sharing",
    "layer_table_csv": "report",
    "magnitude_masks": "pruning",
    "pack_bits": "codec",
    "pack_mask": "codec",
    "pack_seofp": "codec",
    "packed_size_bytes": "codec",
    "prunable": "pruning",
    "quantized_tensors": "range",
    "remove_ste_": "ste",
    "round_to_format": "seofp",
    "seofp_round": "seofp",
    "seofp_ste": "seofp",
    "share_weights_": "sharing",
    "stored_tensors": "range",
    "unique_values": "sharing",
    "unit_layers": "pruning",
    "unpack_bits": "codec",
    "unpack_mask": "codec",
    "unpack_seofp": "codec",
    "update_window_": "ste",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATION:
        raise AttributeError(f"module 'seofp_lab.compress' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"seofp_lab.compress.{_LOCATION[name]}"), name)
    globals()[name] = value
    return value


__all__ = sorted(_LOCATION)
