"""Seeded fuzz cases: valid seeds (model files, experiment configs, audio files) and mutations.

Every case is a function of ``(seed, target, index)`` alone, so a case found bad can be made again
with ``seofp fuzz --seed S --cases N`` (or kept with ``--keep``). Model seeds are built without
torch from the header's own tensor list (``infer/header.expected_tensors``) with random SEOFP
values; mutations either damage bytes (flips, truncation, CRC recomputed or not) or rewrite one
structure with an absurd value and a valid CRC: a header field, a tensor's values or shape or
storage, an extra tensor. Config seeds are ``configs/experiment/*.yaml``; audio seeds are WAV
(PCM 16, float 32, stereo, 8 and 44.1 kHz) and FLAC files made here.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from seofp_lab.config import CONFIGS_DIR
from seofp_lab.infer import header as header_mod
from seofp_lab.infer import modelfile
from seofp_lab.infer.modelfile import Tensor

KERNELS = ("intadd", "decode", "fp32")
LSTM = {"model": "lstm", "group": "global",
        "params": {"hidden": 8, "layers": 2, "fc": 0, "target": "mask", "mask_floor": 0.1,
                   "n_fft": 64, "hop": 32},
        "features": {"kind": "lps", "window": "hann", "eps": 1e-8, "norm": "standardise"}}
BLSTM = {**LSTM, "model": "blstm",
         "params": {**LSTM["params"], "fc": 6, "target": "lps", "mask_floor": 0.0}}
FCN = {"model": "fcn", "group": "per_layer",
       "params": {"layers": 2, "channels": 4, "kernel": 5, "norm": "batch"},
       "slope": 0.2, "eps": 1e-5, "modules": header_mod.fcn_modules(2, "batch")}
INTERESTING: list[Any] = [0, -1, 1, 2, 15, 16, 17, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1,
                          2**31, 2**32, 2**63, -(2**63), 10**18, 1e308, -1e308, 1e-320, 0.5,
                          -0.0, "", "x", "lps", "mask", None, True, False, [], {}, [1, 2], {"a": 1}]
RAW_NUMBERS = ["9" * 5000, "-" + "9" * 30, "1e999", "NaN", "Infinity", "-Infinity", "1" * 19]


def seed_model(spec: dict[str, Any], rng: np.random.Generator) -> bytes:
    """A valid file for ``spec``: SEOFP weights (codes or sparse), LPS-like statistics."""
    typed = header_mod.parse(spec, "seed")
    tensors: dict[str, Tensor] = {}
    for name, shape in header_mod.expected_tensors(typed).items():
        n = int(np.prod(shape))
        if name == "feat_mean":
            v = rng.standard_normal(n) - 6.0
        elif name in ("feat_std", "net.1.running_var", "net.4.running_var"):
            v = rng.random(n) + 1.0
        elif len(shape) >= 2:
            e = rng.integers(-6, 0, n)
            v = np.ldexp(rng.choice([-1.0, 1.0], n), e) * (rng.random(n) > 0.3)
        else:
            v = rng.standard_normal(n) * 0.1
        v = v.astype(np.float32).reshape(shape)
        if len(shape) >= 2:
            tensors[name] = Tensor(v, "codes", -6, 3)
        else:
            tensors[name] = Tensor(v, "fp32")
    return modelfile.serialize(spec, tensors)


def _crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, the bytes after it up to the CRC) of a valid file."""
    (head_len,) = struct.unpack_from("<I", data, 8)
    return json.loads(data[12:12 + head_len]), data[12 + head_len:-4]


def _with_header(head: bytes, rest: bytes) -> bytes:
    return _crc(modelfile.MAGIC + struct.pack("<HI", 2, len(head)) + head + rest)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [prefix] + [p for k, v in obj.items() for p in _paths(v, (*prefix, k))]
    if isinstance(obj, list):
        return [prefix] + [p for i, v in enumerate(obj) for p in _paths(v, (*prefix, i))]
    return [prefix]


def _set_path(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    obj[path[0]] = _set_path(obj[path[0]], path[1:], value)
    return obj


def mutate_model(data: bytes, rng: np.random.Generator) -> bytes:
    """One of the mutations the module describes, chosen by ``rng``."""
    kind = int(rng.integers(8))
    if len(data) < 16:  # already cut to almost nothing: add junk instead
        return data + bytes(int(rng.integers(1, 64)))
    if kind == 0:  # byte flips, CRC recomputed half of the time
        buf = bytearray(data[:-4])
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        return _crc(bytes(buf)) if rng.random() < 0.5 else bytes(buf) + data[-4:]
    if kind == 1:  # truncation (a valid CRC of what is left, or none)
        cut = data[:int(rng.integers(len(data)))]
        return _crc(cut[:-4]) if rng.random() < 0.5 and len(cut) > 4 else cut
    head, rest = _split(data)
    if kind == 2:  # one header value replaced
        paths = _paths(head)
        path = paths[int(rng.integers(len(paths)))]
        value = INTERESTING[int(rng.integers(len(INTERESTING)))]
        return _with_header(json.dumps(_set_path(head, path, value)).encode(), rest)
    if kind == 3:  # raw JSON text: long numbers, constants, nesting, junk
        text = json.dumps(head)
        choice = int(rng.integers(4))
        if choice == 0:
            raw = RAW_NUMBERS[int(rng.integers(len(RAW_NUMBERS)))]
            text = text.replace('"hidden": 8', f'"hidden": {raw}').replace(
                '"layers": 2', f'"layers": {raw}')
        elif choice == 1:
            depth = int(rng.integers(5, 60000))
            text = "[" * depth + "]" * (depth if rng.random() < 0.5 else 0)
        elif choice == 2:
            text = text[:int(rng.integers(len(text)))]
        else:
            text = text.replace('"', "'", 1)
        return _with_header(text.encode()[:70000], rest)
    mf = modelfile.read(data)
    tensors = dict(mf.tensors)
    name = list(tensors)[int(rng.integers(len(tensors)))]
    t = tensors[name]
    if kind == 4:  # absurd but finite values, stored as fp32
        choice = int(rng.integers(4))
        special = [2.0**127, 3.4e38, 1e-38, 1e-45][choice]
        v = np.full(t.values.shape, special, np.float32)
        if rng.random() < 0.5:
            v *= np.sign(rng.standard_normal(v.shape)).astype(np.float32)
        tensors[name] = Tensor(v, "fp32")
    elif kind == 5:  # another shape
        shape = tuple(int(d) + int(rng.integers(-1, 2)) for d in t.values.shape) or (2,)
        tensors[name] = Tensor(np.zeros(tuple(max(d, 0) for d in shape), np.float32), "fp32")
    elif kind == 6:  # an extra tensor, maybe a huge sparse one
        n = int(rng.choice([1, 1000, 1 << 22]))
        extra = np.zeros(n, np.float32)
        extra[0] = 1.0
        tensors[f"extra{n}"] = Tensor(extra, "codes", 0, 1)
    else:  # a header the tensors no longer fit, or one that fits with absurd settings
        spec = json.loads(json.dumps(head))
        if "params" in spec and "hop" in spec["params"]:
            p = spec["params"]
            p["hop"] = int(rng.choice([2, 4, 64, 63]))
            p["n_fft"] = int(rng.choice([16, 64, 128]))
            p["hidden"] = int(rng.choice([1, 8, 40]))
        else:
            spec["params"]["kernel"] = int(rng.choice([1, 5, 63]))
            spec["slope"] = float(rng.choice([0.0, -3.0, 1e30]))
        try:
            return seed_model(spec, rng)
        except Exception:  # noqa: BLE001 - an unwritable spec: keep the old tensors
            return _with_header(json.dumps(spec).encode(), rest)
    return modelfile.serialize(head, tensors)


def _wav(x: np.ndarray, rate: int, subtype: str, fmt: str = "WAV") -> bytes:
    """WAV bytes made here (libsndfile's float WAV has a PEAK chunk with a timestamp, which
    would make the seeds depend on the clock); FLAC through soundfile."""
    if fmt == "FLAC":
        buf = io.BytesIO()
        sf.write(buf, x, rate, subtype=subtype, format=fmt)
        return buf.getvalue()
    x = x.reshape(x.shape[0], -1)
    if subtype == "FLOAT":
        data, tag, bits = x.astype("<f4").tobytes(), 3, 32
    else:
        data, tag, bits = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), 1, 16
    block = x.shape[1] * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", tag, x.shape[1], rate, rate * block, block, bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data"
            + struct.pack("<I", len(data)) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def audio_seeds(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    x = (rng.standard_normal(4000) * 0.1).astype(np.float32)
    stereo = np.stack([x, -x], 1)
    return [("pcm16.wav", _wav(x, 16000, "PCM_16")), ("float.wav", _wav(x, 16000, "FLOAT")),
            ("stereo44.wav", _wav(stereo, 44100, "PCM_16")), ("low8k.wav", _wav(x, 8000, "FLOAT")),
            ("clip.flac", _wav(x, 16000, "PCM_16", "FLAC"))]


def mutate_audio(name: str, data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = int(rng.integers(6))
    wav = name.endswith(".wav")
    if len(buf) < 64:  # already cut to almost nothing: add junk instead
        return bytes(buf) + bytes(int(rng.integers(1, 64)))
    if kind == 0:  # header bytes
        for _ in range(int(rng.integers(1, 5))):
            buf[int(rng.integers(min(64, len(buf))))] = int(rng.integers(256))
    elif kind == 1:  # anywhere
        for _ in range(int(rng.integers(1, 17))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
    elif kind == 2:
        return bytes(buf[:int(rng.integers(len(buf)))])
    elif kind == 3 and wav:  # rate, channels, bits, data size: absurd values
        field = [(24, "<I"), (22, "<H"), (34, "<H"), (40, "<I"), (4, "<I")][int(rng.integers(5))]
        value = int(rng.choice([0, 1, 3, 7, 65535, 2**31 - 1, 2**32 - 1, 999_983, 192_000]))
        struct.pack_into(field[1], buf, field[0], value & (0xFFFF if field[1] == "<H" else
                                                           0xFFFFFFFF))
    elif kind == 4 and name == "float.wav":  # NaN and inf samples
        start = bytes(buf).find(b"data") + 8
        n = (len(buf) - start) // 4 if start >= 8 else 0
        if n:
            samples = np.frombuffer(bytes(buf[start:start + 4 * n]), "<f4").copy()
            samples[rng.integers(n, size=3)] = [np.nan, np.inf, -np.inf]
            buf[start:start + 4 * n] = samples.tobytes()
    elif kind == 5 and not wav:  # FLAC STREAMINFO: rate (20 bits), channels, bits
        for _ in range(2):
            buf[18 + int(rng.integers(4))] = int(rng.integers(256))
    else:
        buf += bytes(int(rng.integers(1, 4096)))
    return bytes(buf)


CONFIG_JUNK = [b"*a", b"&a [1]", b"\x00", b"\xe9", b"\xff\xfe", b"[" * 5000, b"{{{{",
               b"!!python/object:os.system", b".inf", b"-.inf", b".nan", b"1e300", b"-1", b"0",
               b"''", b"9" * 5000, b"~",
               b"\n  - \n", b"\t", b": :", b"? complex key", b"<<: *x", b"x" * 10000]


def mutate_config(data: bytes, rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(5))
    if len(data) < 8:  # already cut to almost nothing
        return data + CONFIG_JUNK[int(rng.integers(len(CONFIG_JUNK)))]
    if kind == 0:
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        return bytes(buf)
    if kind == 1:
        return data[:int(rng.integers(len(data)))]
    if kind == 2:  # a value replaced by junk
        lines = data.splitlines()
        i = int(rng.integers(len(lines)))
        if b":" in lines[i]:
            key = lines[i].split(b":", 1)[0]
            lines[i] = key + b": " + CONFIG_JUNK[int(rng.integers(len(CONFIG_JUNK)))]
        return b"\n".join(lines)
    if kind == 3:  # an alias bomb of random size in front
        levels = int(rng.integers(2, 10))
        bomb = [b'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        bomb += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]".encode()
                 for i in range(1, levels)]
        return b"\n".join(bomb) + f"\ntrain: *a{levels - 1}\n".encode() + data
    return data + b"\n" + CONFIG_JUNK[int(rng.integers(len(CONFIG_JUNK)))] + b"\n"


def generate(target: str, seed: int, count: int, folder: Path) -> Iterator[tuple[str, Path, str]]:
    """``count`` cases for ``target``: (name, file, kernel); case i depends on (seed, i) alone."""
    folder.mkdir(parents=True, exist_ok=True)
    tid = ("model", "config", "audio").index(target)
    base = np.random.default_rng([seed, tid, 0])
    if target == "model":
        seeds = [(s["model"], seed_model(s, base)) for s in (LSTM, BLSTM, FCN)]
    elif target == "config":
        seeds = [(p.name, p.read_bytes())
                 for p in sorted((CONFIGS_DIR / "experiment").glob("*.yaml"))]
    else:
        seeds = audio_seeds(base)
    for i in range(count):
        rng = np.random.default_rng([seed, tid, i + 1])
        name, data = seeds[int(rng.integers(len(seeds)))]
        for _ in range(int(rng.integers(1, 3))):  # one or two mutations
            if target == "model":
                try:
                    data = mutate_model(data, rng)
                except Exception:  # noqa: BLE001 - a damaged file cannot be re-parsed: stop
                    break
            elif target == "config":
                data = mutate_config(data, rng)
            else:
                data = mutate_audio(name, data, rng)
        suffix = {"model": ".seofp", "config": ".yaml"}.get(target, Path(name).suffix)
        path = folder / f"{target}_{seed}_{i}{suffix}"
        path.write_bytes(data)
        yield f"{target}:{seed}:{i}:{name}", path, KERNELS[i % len(KERNELS)]
