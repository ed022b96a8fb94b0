"""The .seofp file: exact round trip, exact size, and a loader that refuses every bad file."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from seofp_lab.errors import ModelFileError
from seofp_lab.infer import engine, modelfile
from seofp_lab.infer.export import export_model, model_header, model_tensors, serialize_model
from seofp_lab.infer.modelfile import Tensor
from tests.engine_models import tiny_model

# a valid version-2 header and exactly the tensors it describes, in all three storages
TINY_HEADER = {"model": "fcn", "group": "global",
               "params": {"layers": 1, "channels": 8, "kernel": 3, "norm": "none"},
               "slope": 0.2, "eps": 1e-5, "modules": ["Conv1d", "LeakyReLU", "Conv1d", "Tanh"]}


def _tiny_file() -> bytes:
    rng = np.random.default_rng(0)
    codes = np.ldexp(rng.choice([-1.0, 1.0], 24), rng.integers(-5, 2, 24)).astype(np.float32)
    sparse = np.zeros(24, np.float32)
    sparse[[3, 20]] = [0.5, -2.0]
    return modelfile.serialize(TINY_HEADER, {
        "net.0.weight": Tensor(codes.reshape(8, 1, 3), "codes", -5, 3),
        "net.0.bias": Tensor(np.linspace(-1, 1, 8, dtype=np.float32), "fp32"),
        "net.2.weight": Tensor(sparse.reshape(1, 8, 3), "codes", -5, 3),
        "net.2.bias": Tensor(np.array([-0.1], np.float32), "fp32"),
    })


def test_round_trip_is_exact_and_sparse_is_chosen_when_smaller() -> None:
    data = _tiny_file()
    mf = modelfile.read(data)
    assert mf.size_bytes == len(data)
    assert mf.header == TINY_HEADER
    assert mf.spec.model == "fcn" and mf.spec.slope == 0.2
    assert [(n, t.storage) for n, t in mf.tensors.items()] == [
        ("net.0.weight", "codes"), ("net.0.bias", "fp32"), ("net.2.weight", "sparse"),
        ("net.2.bias", "fp32")]
    assert mf.tensors["net.0.weight"].values.shape == (8, 1, 3)
    w2 = mf.tensors["net.2.weight"].values.reshape(-1)
    assert w2[20] == -2.0 and np.count_nonzero(w2) == 2
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


def _rewritten(data: bytes, header: object = None, version: int | None = None) -> bytes:
    """``data`` with another JSON header and/or version, lengths and CRC recomputed (bypasses the
    writer's own header check, as a hand-made or future file would)."""
    body = data[:-4]
    (old_version, head_len) = struct.unpack_from("<HI", body, 6)
    if header is None:
        head = body[12:12 + head_len]
    else:
        head = header if isinstance(header, bytes) else json.dumps(header).encode()
    v = old_version if version is None else version
    return _with_crc(modelfile.MAGIC + struct.pack("<HI", v, len(head)) + head
                     + body[12 + head_len:])


def test_older_and_newer_versions_are_refused_with_what_to_do() -> None:
    data = _tiny_file()
    assert modelfile.read(_rewritten(data)).header == TINY_HEADER  # the helper keeps a valid file
    with pytest.raises(ModelFileError, match=r"m.seofp: format version 1 is older .* "
                                             r"mask_floor.* re-export with `seofp export RUN`"):
        modelfile.read(_rewritten(data, version=1), "m.seofp")
    with pytest.raises(ModelFileError, match="expected format version 2 but got 3"):
        modelfile.read(_rewritten(data, version=3))


DELETE = object()


def _header_of(model: nn.Module) -> dict:
    return json.loads(json.dumps(model_header(model)))  # as the file holds it


def _mask_header() -> dict:
    return _header_of(tiny_model("lstm", mask_floor=0.25))


def _set(path: str, value: object, base: dict | None = None) -> dict:
    """A copy of the LSTM mask header (or ``base``) with ``path`` ("params.hop") set or, for
    ``value is DELETE``, removed."""
    h = json.loads(json.dumps(base if base is not None else _mask_header()))
    *parents, key = path.split(".")
    cur = h
    for p in parents:
        cur = cur[p]
    if value is DELETE:
        del cur[key]
    else:
        cur[key] = value
    return h


@pytest.mark.parametrize(("path", "value", "match"), [
    ("flags", ["phase_aware"], r"'flags' is not part .* supports model, group, params, features"),
    ("params.dropout", 0.1, r"'params.dropout' is not part .* params.mask_floor"),
    ("features.compress", 0.3, r"'features.compress' is not part"),
    ("params.mask_floor", DELETE, r"'params.mask_floor' is missing"),
    ("features", DELETE, r"'features' is missing"),
    ("params.mask_floor", 1.0, r"'params.mask_floor': expected a number in \[0, 1\) but got 1.0"),
    ("params.mask_floor", "0.1", r"'params.mask_floor': expected a number"),
    ("params.target", "cirm", r"'params.target': expected one of 'lps', 'mask' but got 'cirm'"),
    ("features.window", "hamming", r"'features.window': expected one of 'hann'"),
    ("features.norm", "none", r"'features.norm': expected one of 'standardise'"),
    ("features.kind", "mel", r"'features.kind': expected one of 'lps'"),
    ("features.eps", 0.0, r"'features.eps': expected a number"),
    ("params.hop", 1024, r"'params.hop': expected an integer in \[16, 512\]"),
    ("params.hop", 1, r"'params.hop': expected an integer in \[16, 512\]"),  # 512 frames a sample
    ("params.n_fft", 1 << 16, r"'params.n_fft': expected an integer in \[16, 16384\]"),
    ("params.hidden", True, r"'params.hidden': expected an integer"),
    ("group", "per_channel", r"'group': expected one of 'global', 'per_layer'"),
    ("model", "transformer", r"'model': expected one of 'blstm', 'lstm', 'fcn'"),
])
def test_lstm_header_fields_the_engine_cannot_honour_are_refused(path: str, value: object,
                                                                  match: str) -> None:
    data = serialize_model(tiny_model("lstm"))
    with pytest.raises(ModelFileError, match=r"^m\.seofp: header field .*" + match):
        modelfile.read(_rewritten(data, _set(path, value)), "m.seofp")


def test_a_floor_on_an_lps_model_is_refused_and_export_writes_zero() -> None:
    model = tiny_model("blstm", mask_floor=0.3)  # target lps: torch never uses the floor
    header = _header_of(model)
    assert header["params"]["mask_floor"] == 0.0
    data = serialize_model(model)
    with pytest.raises(ModelFileError, match=r"'params.mask_floor': expected 0.0 for target 'lps'"):
        modelfile.read(_rewritten(data, _set("params.mask_floor", 0.3, header)))


@pytest.mark.parametrize(("path", "value", "match"), [
    ("params.norm", "layer", r"'params.norm': expected one of 'batch', 'none' but got 'layer'"),
    ("params.kernel", 8, r"'params.kernel': expected an odd kernel"),
    ("params.layers", 2, r"'modules': expected \['Conv1d'.*params.layers=2"),
    ("modules", ["Conv1d", "Dropout", "LeakyReLU", "Conv1d", "Tanh"], r"'modules': expected"),
    ("slope", None, r"'slope': expected a number"),
    ("params.groups", 2, r"'params.groups' is not part"),
])
def test_fcn_header_fields_the_engine_cannot_honour_are_refused(path: str, value: object,
                                                                 match: str) -> None:
    with pytest.raises(ModelFileError, match=r"^f\.seofp: header field .*" + match):
        modelfile.read(_rewritten(_tiny_file(), _set(path, value, TINY_HEADER)), "f.seofp")


def test_the_writer_refuses_a_header_the_reader_would_refuse(tmp_path: Path) -> None:
    mf = modelfile.read(_tiny_file())
    with pytest.raises(ModelFileError, match="header to write: header field 'flags'"):
        modelfile.write(tmp_path / "x.seofp", {**TINY_HEADER, "flags": 1}, mf.tensors)
    assert not list(tmp_path.iterdir())


def test_file_version_reads_the_version_without_parsing(tmp_path: Path) -> None:
    (tmp_path / "old.seofp").write_bytes(_rewritten(_tiny_file(), version=1))
    (tmp_path / "junk.seofp").write_bytes(b"RIFF....")
    assert modelfile.file_version(tmp_path / "old.seofp") == 1
    assert modelfile.file_version(modelfile.write(tmp_path / "new.seofp", TINY_HEADER,
                                                  modelfile.read(_tiny_file()).tensors)) == 2
    assert modelfile.file_version(tmp_path / "junk.seofp") is None
    assert modelfile.file_version(tmp_path / "missing.seofp") is None


@pytest.mark.kernel
def test_engine_refuses_a_tensor_the_header_does_not_describe(tmp_path: Path) -> None:
    mf = modelfile.read(serialize_model(tiny_model("fcn")))
    extra = {**mf.tensors, "net.99.weight": Tensor(np.ones((1, 1, 9), np.float32))}
    path = modelfile.write(tmp_path / "extra.seofp", mf.header, extra)
    with pytest.raises(ModelFileError, match=r"extra.seofp: tensor 'net.99.weight' is not part "
                                             r"of the model the header describes"):
        engine.load(path)


def _header_text(**params: str) -> bytes:
    """The LSTM mask header as JSON text with some ``params`` values replaced by raw JSON text
    (what json.dumps would refuse to write, as a hand-made file may hold)."""
    text = json.dumps(_mask_header())
    for key, raw in params.items():
        head, rest = text.split(f'"{key}": ', 1)
        text = head + f'"{key}": ' + raw + rest[rest.index(","):]
    return text.encode()


@pytest.mark.parametrize(("head", "match"), [
    # issue 14: a 5,000-digit integer was a ValueError traceback from int()
    (_header_text(hidden="9" * 5000), r"^m.seofp: expected header numbers JSON can hold but got "
                                      r"an integer of 5000 digits \(at most 18\)$"),
    (_header_text(hidden="-" + "1" * 19), r"an integer of 19 digits"),
    # issue 14: a header nested 60,000 deep was a RecursionError traceback
    (b"[" * 60000, r"^m.seofp: expected a JSON header nested at most 4 deep but "
                                  r"got 60000 levels$"),
    (_header_text(fc='{"a": [[[[1]]]]}'), r"nested at most 4 deep but got 7 levels"),
    (_header_text(mask_floor="NaN"), r"the non-standard constant NaN"),
    (_header_text(mask_floor="1e999"), r"'params.mask_floor': expected a number in \[0, 1\) but "
                                       r"got inf"),
    (_header_text(hidden="1e400"), r"'params.hidden': expected an integer in \[1, 16384\]"),
    (b'{"model": "' + b"x" * 60000 + b'"}', r"'model': expected one of 'blstm', 'lstm', 'fcn' but "
                                          r"got 'xxx.{70,80}\.\.\. \(60002 characters\)$"),
    (b"\xff\xfe{}", r"^m.seofp: expected a UTF-8 JSON header but byte 0 of it is not UTF-8$"),
    (b'{"a": 1', r"^m.seofp: expected a JSON header but got Expecting"),
])
def test_hostile_headers_are_refused_in_one_short_line(head: bytes, match: str) -> None:
    data = _rewritten(serialize_model(tiny_model("lstm")), head)
    with pytest.raises(ModelFileError, match=match) as info:
        modelfile.read(data, "m.seofp")
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    head = _header_text(target='"[[[[[[{{{{ \\" ]]]]"')
    with pytest.raises(ModelFileError, match=r"'params.target': expected one of 'lps', 'mask'"):
        modelfile.read(_rewritten(serialize_model(tiny_model("lstm")), head), "m.seofp")


def test_a_model_over_the_value_limit_is_refused_from_its_header() -> None:
    big = _set("params.hidden", 16384, _set("params.layers", 64))  # 4 * 16384**2 * 64 weights
    with pytest.raises(ModelFileError, match=r"header field 'params' describes a model of "
                                             r"136,390,460,163 values; expected at most "
                                             r"67,108,864"):
        modelfile.read(_rewritten(serialize_model(tiny_model("lstm")), big), "m.seofp")


def test_an_unused_huge_sparse_tensor_is_refused_before_it_is_decoded() -> None:
    """Issue 14: a 34 MB file with an unused all-zero sparse tensor took 2.5 GB to load. The
    table is now checked against the header first, so nothing of the tensor is decoded."""
    import tracemalloc

    mf = modelfile.read(serialize_model(tiny_model("lstm")))
    huge = np.zeros(8 * (1 << 20), np.float32)  # 32 Mi values, all zero: stored as a bitmap
    huge[0] = 1.0
    data = modelfile.serialize(mf.header, {**mf.tensors,
                                           "pad": Tensor(huge, "codes", 0, 1)})
    assert 1 << 20 < len(data) < 2 << 20  # a 1 MiB bitmap
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"m.seofp: tensor 'pad' is not part of the model "
                                                 r"the header describes"):
            modelfile.read(data, "m.seofp")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data)  # no decoded values (128 MiB as float32), no mask


def test_a_tensor_of_the_wrong_shape_is_refused_before_it_is_decoded() -> None:
    mf = modelfile.read(serialize_model(tiny_model("lstm")))
    tensors = {**mf.tensors, "out.bias": Tensor(np.zeros(300, np.float32), "fp32")}
    with pytest.raises(ModelFileError, match=r"expected tensor 'out.bias' of shape \(257,\) but "
                                             r"got \(300,\)"):
        modelfile.read(modelfile.serialize(mf.header, tensors), "m.seofp")
    del tensors["out.bias"]
    with pytest.raises(ModelFileError, match=r"expected tensor 'out.bias' of shape \(257,\) but "
                                             r"the file has none"):
        modelfile.read(modelfile.serialize(mf.header, tensors), "m.seofp")


def test_a_file_larger_than_any_valid_model_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.seofp"
    with path.open("wb") as f:
        f.truncate(modelfile.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ModelFileError, match=r"big.seofp: expected a .seofp file of at most "):
        modelfile.load(path)
    with pytest.raises(ModelFileError, match=r"readable .seofp file at .*Is a directory"):
        modelfile.load(tmp_path)
