"""The ``.seofp`` header: every model setting that changes the output, checked field by field.

The header is a JSON object. Format version 2 holds, for the LSTM family (``blstm``, ``lstm``)::

    {"model": "blstm", "group": "global",
     "params": {"hidden": 257, "layers": 2, "fc": 300, "target": "lps", "mask_floor": 0.0,
                "n_fft": 512, "hop": 256},
     "features": {"kind": "lps", "window": "hann", "eps": 1e-08, "norm": "standardise"}}

and for the FCN::

    {"model": "fcn", "group": "global",
     "params": {"layers": 10, "channels": 30, "kernel": 55, "norm": "batch"},
     "slope": 0.2, "eps": 1e-05, "modules": ["Conv1d", "BatchNorm1d", "LeakyReLU", ..., "Tanh"]}

:func:`parse` refuses, naming the file, the field and what is supported: a missing field, a field
this version does not know (a setting the engine would otherwise silently ignore) and a value the
engine does not implement. The exporter runs the same check before writing, so it never writes a
file the engine would refuse. docs/MODEL_FILE.md describes each field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from seofp_lab.errors import ModelFileError

GROUPS = ("global", "per_layer")
TARGETS = ("lps", "mask")
FCN_NORMS = ("batch", "none")
FEATURES = {"kind": ("lps",), "window": ("hann",), "norm": ("standardise",)}


@dataclass(frozen=True)
class LSTMHeader:
    """A (B)LSTM spectral mapping: LPS features in, LPS or a mask in [mask_floor, 1] out."""

    model: Literal["blstm", "lstm"]
    hidden: int
    layers: int
    fc: int  # 0: no hidden FC layer
    target: Literal["lps", "mask"]
    mask_floor: float  # gain = mask_floor + (1 - mask_floor) * sigmoid(y); 0.0 for "lps"
    n_fft: int
    hop: int
    lps_eps: float  # LPS = log(|X|^2 + lps_eps)
    group: str


@dataclass(frozen=True)
class FCNHeader:
    """The FCN waveform mapping: conv, [batch norm], leaky ReLU per layer, then conv and tanh."""

    layers: int
    channels: int
    kernel: int
    norm: Literal["batch", "none"]
    slope: float  # every LeakyReLU's negative slope
    eps: float  # every BatchNorm1d's eps
    group: str
    model: Literal["fcn"] = "fcn"


Header = LSTMHeader | FCNHeader


def fcn_modules(layers: int, norm: str) -> list[str]:
    """The FCN's ``net`` as module class names, the order the engine computes."""
    block = ["Conv1d", "BatchNorm1d", "LeakyReLU"] if norm == "batch" else ["Conv1d", "LeakyReLU"]
    return block * layers + ["Conv1d", "Tanh"]


class _Object:
    """One JSON object of the header; every read names the field (``params.hop``)."""

    def __init__(self, value: Any, path: str, where: str, fields: tuple[str, ...]) -> None:
        self.path, self.where = path, where
        if not isinstance(value, dict):
            raise self.error(path or "(header)", "a JSON object", value)
        unknown = sorted(set(value) - set(fields))
        if unknown:
            name = self._name(unknown[0])
            raise ModelFileError(
                f"{where}: header field {name!r} is not part of this model's header (format "
                f"version 2 supports {', '.join(self._name(f) for f in fields)}); the engine "
                f"refuses a setting it would otherwise ignore")
        missing = [f for f in fields if f not in value]
        if missing:
            raise ModelFileError(f"{where}: header field {self._name(missing[0])!r} is missing "
                                 f"(format version 2 requires it)")
        self.value = value

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, field: str, expected: str, got: Any) -> ModelFileError:
        return ModelFileError(f"{self.where}: header field {field!r}: expected {expected} but "
                              f"got {got!r}")

    def integer(self, key: str, lo: int, hi: int) -> int:
        v = self.value[key]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.error(self._name(key), f"an integer in [{lo}, {hi}]", v)
        return v

    def number(self, key: str, lo: float, hi: float, what: str) -> float:
        v = self.value[key]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or not lo <= v < hi:
            raise self.error(self._name(key), f"a number in {what}", v)
        return float(v)

    def choice(self, key: str, options: tuple[str, ...]) -> Any:
        v = self.value[key]
        if v not in options:
            raise self.error(self._name(key), "one of " + ", ".join(map(repr, options)), v)
        return v


def parse(header: Any, where: str = "<header>") -> Header:
    """The typed header of a version-2 file; raises ModelFileError on anything it cannot honour."""
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: expected a JSON object header but got "
                             f"{type(header).__name__}")
    model = header.get("model")
    if model in ("blstm", "lstm"):
        return _parse_lstm(header, model, where)
    if model == "fcn":
        return _parse_fcn(header, where)
    raise ModelFileError(f"{where}: header field 'model': expected one of 'blstm', 'lstm', 'fcn' "
                         f"but got {model!r}")


def _parse_lstm(header: dict[str, Any], model: Literal["blstm", "lstm"], where: str) -> LSTMHeader:
    top = _Object(header, "", where, ("model", "group", "params", "features"))
    p = _Object(header["params"], "params", where,
                ("hidden", "layers", "fc", "target", "mask_floor", "n_fft", "hop"))
    f = _Object(header["features"], "features", where, ("kind", "window", "eps", "norm"))
    for key, options in FEATURES.items():
        f.choice(key, options)
    target = p.choice("target", TARGETS)
    floor = p.number("mask_floor", 0.0, 1.0, "[0, 1)")
    if target == "lps" and floor != 0.0:
        raise p.error("params.mask_floor", "0.0 for target 'lps' (the floor bounds a mask)",
                      floor)
    n_fft = p.integer("n_fft", 16, 1 << 16)
    return LSTMHeader(
        model=model, hidden=p.integer("hidden", 1, 1 << 14), layers=p.integer("layers", 1, 64),
        fc=p.integer("fc", 0, 1 << 16), target=target, mask_floor=floor, n_fft=n_fft,
        hop=p.integer("hop", 1, n_fft), lps_eps=f.number("eps", 1e-30, 1.0, "[1e-30, 1)"),
        group=top.choice("group", GROUPS))


def _parse_fcn(header: dict[str, Any], where: str) -> FCNHeader:
    top = _Object(header, "", where, ("model", "group", "params", "slope", "eps", "modules"))
    p = _Object(header["params"], "params", where, ("layers", "channels", "kernel", "norm"))
    layers, norm = p.integer("layers", 1, 256), p.choice("norm", FCN_NORMS)
    kernel = p.integer("kernel", 1, 4095)
    if kernel % 2 == 0:
        raise p.error("params.kernel", "an odd kernel ('same' padding)", kernel)
    modules = fcn_modules(layers, norm)
    if header["modules"] != modules:
        raise top.error("modules", f"{modules} (params.layers={layers}, params.norm={norm!r})",
                        header["modules"])
    return FCNHeader(layers=layers, channels=p.integer("channels", 1, 4096), kernel=kernel,
                     norm=norm, slope=top.number("slope", -math.inf, math.inf, "(-inf, inf)"),
                     eps=top.number("eps", 1e-30, 1.0, "[1e-30, 1)"),
                     group=top.choice("group", GROUPS))
