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
file the engine would refuse. docs/MODEL_FILE.md describes each field, and its section "Limits"
the bounds that keep a hostile file from costing unbounded time or memory: :func:`decode_json`
refuses deep nesting and long integers before Python parses them, :func:`expected_tensors` gives
every tensor's shape from the header alone (the reader checks the table against it before decoding
a byte of payload) and :func:`parse` refuses a model of more than :data:`MAX_MODEL_VALUES` values.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from seofp_lab.errors import ModelFileError

GROUPS = ("global", "per_layer")
TARGETS = ("lps", "mask")
FCN_NORMS = ("batch", "none")
FEATURES = {"kind": ("lps",), "window": ("hann",), "norm": ("standardise",)}
MAX_DEPTH = 4  # JSON nesting: the header object, params/features, the FCN's modules list
MAX_INT_DIGITS = 18  # any integer field fits; a 5,000-digit one is refused before int() sees it
MAX_MODEL_VALUES = 1 << 26  # stored values (256 MiB as float32); the paper's BLSTM has 2.9 M
MAX_N_FFT = 16384
MAX_OVERLAP = 32  # hop >= n_fft / 32: at most 32 frames cover a sample
MAX_REPR = 80  # characters of a refused value shown in an error message
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


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


def short(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_REPR` characters: a refused value never floods errors."""
    text = repr(value)
    return text if len(text) <= MAX_REPR else f"{text[:MAX_REPR]}... ({len(text)} characters)"


def _no_long_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most "
                         f"{MAX_INT_DIGITS})")
    return int(text)


def _no_constant(text: str) -> float:
    raise ValueError(f"the non-standard constant {text} (JSON has no NaN or Infinity)")


def decode_json(raw: bytes, where: str) -> Any:
    """The header's JSON, refusing nesting deeper than :data:`MAX_DEPTH`, integers longer than
    :data:`MAX_INT_DIGITS` digits and NaN/Infinity, before Python's parser could recurse or
    convert without bound."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{where}: expected a UTF-8 JSON header but byte {exc.start} of it "
                             f"is not UTF-8") from None
    bare = np.frombuffer(_STRING.sub(b'""', raw), np.uint8)  # brackets inside strings do not count
    step = (np.isin(bare, (ord("{"), ord("["))).astype(np.int64)
            - np.isin(bare, (ord("}"), ord("]"))))
    depth = int(np.cumsum(step).max()) if step.size else 0
    if depth > MAX_DEPTH:
        raise ModelFileError(f"{where}: expected a JSON header nested at most {MAX_DEPTH} deep "
                             f"but got {depth} levels")
    try:
        return json.loads(text, parse_int=_no_long_int, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{where}: expected a JSON header but got {exc}") from None
    except ValueError as exc:  # from the hooks above
        raise ModelFileError(f"{where}: expected header numbers JSON can hold but got {exc}"
                             ) from None


def expected_tensors(spec: Header) -> dict[str, tuple[int, ...]]:
    """Every tensor the model of ``spec`` needs, with its shape, in the engine's order.

    The file must hold exactly these (the reader compares before decoding): a tensor the header
    does not account for would be skipped silently, or decoded for nothing.
    """
    out: dict[str, tuple[int, ...]] = {}
    if isinstance(spec, LSTMHeader):
        h, bins = spec.hidden, spec.n_fft // 2 + 1
        dirs = 2 if spec.model == "blstm" else 1
        out["feat_mean"], out["feat_std"] = (bins,), (bins,)
        width = bins
        for layer in range(spec.layers):
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                out[f"lstm.weight_ih_{sfx}"] = (4 * h, width)
                out[f"lstm.weight_hh_{sfx}"] = (4 * h, h)
                out[f"lstm.bias_ih_{sfx}"] = (4 * h,)
            width = h * dirs
        if spec.fc:
            out["fc.weight"], out["fc.bias"] = (spec.fc, width), (spec.fc,)
            width = spec.fc
        out["out.weight"], out["out.bias"] = (bins, width), (bins,)
        return out
    step = 3 if spec.norm == "batch" else 2  # Sequential: conv, [bn], act
    width = 1
    for i in range(spec.layers + 1):
        last = i == spec.layers
        out_ch, idx = (1 if last else spec.channels), i * step
        out[f"net.{idx}.weight"] = (out_ch, width, spec.kernel)
        out[f"net.{idx}.bias"] = (out_ch,)
        if spec.norm == "batch" and not last:
            for n in ("running_mean", "running_var", "weight", "bias"):
                out[f"net.{idx + 1}.{n}"] = (out_ch,)
        width = out_ch
    return out


def model_values(spec: Header) -> int:
    """The number of values the model of ``spec`` stores (all its tensors)."""
    return sum(math.prod(shape) for shape in expected_tensors(spec).values())


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
                              f"got {short(got)}")

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
        spec: Header = _parse_lstm(header, model, where)
    elif model == "fcn":
        spec = _parse_fcn(header, where)
    else:
        raise ModelFileError(f"{where}: header field 'model': expected one of 'blstm', 'lstm', "
                             f"'fcn' but got {short(model)}")
    values = model_values(spec)
    if values > MAX_MODEL_VALUES:
        raise ModelFileError(f"{where}: header field 'params' describes a model of {values:,} "
                             f"values; expected at most {MAX_MODEL_VALUES:,} (docs/MODEL_FILE.md"
                             f"#limits)")
    return spec


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
    n_fft = p.integer("n_fft", 16, MAX_N_FFT)
    return LSTMHeader(
        model=model, hidden=p.integer("hidden", 1, 1 << 14), layers=p.integer("layers", 1, 64),
        fc=p.integer("fc", 0, 1 << 16), target=target, mask_floor=floor, n_fft=n_fft,
        hop=p.integer("hop", -(-n_fft // MAX_OVERLAP), n_fft),
        lps_eps=f.number("eps", 1e-30, 1.0, "[1e-30, 1)"),
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
