"""Export a trained model (``seofp_lab.models``) to one ``.seofp`` file.

Every floating-point tensor of the state_dict is stored. A tensor whose values are all SEOFP
(±2^e normal, or 0) is stored as sign/exponent codes, in one exponent window for the whole model
(``group="global"``, the paper) or one per tensor (``"per_layer"``); any other tensor (feature
statistics, a kept-fp32 bias, a baseline's weights) is stored as fp32. Nothing is folded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from seofp_lab.compress import codec
from seofp_lab.errors import ModelFileError
from seofp_lab.fsutil import write_bytes_atomic
from seofp_lab.infer import modelfile
from seofp_lab.infer.modelfile import Tensor

Group = Literal["global", "per_layer"]


def model_header(model: nn.Module, group: Group = "global") -> dict[str, Any]:
    """Every setting that changes the model's output, read from the module itself.

    The layout is ``infer/header.py``'s; a setting the engine does not implement (two different
    LeakyReLU slopes, say) raises ModelFileError here rather than being left out.
    """
    from seofp_lab.data import features  # noqa: PLC0415
    from seofp_lab.models import FCNEnhancer, LSTMEnhancer  # noqa: PLC0415

    if isinstance(model, LSTMEnhancer):
        lstm = model.lstm
        floor = float(model.mask_floor) if model.target == "mask" else 0.0  # lps: no gain
        return {"model": "blstm" if lstm.bidirectional else "lstm", "group": group,
                "params": {"hidden": lstm.hidden_size, "layers": lstm.num_layers,
                           "fc": model.fc.out_features if model.fc is not None else 0,
                           "target": model.target, "mask_floor": floor,
                           "n_fft": model.n_fft, "hop": model.hop},
                "features": {"kind": "lps", "window": "hann", "eps": float(features.LPS_EPS),
                             "norm": "standardise"}}
    if isinstance(model, FCNEnhancer):
        convs = [m for m in model.net if isinstance(m, nn.Conv1d)]
        norms = [m for m in model.net if isinstance(m, nn.BatchNorm1d)]
        slopes = {float(m.negative_slope) for m in model.net if isinstance(m, nn.LeakyReLU)}
        eps = {float(m.eps) for m in norms}
        k = convs[0].kernel_size[0]
        odd = [c for c in convs if (c.kernel_size[0], c.padding[0], c.stride[0], c.dilation[0],
                                    c.groups) != (k, k // 2, 1, 1, 1)]
        if odd:
            raise ModelFileError(f"Cannot export an FCN with a convolution other than 'same' "
                                 f"padding, stride 1, dilation 1, one group and kernel {k}: "
                                 f"got {odd[0]}")
        if len(slopes) > 1 or len(eps) > 1:
            raise ModelFileError(f"Cannot export an FCN whose layers differ in LeakyReLU slope "
                                 f"{sorted(slopes)} or BatchNorm eps {sorted(eps)}: the file "
                                 f"holds one of each")
        return {"model": "fcn", "group": group,
                "params": {"layers": len(convs) - 1, "channels": convs[0].out_channels,
                           "kernel": k,
                           "norm": "batch" if norms else "none"},
                "slope": slopes.pop() if slopes else 0.0,
                "eps": eps.pop() if eps else 1e-5,
                "modules": [type(m).__name__ for m in model.net]}
    raise ModelFileError(f"Expected an LSTMEnhancer or FCNEnhancer but got {type(model).__name__}")


def _is_seofp(v: np.ndarray) -> bool:
    u = v.reshape(-1).view(np.uint32)
    nz = (u & 0x7FFF_FFFF) != 0
    exp = (u >> 23) & 0xFF
    return bool(not ((u[nz] & 0x007F_FFFF) != 0).any() and not (exp[nz] == 0).any())


def model_tensors(model: nn.Module, group: Group = "global") -> dict[str, Tensor]:
    """The state_dict as file tensors, SEOFP ones as codes in the chosen exponent window(s)."""
    arrays: dict[str, np.ndarray] = {}
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            continue  # e.g. BatchNorm's num_batches_tracked: not a stored value
        v = t.detach().cpu().float().numpy().astype(np.float32)
        if not np.isfinite(v).all():
            raise ModelFileError(f"Expected finite values in {name} but got NaN or inf")
        arrays[name] = v
    coded = {n for n, v in arrays.items() if _is_seofp(v)}
    ranges = {n: codec.exponent_range(arrays[n]) for n in coded}
    real = [r for r in ranges.values() if r is not None]
    if group == "global" and real:
        window = (min(r[0] for r in real), max(r[1] for r in real))
        ranges = dict.fromkeys(coded, window)
    out: dict[str, Tensor] = {}
    for name, v in arrays.items():
        if name not in coded:
            out[name] = Tensor(v, "fp32")
            continue
        e_min, e_max = ranges[name] or (0, 0)  # an all-zero tensor: any window holds it
        out[name] = Tensor(v, "codes", e_min, codec.code_length(e_min, e_max))
    return out


def serialize_model(model: nn.Module, group: Group = "global") -> bytes:
    """The ``.seofp`` bytes of a model; their length is the reported ``size_bytes``."""
    return modelfile.serialize(model_header(model, group), model_tensors(model, group))


def export_model(model: nn.Module, path: str | Path, group: Group = "global") -> Path:
    """Write ``model`` as one ``.seofp`` file (atomically) and return its path."""
    path = Path(path)
    data = serialize_model(model, group)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)  # never leave half a .seofp file
    return path


def export_run(run_id: str, path: str | Path | None = None, log: bool = True) -> Path:
    """Export a tracked run's checkpoint; default path ``<workspace>/exports/<run_id>.seofp``.

    The exponent window group is the run's ``compression.group`` ("global" for a baseline). With
    ``log``, the file becomes the run's ``model/`` artifact and its byte length the run's
    ``size_bytes``; a compressed run also gets ``compression_pct`` against 4 bytes per stored
    value (an fp32 file is its values plus a header, so the figure would only be that header).
    """
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.models import stored_values  # noqa: PLC0415
    from seofp_lab.train.checkpoint import load_checkpoint  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    ckpt = tracking.download_artifact(run_id, tracking.CHECKPOINT_ARTIFACT)
    model, cfg, _ = load_checkpoint(ckpt)
    group: Group = cfg.compression.group
    out = Path(path) if path is not None else workspace_path("exports", f"{run_id}.seofp")
    export_model(model, out, group)
    if log:
        size = out.stat().st_size
        with tracking.resume_run(run_id):
            tracking.log_artifact(out, "model")
            metrics = {"size_bytes": float(size)}
            if cfg.compression.compressed:
                metrics["compression_pct"] = 100.0 * (1.0 - size / (4.0 * stored_values(model)))
            tracking.log_metrics(metrics)
    return out
