"""The .seofp file: exact round trip, exact size, and a loader that refuses every bad file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from seofp_lab.errors import ModelFileError
from seofp_lab.infer import engine, modelfile
from seofp_lab.infer.export import export_model, model_tensors, serialize_model
from seofp_lab.infer.modelfile import Tensor
from tests.engine_models import tiny_model

# a valid version-2 header (modelfile checks the header, the engine checks the tensors against it)
TINY_HEADER = {"model": "fcn", "group": "global",
               "params": {"layers": 1, "channels": 2, "kernel": 3, "norm": "none"},
               "slope": 0.2, "eps": 1e-5, "modules": ["Conv1d", "LeakyReLU", "Conv1d", "Tanh"]}


def _tiny_file() -> bytes:
    rng = np.random.default_rng(0)
    codes = np.ldexp(rng.choice([-1.0, 1.0], 12), rng.integers(-5, 2, 12)).astype(np.float32)
    sparse = np.zeros(64, np.float32)
    sparse[[3, 40]] = [0.5, -2.0]
    return modelfile.serialize(TINY_HEADER, {
        "a": Tensor(codes.reshape(3, 4), "codes", -5, 3),
        "s": Tensor(sparse, "codes", -5, 3),
        "f": Tensor(np.array([1.5, -0.1], np.float32), "fp32"),
    })


def test_round_trip_is_exact_and_sparse_is_chosen_when_smaller() -> None:
    data = _tiny_file()
    mf = modelfile.read(data)
    assert mf.size_bytes == len(data)
    assert mf.header == TINY_HEADER
    assert mf.spec.model == "fcn" and mf.spec.slope == 0.2
    assert [(n, t.storage) for n, t in mf.tensors.items()] == [
        ("a", "codes"), ("s", "sparse"), ("f", "fp32")]
    assert mf.tensors["a"].values.shape == (3, 4)
    assert mf.tensors["s"].values[40] == -2.0 and np.count_nonzero(mf.tensors["s"].values) == 2
    assert modelfile.serialize(mf.header, mf.tensors) == data


def test_model_size_is_the_file_length_and_weights_survive(tmp_path: Path) -> None:
    model = tiny_model("blstm")
    path = export_model(model, tmp_path / "m.seofp")
    data = path.read_bytes()
    assert len(data) == len(serialize_model(model))
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    mf = modelfile.load(path)
    tensors = model_tensors(model)
    assert mf.tensors.keys() == tensors.keys()
    for name, t in tensors.items():
        assert mf.tensors[name].values.tobytes() == t.values.tobytes(), name
    storages = {n: t.storage for n, t in mf.tensors.items()}
    assert storages["lstm.weight_ih_l0"] == "codes" and storages["feat_mean"] == "fp32"
    windows = {(t.e_min, t.length) for t in mf.tensors.values() if t.storage != "fp32"}
    assert len(windows) == 1  # group="global": one exponent window for the whole model
    per_layer = serialize_model(model, "per_layer")
    assert len(per_layer) <= len(data)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_fuzzed_and_truncated_files_raise_model_file_error() -> None:
    data = _tiny_file()
    body = data[:-4]
    rng = np.random.default_rng(42)
    for i in range(3000):
        buf = bytearray(body)
        for _ in range(int(rng.integers(1, 4))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        if i % 3 == 0:
            buf = buf[: int(rng.integers(len(buf)))]
        # with a recomputed CRC the structural checks must catch it; without, the CRC does
        candidate = _with_crc(bytes(buf)) if i % 2 else bytes(buf) + data[-4:]
        try:
            mf = modelfile.read(candidate)
        except ModelFileError:
            continue
        assert mf.size_bytes == len(candidate)  # a mutation can leave a valid file


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: b"NOTSEO" + d[6:], "magic"),
    (lambda d: d[:6] + struct.pack("<H", 9) + d[8:], "version"),
    (lambda d: d[:-1], "CRC32"),
    (lambda d: d[:-4] + b"\0\0\0\0", "CRC32"),
    (lambda d: _with_crc(d[:-4] + b"x"), "trailing"),
    (lambda d: b"", "magic"),
])
def test_specific_defects_have_clear_messages(mutate, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ModelFileError, match=match):
        modelfile.read(mutate(_tiny_file()))


@pytest.mark.kernel
def test_engine_refuses_a_file_whose_tensors_do_not_fit_the_header(tmp_path: Path) -> None:
    model = tiny_model("fcn")
    mf = modelfile.read(serialize_model(model))
    header = {**mf.header, "params": {**mf.header["params"], "channels": 7}}
    path = modelfile.write(tmp_path / "bad.seofp", header, mf.tensors)
    with pytest.raises(ModelFileError, match=r"net.0.weight.*\(7, 1, 9\)"):
        engine.load(path)
    with pytest.raises(ModelFileError, match="readable"):
        engine.load(tmp_path / "missing.seofp")
