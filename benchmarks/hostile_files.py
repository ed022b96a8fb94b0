"""Hand-made hostile inputs, each run in the fuzz worker (memory cap, timeout): 40 model files on
every kernel, and 16 audio-in/audio-out cases of ``seofp enhance`` (issue 14's counts, measured).

A model outcome is clean when it is a one-line refusal or a finite output; a defect is NaN
returned, a traceback, memory over the cap, a crash or a hang. An ``enhance`` case is clean when
it exits 0 or 2 with only ``seofp enhance: ...`` lines, leaves no temporary file, and passes its
own check (an unrelated file unchanged, the input's length kept, the other files written, ...);
a failed check is a silent wrong result. As root the ``enhance`` cases run as uid 65534, so
read-only folders are read-only.

Run: .venv/bin/python benchmarks/hostile_files.py [--mem-mb 2048] [--timeout-s 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from seofp_lab.fuzz.cases import BLSTM, FCN, LSTM, seed_model
from seofp_lab.fuzz.runner import Tally, Worker, run_cases
from seofp_lab.infer import modelfile
from seofp_lab.infer.modelfile import Tensor

KERNELS = ("intadd", "decode", "fp32")
RNG = np.random.default_rng(14)


def _crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _parts(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<I", data, 8)
    return json.loads(data[12:12 + n]), data[12 + n:-4]


def _head(text: bytes, rest: bytes, version: int = 2, length: int | None = None) -> bytes:
    n = len(text) if length is None else length
    return _crc(modelfile.MAGIC + struct.pack("<HI", version, n) + text + rest)


def _raw(spec: dict, entries: list[tuple], payload: bytes, count: int | None = None) -> bytes:
    """A file from raw table entries (name, shape, storage, e_min, length, stored, offset, size)."""
    head = json.dumps(spec).encode()
    table = b""
    for name, shape, storage, e_min, length, stored, offset, size in entries:
        raw = name.encode()
        table += struct.pack("<H", len(raw)) + raw + struct.pack(f"<B{len(shape)}I", len(shape),
                                                                  *shape)
        table += struct.pack("<BhBQQQ", storage, e_min, length, stored, offset, size)
    n = len(entries) if count is None else count
    return _head(head, struct.pack("<I", n) + table + payload)


def _tensors(spec: dict) -> dict[str, Tensor]:
    return dict(modelfile.read(seed_model(spec, np.random.default_rng(0))).tensors)


def _with(spec: dict, **values: np.ndarray) -> bytes:
    t = _tensors(spec)
    for name, v in values.items():
        t[name.replace("__", ".")] = Tensor(np.asarray(v, np.float32).reshape(
            t[name.replace("__", ".")].values.shape), "fp32")
    return modelfile.serialize(spec, t)


def _set(spec: dict, path: str, value: object) -> dict:
    s = json.loads(json.dumps(spec))
    *parents, key = path.split(".")
    cur = s
    for p in parents:
        cur = cur[p]
    cur[key] = value
    return s


def _header_raw(spec: dict, key: str, raw: str) -> bytes:
    text = json.dumps(spec)
    head, rest = text.split(f'"{key}": ', 1)
    return (head + f'"{key}": ' + raw + rest[rest.index(","):]).encode()


def _huge(shape: tuple[int, ...]) -> np.ndarray:
    """±2^127 with random signs (those of tests/test_engine_limits.py)."""
    return np.sign(np.random.default_rng(1).standard_normal(shape)) * 2.0**127


def _nan_lstm() -> bytes:
    """The engine tests' unidirectional LSTM (257 bins, 2 x 10 units) with ±2^127 recurrent
    weights in layer 1: its gate sums overflow to +inf and -inf, whose sum is NaN."""
    from seofp_lab.infer.export import model_header, model_tensors  # noqa: PLC0415
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # test helper
    from random_models import seofp_model  # noqa: PLC0415

    m = seofp_model("lstm", {"hidden": 10, "layers": 2, "fc": 0, "target": "mask"})
    t = model_tensors(m)
    t["lstm.weight_hh_l1"] = Tensor(_huge((40, 10)).astype(np.float32), "fp32")
    t["feat_std"] = Tensor(np.ones(257, np.float32), "fp32")
    return modelfile.serialize(model_header(m), t)


def model_cases() -> dict[str, Callable[[], bytes]]:
    """40 hostile model files, by name."""
    seed = seed_model(LSTM, np.random.default_rng(0))
    _, rest = _parts(seed)
    big_sparse = np.zeros(32 << 20, np.float32)
    big_sparse[0] = 1.0
    t = _tensors(LSTM)
    w = t["lstm.weight_ih_l0"]
    entry = ("lstm.weight_ih_l0", w.values.shape)
    return {
        "header nested 60,000 deep": lambda: _head(b"[" * 60000, rest),
        "header nested 30,000 deep, balanced": lambda: _head(b"[" * 30000 + b"]" * 30000, rest),
        "5,000-digit integer": lambda: _head(_header_raw(LSTM, "hidden", "9" * 5000), rest),
        "19-digit negative integer": lambda: _head(_header_raw(LSTM, "layers", "-" + "1" * 19),
                                                   rest),
        "NaN constant": lambda: _head(_header_raw(LSTM, "mask_floor", "NaN"), rest),
        "Infinity constant": lambda: _head(_header_raw(LSTM, "mask_floor", "Infinity"), rest),
        "1e999 float": lambda: _head(_header_raw(LSTM, "mask_floor", "1e999"), rest),
        "60 KB string value": lambda: _head(json.dumps(_set(LSTM, "model", "x" * 60000)).encode(),
                                            rest),
        "header not UTF-8": lambda: _head(b"\xff\xfe{}", rest),
        "header length 2^32-1": lambda: _head(b"{}", rest, length=2**32 - 1),
        "header a JSON array": lambda: _head(b"[1, 2, 3]", rest),
        "hop 1 with n_fft 512": lambda: _head(json.dumps(_set(_set(LSTM, "params.n_fft", 512),
                                                              "params.hop", 1)).encode(), rest),
        "n_fft 65536": lambda: _head(json.dumps(_set(LSTM, "params.n_fft", 65536)).encode(), rest),
        "hidden 16384 x 64 layers": lambda: _head(json.dumps(_set(_set(
            LSTM, "params.hidden", 16384), "params.layers", 64)).encode(), rest),
        "unused 32 Mi-value sparse tensor": lambda: modelfile.serialize(LSTM, {
            **t, "pad": Tensor(big_sparse, "codes", 0, 1)}),
        "extra small tensor": lambda: modelfile.serialize(LSTM, {
            **t, "extra": Tensor(np.ones(3, np.float32))}),
        "missing tensor": lambda: modelfile.serialize(LSTM, {
            k: v for k, v in t.items() if k != "out.bias"}),
        "tensor of the wrong shape": lambda: modelfile.serialize(LSTM, {
            **t, "out.bias": Tensor(np.ones(7, np.float32))}),
        "duplicate tensor name": lambda: _raw(LSTM, [(*entry, 0, 0, 0, w.values.size, 0,
                                                      4 * w.values.size)] * 2,
                                              w.values.tobytes() * 2),
        "tensor count 2^32-1": lambda: _raw(LSTM, [], b"", count=2**32 - 1),
        "NaN weights": lambda: _with(LSTM, feat_mean=np.full(33, np.nan)),
        "inf weights": lambda: _with(LSTM, feat_std=np.full(33, np.inf)),
        "±2^127 recurrent weights (NaN in layer 1)": _nan_lstm,
        "feat_std 1e-45 (inf features)": lambda: _with(LSTM, feat_std=np.full(33, 1e-45)),
        "LPS output overflow (exp)": lambda: _with(BLSTM, out__bias=np.full(33, 1e3)),
        "±2^127 FCN weights": lambda: _with(FCN, net__3__weight=_huge((4, 4, 5))),
        "negative batch-norm variance": lambda: _with(FCN, net__1__running_var=-np.ones(4)),
        "zero variance, eps 1e-30": lambda: modelfile.serialize(
            _set(FCN, "eps", 1e-30), {**_tensors(FCN), "net.1.running_var": Tensor(
                np.zeros(4, np.float32))}),
        "LeakyReLU slope 1e30": lambda: modelfile.serialize(_set(FCN, "slope", 1e30),
                                                            _tensors(FCN)),
        "mask floor 0.999999": lambda: modelfile.serialize(_set(LSTM, "params.mask_floor",
                                                                0.999999), t),
        "code window e_min 127, length 15": lambda: _raw(LSTM, [(*entry, 1, 127, 15,
                                                                 w.values.size, 0,
                                                                 2 * w.values.size)],
                                                         bytes(2 * w.values.size)),
        "code length 0": lambda: _raw(LSTM, [(*entry, 1, 0, 0, w.values.size, 0, 1)], b"\0"),
        "storage kind 7": lambda: _raw(LSTM, [(*entry, 7, 0, 3, 1, 0, 1)], b"\0"),
        "5 dimensions": lambda: _raw(LSTM, [("x", (1, 1, 1, 1, 1), 0, 0, 0, 1, 0, 4)], bytes(4)),
        "dims 2^32-1": lambda: _raw(LSTM, [("x", (2**32 - 1, 2**32 - 1), 0, 0, 0, 1, 0, 4)],
                                    bytes(4)),
        "offset past the payload": lambda: _raw(LSTM, [(*entry, 0, 0, 0, w.values.size,
                                                        2**60, 4)], bytes(4)),
        "trailing bytes": lambda: _crc(seed[:-4] + b"junk"),
        "truncated payload, valid CRC": lambda: _crc(seed[:len(seed) // 2]),
        "format version 1": lambda: _head(_parts(seed)[1] and json.dumps(LSTM).encode(), rest,
                                          version=1),
        "format version 65535": lambda: _head(json.dumps(LSTM).encode(), rest, version=65535),
    }


def _wav(path: Path, seconds: float, rate: int, channels: int = 1) -> Path:
    x = RNG.standard_normal((int(seconds * rate), channels)) * 0.1
    sf.write(str(path), x.astype(np.float32), rate, subtype="FLOAT")
    return path


def enhance_cases(root: Path) -> list[tuple[str, dict, Callable[[], str]]]:
    """(name, {"argv", "env"}, check): check returns "" or what went silently wrong."""
    model = root / "m.seofp"
    model.write_bytes(seed_model(LSTM, np.random.default_rng(0)))
    nan_model = root / "nan.seofp"
    nan_model.write_bytes(_nan_lstm())
    cases: list[tuple[str, dict, Callable[[], str]]] = []

    def case(name: str) -> Path:
        d = root / f"c{len(cases):02d}"
        d.mkdir()
        return d

    d = case("folder")
    (d / "in").mkdir()
    for i in range(5):
        _wav(d / "in" / f"g{i}.wav", 0.3, 16000)
    (d / "in" / "bad.wav").write_bytes(b"RIFF....")
    cases.append(("folder with one bad file", {"argv": [str(model), str(d / "in"), "--out",
                                                        str(d / "out")]},
                  lambda d=d: "" if len(list((d / "out").glob("g*.wav"))) == 5
                  else "good files not written"))
    d = case("overwrite")
    song = d / "song.flac"
    sf.write(str(song), np.zeros(4000, np.float32) + 0.01, 16000)
    (d / "out").mkdir()
    (d / "out" / "song.wav").write_bytes(b"mine")
    cases.append(("unrelated song.wav in --out", {"argv": [str(model), str(song), "--out",
                                                           str(d / "out")]},
                  lambda d=d: "" if (d / "out" / "song.wav").read_bytes() == b"mine"
                  else "song.wav overwritten"))
    cases.append(("the same with --overwrite", {"argv": [str(model), str(song), "--out",
                                                         str(d / "out"), "--overwrite"]},
                  lambda d=d: "" if sf.info(str(d / "out" / "song.wav")).frames == 4000
                  else "not replaced"))
    for label, sub in (("read-only --out", "ro"), ("read-only parent", "ro/new/deeper")):
        d = case(label)
        wav = _wav(d / "x.wav", 0.3, 16000)
        (d / "ro").mkdir()
        cases.append((label, {"argv": [str(model), str(wav), "--out", str(d / sub)],
                              "chmod": str(d / "ro")}, lambda: ""))
    d = case("ro workspace")
    wav = _wav(d / "x.wav", 0.3, 16000)
    (d / "ro").mkdir()
    cases.append(("read-only workspace", {"argv": [str(model), str(wav)], "chmod": str(d / "ro"),
                                          "env": {"SEOFP_WORKSPACE": str(d / "ro" / "ws")}},
                  lambda: ""))
    d = case("dir")
    wav = _wav(d / "song.wav", 0.3, 16000)
    (d / "out" / "song.wav").mkdir(parents=True)
    cases.append(("output name is a folder", {"argv": [str(model), str(wav), "--out",
                                                        str(d / "out")]}, lambda: ""))
    for rate in (44100, 22050, 8000):
        d = case(f"rate{rate}")
        wav = _wav(d / "x.wav", 0.37, rate, channels=2 if rate == 8000 else 1)
        n = sf.info(str(wav)).frames
        cases.append((f"{rate} Hz input keeps its length", {
            "argv": [str(model), str(wav), "--out", str(d / "out")]},
            lambda d=d, n=n, rate=rate: "" if (sf.info(str(d / "out" / "x.wav")).frames,
                                               sf.info(str(d / "out" / "x.wav")).samplerate)
            == (n, rate) else "length or rate changed"))
    d = case("file as out")
    wav = _wav(d / "x.wav", 0.3, 16000)
    (d / "file").write_bytes(b"not a folder")
    cases.append(("--out is a file", {"argv": [str(model), str(wav), "--out", str(d / "file")]},
                  lambda d=d: "" if (d / "file").read_bytes() == b"not a folder" else "replaced"))
    d = case("missing")
    cases.append(("input does not exist", {"argv": [str(model), str(d / "nope.wav")]},
                  lambda: ""))
    d = case("empty")
    (d / "in").mkdir()
    cases.append(("empty folder", {"argv": [str(model), str(d / "in")]}, lambda: ""))
    d = case("zero")
    (d / "z.wav").write_bytes(b"")
    cases.append(("zero-byte input", {"argv": [str(model), str(d / "z.wav"), "--out",
                                               str(d / "out")]}, lambda: ""))
    d = case("own input")
    wav = _wav(d / "x.wav", 0.3, 16000)
    before = wav.read_bytes()
    cases.append(("--out is the input's folder", {"argv": [str(model), str(wav), "--out",
                                                            str(d)]},
                  lambda wav=wav, before=before: "" if wav.read_bytes() == before
                  else "input overwritten"))
    d = case("nan")
    wav = d / "x.wav"  # the input the engine tests use with this model
    sf.write(str(wav), (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32),
             16000, subtype="FLOAT")
    cases.append(("model that yields NaN", {"argv": [str(nan_model), str(wav), "--out",
                                                      str(d / "out")]},
                  lambda d=d: "" if not (d / "out" / "x.wav").exists() else "NaN file written"))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mem-mb", type=int, default=2048)
    ap.add_argument("--timeout-s", type=float, default=60.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seofp-hostile-"))
    root.chmod(0o755)
    try:
        tally = Tally()
        names = {}
        for i, (name, make) in enumerate(model_cases().items()):
            path = root / f"h{i:02d}.seofp"
            path.write_bytes(make())
            path.chmod(0o644)
            names[str(path)] = name
        worker = Worker(args.mem_mb)
        for kernel in KERNELS:
            jobs = [(f"{kernel}: {names[p]}", Path(p), kernel) for p in names]
            run_cases("model", jobs, worker, tally, args.timeout_s)
        worker.close()
        print(f"model files: {len(names)} x {len(KERNELS)} kernels "
              f"({args.mem_mb} MiB cap, {args.timeout_s:g} s timeout)")
        print(f"  outcomes: {dict(tally.counts['model'])}")
        for kernel in KERNELS:
            ran_ok = sorted(r.name.split(": ", 1)[1] for r in tally.results
                            if r.kernel == kernel and r.outcome == "ok")
            print(f"  {kernel}: finite output for {len(ran_ok)}: {', '.join(ran_ok)}")
        for r in tally.bad:
            print(f"  DEFECT {r.outcome} {r.name}: {r.detail}")

        cases = enhance_cases(root)
        for p in [root, *root.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
        for _, job, _ in cases:
            if "chmod" in job:
                Path(job["chmod"]).chmod(0o555)
        user = 65534 if os.geteuid() == 0 else None
        worker, enhance = Worker(args.mem_mb, user=user), Tally()
        silent = []
        for i, (name, job, check) in enumerate(cases):
            spec = root / f"enhance{i:02d}.json"
            spec.write_text(json.dumps(job))
            spec.chmod(0o644)
            run_cases("enhance", [(name, spec, "intadd")], worker, enhance, args.timeout_s)
            problem = check()
            leftovers = list(root.rglob("*.tmp*"))
            if problem or leftovers:
                silent.append(f"{name}: {problem or leftovers}")
        worker.close()
        print(f"\nenhance cases: {len(cases)} ({'as uid 65534' if user else 'as this user'}): "
              f"{dict(enhance.counts['enhance'])}")
        for r in enhance.bad:
            print(f"  DEFECT {r.outcome} {r.name}: {r.detail}")
        print(f"  silent wrong results: {len(silent)}")
        for s in silent:
            print(f"  SILENT {s}")
    finally:
        for p in [root, *root.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
