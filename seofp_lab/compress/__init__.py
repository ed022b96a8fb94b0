"""SEOFP compression: formats and rounding, exponent ranges, pruning, weight sharing, sizes.

Imports torch and numpy only (no Lightning, no MLflow): the exporter and tests use it without a
trainer. ``plots`` imports matplotlib lazily and is not imported here.
"""

from seofp_lab.compress.codec import (
    code_length,
    decode_seofp,
    encode_seofp,
    exponent_range,
    pack_bits,
    pack_mask,
    pack_seofp,
    packed_size_bytes,
    unpack_bits,
    unpack_mask,
    unpack_seofp,
)
from seofp_lab.compress.pruning import (
    PruningSchedule,
    apply_masks_,
    channel_masks,
    cubic_sparsity,
    magnitude_masks,
    prunable,
    unit_layers,
)
from seofp_lab.compress.range import (
    GroupRange,
    Stored,
    apply_seofp_,
    check_representable,
    exponent_ranges,
    quantized_tensors,
    stored_tensors,
)
from seofp_lab.compress.report import compression_report, layer_table_csv
from seofp_lab.compress.seofp import (
    RepresentabilityError,
    SEOFPFormat,
    SEOFPParametrization,
    fit_window,
    round_to_format,
    seofp_round,
    seofp_ste,
)
from seofp_lab.compress.sharing import kmeans_1d, share_weights_, unique_values
from seofp_lab.compress.ste import attach_ste_, remove_ste_, update_window_

__all__ = [
    "GroupRange", "PruningSchedule", "RepresentabilityError", "SEOFPFormat", "SEOFPParametrization",
    "Stored", "apply_masks_", "apply_seofp_", "attach_ste_", "channel_masks", "check_representable",
    "code_length", "compression_report", "cubic_sparsity", "decode_seofp", "encode_seofp",
    "exponent_range", "exponent_ranges", "fit_window", "kmeans_1d", "layer_table_csv",
    "magnitude_masks", "pack_bits", "pack_mask", "pack_seofp", "packed_size_bytes", "prunable",
    "quantized_tensors", "remove_ste_", "round_to_format", "seofp_round", "seofp_ste",
    "share_weights_", "stored_tensors", "unique_values", "unit_layers", "unpack_bits",
    "unpack_mask", "unpack_seofp", "update_window_",
]
