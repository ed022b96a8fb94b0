"""Typed experiment config: pydantic models, YAML loading with section references, dotted overrides.

An experiment file (``configs/experiment/*.yaml``) has one key per section. A section given as a
string names a file of that section's folder
(``corpus: embedded`` -> ``configs/corpus/embedded.yaml``);
a mapping may start from such a file with ``base: NAME`` and change some of its keys.
Command-line overrides (``train.max_epochs=3``) are applied last; their values are parsed as YAML.

Everything is validated once, at load time: a wrong key, type or value raises :class:`ConfigError`
naming the file, the dotted key and what is allowed. Nothing below ``train()`` sees a config.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seofp_lab.config_yaml import MAX_BYTES as MAX_YAML_BYTES
from seofp_lab.config_yaml import YAMLFileError, load_yaml_bytes, load_yaml_text


def _configs_dir() -> Path:
    """``configs/`` of the checkout, else the copy a wheel installs (pyproject data-files)."""
    checkout = Path(__file__).resolve().parent.parent / "configs"
    installed = Path(sys.prefix) / "share" / "seofp-lab" / "configs"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


CONFIGS_DIR = _configs_dir()
DEMO_BASELINE = CONFIGS_DIR / "experiment" / "demo_baseline.yaml"  # the demo's default experiment
SECTIONS = ("corpus", "model", "train", "compression", "evaluation", "tracking")


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says where and what is allowed."""

    MAX_MESSAGE = 4000  # a message quoting a huge value is cut, never megabytes long

    def __str__(self) -> str:
        text = super().__str__()
        if len(text) <= self.MAX_MESSAGE:
            return text
        return f"{text[:self.MAX_MESSAGE]} ... (message cut: {len(text):,} characters in all)"


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen after validation,
    and no float may be NaN or infinite (``.inf`` passed bounds like ``gt=0`` and crashed later)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------------------------------- corpus
CorpusKind = Literal[
    "embedded",
    "lab",
    "voicebank_demand",
    "timit",
    "dns",
    "librispeech",
    "wham_noise",
    "musan",
    "demand",
    "folder",
]


class CorpusConfig(Strict):
    """Where speech and noise come from; how train/validation/test mixtures are made
    (docs/data.md)."""

    name: str = "embedded"
    kind: CorpusKind = "embedded"
    root: Path | None = None  # required for user corpora; embedded/lab resolve their own
    noise_root: Path | None = None  # a noise pool for speech-pool corpora (e.g. timit + demand)
    noise_kind: CorpusKind | None = None
    variant: str | None = None  # e.g. "56spk" for voicebank_demand
    channel: int | None = None  # take one channel of multichannel audio instead of the mean
    exclude: list[str] | None = (
        None  # noise environments/types never used (e.g. DEMAND's test ones)
    )
    train_snrs: list[float] = Field(default_factory=lambda: [-5.0, 0.0, 5.0, 10.0, 15.0])
    test_snrs: list[float] = Field(default_factory=lambda: [-2.5, 2.5, 7.5, 12.5, 17.5])
    train_noises: list[str] | None = None  # None: the corpus's own training noise types
    test_noises: list[str] | None = None  # None: the corpus's own held-out noise types
    test_utterances: int | None = None  # None: every test utterance
    test_mixtures_per_utterance: int = Field(1, ge=1)
    valid_mixtures: int = Field(48, ge=1)
    segment_seconds: float = Field(2.0, gt=0.0, le=60.0)  # training crop length
    mixtures_per_epoch: int = Field(512, ge=1)
    clean_floor_dbfs: float | None = None  # optional -60..-70 dBFS floor added to clean references
    seed: int = 0

    @field_validator("train_snrs", "test_snrs")
    @classmethod
    def _snrs_nonempty(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("Expected at least one SNR in dB")
        if any(not -30.0 <= s <= 60.0 for s in v):
            raise ValueError(f"Expected SNRs within [-30, 60] dB but got {v}")
        return v

    @model_validator(mode="after")
    def _root_for_user_corpora(self) -> CorpusConfig:
        if self.kind not in ("embedded", "lab") and self.root is None:
            raise ValueError(f"Expected 'root' (a directory) for corpus kind {self.kind!r}")
        return self


# ----------------------------------------------------------------------------------------- model
class STFTConfig(Strict):
    n_fft: int = Field(512, ge=16)
    hop: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _hop_fits(self) -> STFTConfig:
        if self.hop > self.n_fft:
            raise ValueError(f"Expected hop <= n_fft but got hop={self.hop}, n_fft={self.n_fft}")
        return self


class LSTMModelConfig(Strict):
    """Spectral mapping with (B)LSTM layers: LPS in, LPS (paper) or a bounded mask out."""

    name: Literal["blstm", "lstm"] = "blstm"  # "lstm": unidirectional, causal, streamable
    hidden: int = Field(257, ge=1)
    layers: int = Field(2, ge=1)
    fc: int = Field(300, ge=0)  # 0: no hidden FC layer
    target: Literal["lps", "mask"] = "lps"
    mask_floor: float = Field(0.0, ge=0.0, lt=1.0)  # "mask": lowest gain, bounds the attenuation
    stft: STFTConfig = STFTConfig()


class FCNModelConfig(Strict):
    """Waveform mapping with 1-D convolutions (Fu et al.): utterance in, utterance out."""

    name: Literal["fcn"] = "fcn"
    layers: int = Field(10, ge=1)
    channels: int = Field(30, ge=1)
    kernel: int = Field(55, ge=1)
    norm: Literal["batch", "none"] = "batch"


ModelConfig = LSTMModelConfig | FCNModelConfig


# ----------------------------------------------------------------------------------------- train
class TrainConfig(Strict):
    """The training budget is ``max_epochs`` (and optionally ``max_steps``): it reproduces on any
    machine. ``max_minutes`` is only a safety cap; when it cuts a run, the run says so (tag
    ``seofp.budget_cut``, a printed warning) and its numbers are not the budgeted ones."""

    max_epochs: int = Field(20, ge=1)
    max_steps: int | None = Field(None, ge=1)  # optimizer steps; whichever of the two ends first
    # safety cap only, checked after each epoch; at most 30 days
    max_minutes: float | None = Field(None, gt=0.0, le=43200.0)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0.0, le=10.0)  # Adam; beyond 10 nothing trains
    weight_decay: float = Field(0.0, ge=0.0)
    # "mse": the model's own domain (LPS for target lps, compressed magnitude for target mask,
    # waveform for the FCN); "si_sdr": negative SI-SDR of the enhanced waveform (end to end)
    loss: Literal["mse", "si_sdr"] = "mse"
    gradient_clip: float | None = Field(5.0, gt=0.0)
    num_workers: int = Field(0, ge=0)
    accelerator: Literal["auto", "cpu", "gpu", "mps"] = "cpu"
    devices: int | Literal["auto"] = 1  # >= 1
    # Lightning strategy name, e.g. "ddp"; checked against Lightning's list (and the accelerator
    # against this machine) by train() before any run is created
    strategy: str = Field("auto", min_length=1)
    threads: int | None = Field(None, ge=1)  # torch intra-op threads; None: torch's default
    seed: int = 0

    @field_validator("devices")
    @classmethod
    def _some_devices(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("Expected a number of devices >= 1 or 'auto'")
        return v


# ----------------------------------------------------------------------------------- compression
class PruningConfig(Strict):
    kind: Literal["magnitude", "channel"] = "magnitude"
    scope: Literal["global", "per_layer"] = "per_layer"  # one magnitude threshold or one per tensor
    sparsity: float = Field(0.5, ge=0.0, lt=1.0)
    schedule: Literal["one_shot", "gradual"] = "gradual"
    start_epoch: int = Field(0, ge=0)
    end_epoch: int | None = Field(None, ge=0)  # None: the last epoch


class WeightSharingConfig(Strict):
    clusters: int = Field(16, ge=2, le=65536)  # k-means weight sharing (arXiv 1906.01078)


class CompressionConfig(Strict):
    format: str | None = None  # "s1e5"; None = fp32 baseline
    mode: Literal["paper", "ste"] = "paper"
    group: Literal["global", "per_layer"] = "global"
    fraction_bits: int = Field(0, ge=0, le=23)  # kept mantissa bits (0 = SEOFP)
    quantize: Literal["weights", "all"] = "weights"  # "all": biases and norm parameters too
    pruning: PruningConfig | None = None
    weight_sharing: WeightSharingConfig | None = None
    init_from: str | None = None  # MLflow run id (or checkpoint path) of a baseline to fine-tune

    @field_validator("format")
    @classmethod
    def _format_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        ok = v.startswith("s1e") and v[3:].isdigit() and 1 <= int(v[3:]) <= 8
        if not ok:
            raise ValueError(f"Expected a format named s1e1 .. s1e8 (or null) but got {v!r}")
        return v

    @property
    def compressed(self) -> bool:
        return bool(self.format or self.pruning or self.weight_sharing)

    @property
    def role(self) -> str:
        """The ``seofp.role`` tag: baseline | control | seofp | pruned | seofp+pruned.

        A ``control`` is fine-tuned from a baseline (``init_from``) with no compression: the
        equal-budget fp32 twin of a compressed variant (docs/controls.md)."""
        if not self.compressed:
            return "control" if self.init_from else "baseline"
        if self.format and self.pruning:
            return "seofp+pruned"
        if self.format:
            return "seofp"
        return "pruned"  # pruning or weight sharing without a format


# ------------------------------------------------------------------------------------ evaluation
MetricName = Literal[
    "pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "csig", "cbak", "covl",
    "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
]


class EvaluationConfig(Strict):
    # DNSMOS is opt-in: ~40x the cost of PESQ per utterance (docs/metrics.md)
    metrics: list[MetricName] = Field(
        default_factory=lambda: [
            "pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "csig", "cbak", "covl",
        ]
    )
    workers: int | None = Field(None, ge=1)  # None: one per CPU core
    engine: Literal["torch", "c"] = "torch"
    kernel: Literal["intadd", "decode", "fp32"] = "intadd"
    max_utterances: int | None = Field(None, ge=1)
    audio_examples: int = Field(3, ge=0)


# -------------------------------------------------------------------------------------- tracking
class TrackingConfig(Strict):
    """Where a run is filed; the store itself is $MLFLOW_TRACKING_URI or the workspace's SQLite."""

    experiment: str = "seofp-lab"
    run_name: str | None = None
    baseline_run: str | None = None  # the ``seofp.baseline_run`` tag of a compressed run
    control_run: str | None = None  # the ``seofp.control_run`` tag: its equal-budget fp32 control
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("experiment")
    @classmethod
    def _experiment_name(cls, v: str) -> str:
        if not v.strip() or len(v) > 200:
            raise ValueError("Expected an MLflow experiment name of 1 to 200 characters, not "
                             "only spaces")
        return v


# ------------------------------------------------------------------------------------ experiment
class ExperimentConfig(Strict):
    name: str = "experiment"
    corpus: CorpusConfig = CorpusConfig()
    model: ModelConfig = Field(default_factory=LSTMModelConfig, discriminator="name")
    train: TrainConfig = TrainConfig()
    compression: CompressionConfig = CompressionConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()

    def flat_params(self) -> dict[str, str]:
        """Dotted key -> value string, for MLflow params."""
        out: dict[str, str] = {}

        def walk(prefix: str, v: Any) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(f"{prefix}.{k}" if prefix else k, x)
            else:
                out[prefix] = json.dumps(v) if isinstance(v, (list, bool)) or v is None else str(v)

        walk("", self.model_dump(mode="json"))
        return out

    def digest(self) -> str:
        """A short stable hash of the whole config."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# --------------------------------------------------------------------------------------- loading
M = TypeVar("M", bound=BaseModel)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Expected a config file at {path} but it does not exist")
    try:  # bounded: size, encoding, aliases, depth (config_yaml.py)
        with path.open("rb") as f:
            data = load_yaml_bytes(f.read(MAX_YAML_BYTES + 1), str(path)) or {}
    except OSError as exc:
        raise ConfigError(f"Expected a readable config file at {path} but got "
                          f"{exc.strerror or exc}") from None
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys to values but got {type(data).__name__}"
        )
    return data


def _section_file(section: str, name: str, configs_dir: Path, origin: Path) -> Path:
    path = configs_dir / section / f"{name}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in (configs_dir / section).glob("*.yaml"))
        raise ConfigError(
            f"{origin}: {section}: {name!r} names no file {path}; expected one of {have}"
        )
    return path


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _format_errors(exc: ValidationError, model: type[BaseModel], where: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) > 1 and loc[0] == "model" and loc[1] in ("blstm", "lstm", "fcn"):
            loc.pop(1)  # the discriminated union's tag is not a key the user wrote
        key = ".".join(loc) or "(top level)"
        source = where.get(key) or where.get(loc[0] if loc else "", where.get("", "?"))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif "input" in err and err["type"] not in ("missing",):
            msg = f"{msg} (got {err['input']!r})"
            if err["type"] in _RANGE_ERRORS and (bounds := _range_text(model, loc)):
                msg += f"; accepted: {bounds}"
        lines.append(f"{source}: {key}: {msg}")
    return "Invalid config:\n  " + "\n  ".join(lines)


_RANGE_ERRORS = ("finite_number", "greater_than", "greater_than_equal", "less_than",
                 "less_than_equal", "float_parsing", "int_parsing")


def _range_text(model: type[BaseModel], loc: list[str]) -> str:
    """``"> 0 and <= 43200"`` for a bounded field, ``""`` for any other."""
    *parents, name = loc
    cur: Any = model
    for part in parents:
        fields = getattr(cur, "model_fields", None)
        if fields is None or part not in fields:
            return ""
        ann = fields[part].annotation
        cur = next((a for a in getattr(ann, "__args__", (ann,))
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
    info = getattr(cur, "model_fields", {}).get(name)
    if info is None:
        return ""
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    parts = [f"{signs[k]} {getattr(m, k):g}" for m in info.metadata for k in signs
             if getattr(m, k, None) is not None]
    return " and ".join(parts)


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    cur: Any = model
    for part in loc:
        fields = getattr(cur, "model_fields", None)
        if fields is None or part not in fields:
            return []
        ann = fields[part].annotation
        cur = next(
            (
                a
                for a in getattr(ann, "__args__", (ann,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if cur is None:
            return []
    return sorted(cur.model_fields)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.max_epochs=3"`` -> (["train", "max_epochs"], 3); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(
            f"Expected an override KEY=VALUE (e.g. train.max_epochs=3) but got {text!r}"
        )
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"Expected a dotted key such as train.max_epochs but got {key!r}")
    try:
        value = load_yaml_text(raw, f"override {text[:80]!r}") if raw.strip() else None
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None
    return parts, value


def _validated(model: type[M], data: Any, where: dict[str, str]) -> M:
    """``model`` from ``data``; a ConfigError naming each bad field and where it was set."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, model, where)) from None


def _set_dotted(data: dict[str, Any], keys: list[str], value: Any) -> None:
    """``data[k0][k1]... = value``, making (or replacing non-mapping) levels on the way."""
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        cur[k] = nxt = nxt if isinstance(nxt, dict) else {}
        cur = nxt
    cur[keys[-1]] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    configs_dir: Path = CONFIGS_DIR,
) -> ExperimentConfig:
    """Load an experiment YAML (defaults when ``path`` is None), apply overrides, validate."""
    where: dict[str, str] = {}
    data: dict[str, Any] = {}
    origin = Path(path) if path is not None else Path("(defaults)")
    if path is not None:
        raw = _read_yaml(origin)
        where[""] = str(origin)
        for key, value in raw.items():
            where[key] = str(origin)
            if key in SECTIONS and isinstance(value, str):
                src = _section_file(key, value, configs_dir, origin)
                data[key] = _read_yaml(src)
                where[key] = str(src)
            elif key in SECTIONS and isinstance(value, dict) and "base" in value:
                src = _section_file(key, str(value["base"]), configs_dir, origin)
                rest = {k: v for k, v in value.items() if k != "base"}
                data[key] = _deep_merge(_read_yaml(src), rest)
                where[key] = f"{origin} (base {src})"
            else:
                data[key] = value
    for text in overrides or []:
        parts, value = parse_override(text)
        if parts[0] in SECTIONS and len(parts) == 1 and isinstance(value, str):
            data[parts[0]] = _read_yaml(_section_file(parts[0], value, configs_dir, origin))
        else:
            _set_dotted(data, parts, value)
        where[".".join(parts)] = f"command-line override {text!r}"
    return _validated(ExperimentConfig, data, where)


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Load one YAML file into one strict model (e.g. a study definition), with the same errors."""
    p = Path(path)
    return _validated(model, _read_yaml(p), {"": str(p)})


def load_corpus_config(
    spec: str | Path, overrides: list[str] | None = None, configs_dir: Path = CONFIGS_DIR
) -> CorpusConfig:
    """A corpus config from a corpus YAML, a name under ``configs/corpus/`` or an experiment YAML.

    Overrides name corpus keys with or without ``corpus.`` (``corpus.root=/data/vbd``, ``seed=1``).
    An experiment YAML gives its ``corpus`` section (and takes any experiment override).
    """
    path = Path(spec)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:
        path = _section_file("corpus", str(spec), configs_dir, Path("--corpus"))
    data = _read_yaml(path)
    if any(k in SECTIONS for k in data):  # an experiment: bare keys are its corpus's keys
        scoped = [o if o.split("=", 1)[0].split(".")[0] in SECTIONS else f"corpus.{o}"
                  for o in overrides or []]
        return load_config(path, scoped, configs_dir).corpus
    where = {"": str(path)}
    for text in overrides or []:
        keys, value = parse_override(text)
        keys = keys[1:] if keys[0] == "corpus" and len(keys) > 1 else keys
        _set_dotted(data, keys, value)
        where[".".join(keys)] = f"command-line override {text!r}"
    return _validated(CorpusConfig, data, where)
