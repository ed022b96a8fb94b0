"""The ``.seofp`` model file: writer and validating reader (docs/MODEL_FILE.md).

Little-endian layout, every length explicit, nothing implied::

    magic     6 B   b"SEOFP\\0"
    version   u16   FORMAT_VERSION (2)
    header    u32 length + UTF-8 JSON object: every setting that changes the output
              (``infer/header.py``: model, parameters, mask floor, features, ...)
    count     u32   number of tensors
    table     per tensor: u16 name length + UTF-8 name, u8 ndim + u32 dims, u8 storage,
              i16 e_min, u8 code length, u64 stored values, u64 offset, u64 byte length
    payload   the tensors' bytes, back to back in table order (offsets relative to its start)
    crc       u32   CRC32 of every byte before it

Storage kinds: ``fp32`` (raw float32), ``codes`` (every value as a packed ``1 + len``-bit word of
``compress.codec``), ``sparse`` (a pruning bitmap of ``ceil(n/8)`` bytes, then the words of the kept
values only). The writer picks ``sparse`` only when it is smaller. :func:`read` checks every field
and raises :class:`~seofp_lab.errors.ModelFileError`; it never indexes outside the buffer.

Versions: 2 added ``params.mask_floor`` and ``features`` to the LSTM header and made every header
field checked (an unknown one is refused, not ignored). Version 1 files are refused: a mask model's
floor was never written, so the engine cannot know what the model computed; ``seofp export RUN``
writes the run again as version 2. A newer version is refused too (docs/MODEL_FILE.md).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seofp_lab.compress import codec
from seofp_lab.errors import ModelFileError
from seofp_lab.fsutil import write_bytes_atomic
from seofp_lab.infer import header as header_mod

MAGIC = b"SEOFP\0"
FORMAT_VERSION = 2
MAX_HEADER = 64 * 1024
MAX_TENSORS = 4096
MAX_NAME = 256
MAX_NDIM = 4
MAX_VALUES = 1 << 30
# the largest file a valid model can be: every value as fp32, a full header, a full table
MAX_FILE_BYTES = 4 * header_mod.MAX_MODEL_VALUES + MAX_HEADER + MAX_TENSORS * (MAX_NAME + 64) + 64
Storage = Literal["fp32", "codes", "sparse"]
_STORAGE: tuple[Storage, ...] = ("fp32", "codes", "sparse")
_ENTRY = struct.Struct("<BhBQQQ")  # storage, e_min, len, stored values, offset, byte length


@dataclass(frozen=True)
class Tensor:
    """One stored tensor: its float32 values and how they are stored."""

    values: np.ndarray  # float32, the tensor's shape
    storage: Storage = "fp32"
    e_min: int = 0  # code window (codes and sparse)
    length: int = 0


@dataclass(frozen=True)
class ModelFile:
    """A parsed ``.seofp`` file: header dictionary and named tensors, in file order."""

    header: dict[str, Any]
    tensors: dict[str, Tensor]
    size_bytes: int
    spec: header_mod.Header  # the header, checked and typed


def _encode_tensor(t: Tensor) -> tuple[Storage, int, bytes]:
    """(storage actually used, stored value count, bytes); ``sparse`` only when smaller."""
    flat = np.ascontiguousarray(t.values, np.float32).reshape(-1)
    if t.storage == "fp32":
        return "fp32", flat.size, flat.astype("<f4").tobytes()
    dense = codec.pack_seofp(flat, t.e_min, t.length)
    kept = flat.view(np.uint32) & 0x7FFF_FFFF != 0
    sparse_size = codec.packed_size_bytes(flat.size, 1) + codec.packed_size_bytes(
        int(kept.sum()), t.length + 1)
    if sparse_size < len(dense):
        return "sparse", int(kept.sum()), codec.pack_mask(kept) + codec.pack_seofp(
            flat[kept], t.e_min, t.length)
    return "codes", flat.size, dense


def serialize(header: dict[str, Any], tensors: dict[str, Tensor]) -> bytes:
    """The whole file as bytes; ``len(serialize(...))`` is the model's ``size_bytes``.

    The header must pass :func:`header.parse`: nothing is written that the reader would refuse.
    """
    header_mod.parse(header, "header to write")
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise ModelFileError(f"Expected a header of at most {MAX_HEADER} bytes but got {len(head)}")
    table, payload = bytearray(), bytearray()
    for name, t in tensors.items():
        raw = name.encode()
        if not 0 < len(raw) <= MAX_NAME or t.values.ndim > MAX_NDIM:
            raise ModelFileError(f"Expected a name of 1..{MAX_NAME} bytes and <= {MAX_NDIM} dims "
                                 f"but got {name!r} {t.values.shape}")
        try:
            storage, stored, blob = _encode_tensor(t)
        except ValueError as exc:  # codec: a value outside the tensor's window, not ±2^e, ...
            raise ModelFileError(f"Cannot store tensor {name!r}: {exc}") from None
        table += struct.pack("<H", len(raw)) + raw
        table += struct.pack(f"<B{t.values.ndim}I", t.values.ndim, *t.values.shape)
        table += _ENTRY.pack(_STORAGE.index(storage), t.e_min, t.length, stored, len(payload),
                             len(blob))
        payload += blob
    body = (MAGIC + struct.pack("<HI", FORMAT_VERSION, len(head)) + head
            + struct.pack("<I", len(tensors)) + table + payload)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def write(path: str | Path, header: dict[str, Any], tensors: dict[str, Tensor]) -> Path:
    """Write atomically (temporary file, then rename): never half a ``.seofp`` file."""
    path = Path(path)
    data = serialize(header, tensors)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return path


class _Reader:
    """Bounds-checked cursor: every read names the field it was reading."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFileError(f"{self.where}: expected {n} bytes of {field} at offset "
                                 f"{self.pos} but the file has {len(self.data)} bytes (truncated?)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, field: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), field))


def read(data: bytes, where: str = "<bytes>") -> ModelFile:
    """Parse and validate a ``.seofp`` file's bytes; raises ModelFileError on any defect."""
    r = _Reader(data, where)
    if r.take(len(MAGIC), "magic") != MAGIC:
        raise ModelFileError(f"{where}: expected magic {MAGIC!r} (a .seofp file) but got "
                             f"{data[:len(MAGIC)]!r}")
    (version,) = r.unpack("H", "format version")
    check_version(version, where)
    if len(data) < r.pos + 4:
        raise ModelFileError(f"{where}: expected at least {r.pos + 4} bytes but got {len(data)}")
    (crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise ModelFileError(f"{where}: expected CRC32 {crc:08x} but the content gives "
                             f"{zlib.crc32(data[:-4]):08x} (corrupted or truncated)")
    r.data = data[:-4]  # the CRC is not part of any field
    (head_len,) = r.unpack("I", "header length")
    if head_len > MAX_HEADER:
        raise ModelFileError(f"{where}: expected a header of at most {MAX_HEADER} bytes but got "
                             f"{head_len}")
    header = header_mod.decode_json(r.take(head_len, "header"), where)
    spec = header_mod.parse(header, where)
    (count,) = r.unpack("I", "tensor count")
    if count > MAX_TENSORS:
        raise ModelFileError(f"{where}: expected at most {MAX_TENSORS} tensors but got {count}")
    entries = [_read_entry(r, where) for _ in range(count)]
    _check_table(entries, header_mod.expected_tensors(spec), where)
    payload = r.data[r.pos:]
    tensors: dict[str, Tensor] = {}
    expected_offset = 0
    for name, shape, storage, e_min, length, stored, offset, nbytes in entries:
        if name in tensors:
            raise ModelFileError(f"{where}: expected unique tensor names but {name!r} repeats")
        if offset != expected_offset:
            raise ModelFileError(f"{where}: tensor {name!r}: expected offset {expected_offset} "
                                 f"but got {offset}")
        if offset + nbytes > len(payload):
            raise ModelFileError(f"{where}: tensor {name!r}: expected {nbytes} bytes at payload "
                                 f"offset {offset} but the payload has {len(payload)}")
        blob = payload[offset:offset + nbytes]
        tensors[name] = _decode(blob, name, shape, storage, e_min, length, stored, where)
        expected_offset = offset + nbytes
    if expected_offset != len(payload):
        raise ModelFileError(f"{where}: expected a payload of {expected_offset} bytes but got "
                             f"{len(payload)} (trailing bytes)")
    return ModelFile(header, tensors, len(data), spec)


def _check_table(entries: list[tuple[Any, ...]], expected: dict[str, tuple[int, ...]],
                 where: str) -> None:
    """The table against the header's tensors, before any payload is decoded: what is decoded is
    then bounded by the header's shapes (header.MAX_MODEL_VALUES), not by what a file declares."""
    names = [e[0] for e in entries]
    extra = [n for n in names if n not in expected]
    if extra:
        raise ModelFileError(f"{where}: tensor {header_mod.short(extra[0])} is not part of the "
                             f"model the header describes ({len(extra)} such tensors); a tensor "
                             f"the engine would not use is refused, not decoded")
    missing = [n for n in expected if n not in names]
    if missing:
        raise ModelFileError(f"{where}: expected tensor {missing[0]!r} of shape "
                             f"{expected[missing[0]]} but the file has none")
    for name, shape, *_ in entries:
        if tuple(shape) != expected[name]:
            raise ModelFileError(f"{where}: expected tensor {name!r} of shape {expected[name]} "
                                 f"but got {tuple(shape)}")


def check_version(version: int, where: str) -> None:
    """Refuse any version but :data:`FORMAT_VERSION`, saying what to do about it."""
    if version == FORMAT_VERSION:
        return
    if 0 < version < FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: format version {version} is older than this engine's {FORMAT_VERSION}; it "
            f"does not record every setting the engine needs (a mask model's mask_floor, the "
            f"features), so it is not run: re-export with `seofp export RUN`")
    raise ModelFileError(f"{where}: expected format version {FORMAT_VERSION} but got {version} "
                         f"(a newer seofp-lab wrote it, or it is not a .seofp file)")


def file_version(path: str | Path) -> int | None:
    """The format version a file says it has, or None for a file that is not a ``.seofp`` file."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(len(MAGIC) + 2)
    except OSError:
        return None
    if len(head) < len(MAGIC) + 2 or head[:len(MAGIC)] != MAGIC:
        return None
    return int(struct.unpack("<H", head[len(MAGIC):])[0])


def _read_entry(r: _Reader, where: str) -> tuple[Any, ...]:
    (name_len,) = r.unpack("H", "name length")
    if not 0 < name_len <= MAX_NAME:
        raise ModelFileError(f"{where}: expected a tensor name of 1..{MAX_NAME} bytes but got "
                             f"{name_len}")
    try:
        name = r.take(name_len, "tensor name").decode()
    except UnicodeDecodeError:
        raise ModelFileError(f"{where}: expected a UTF-8 tensor name at {r.pos}") from None
    (ndim,) = r.unpack("B", f"ndim of {name!r}")
    if ndim > MAX_NDIM:
        raise ModelFileError(f"{where}: tensor {name!r}: expected <= {MAX_NDIM} dims but got "
                             f"{ndim}")
    shape = r.unpack(f"{ndim}I", f"shape of {name!r}")
    values = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if values > MAX_VALUES:
        raise ModelFileError(f"{where}: tensor {name!r}: expected <= {MAX_VALUES} values but got "
                             f"shape {shape}")
    storage, e_min, length, stored, offset, nbytes = r.unpack(_ENTRY.format[1:], f"{name!r} entry")
    if storage >= len(_STORAGE):
        raise ModelFileError(f"{where}: tensor {name!r}: expected storage 0..2 but got {storage}")
    return name, shape, _STORAGE[storage], e_min, length, stored, offset, nbytes


def _decode(blob: bytes, name: str, shape: tuple[int, ...], storage: Storage, e_min: int,
            length: int, stored: int, where: str) -> Tensor:
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    what = f"{where}: tensor {name!r} ({storage})"
    if storage == "fp32":
        if stored != n or len(blob) != 4 * n:
            raise ModelFileError(f"{what}: expected {n} values in {4 * n} bytes but got {stored} "
                                 f"in {len(blob)}")
        values = np.frombuffer(blob, "<f4").astype(np.float32)
        if not np.isfinite(values).all():
            raise ModelFileError(f"{what}: expected finite values but got NaN or inf")
        return Tensor(values.reshape(shape), "fp32")
    if not 1 <= length <= codec.MAX_WIDTH - 1 or not -126 <= e_min <= 127:
        raise ModelFileError(f"{what}: expected code length 1..15 and e_min in [-126, 127] but "
                             f"got len={length}, e_min={e_min}")
    width = length + 1
    try:
        if storage == "codes":
            need = codec.packed_size_bytes(n, width)
            if stored != n or len(blob) != need:
                raise ModelFileError(f"{what}: expected {n} values in {need} bytes but got "
                                     f"{stored} in {len(blob)}")
            values = codec.unpack_seofp(blob, e_min, length, n)
        else:
            head = codec.packed_size_bytes(n, 1)
            need = head + codec.packed_size_bytes(stored, width)
            if stored > n or len(blob) != need:
                raise ModelFileError(f"{what}: expected {stored} <= {n} kept values in {need} "
                                     f"bytes but got {len(blob)}")
            kept = codec.unpack_mask(blob[:head], n)
            if int(kept.sum()) != stored:
                raise ModelFileError(f"{what}: expected {stored} kept values in the bitmap but "
                                     f"got {int(kept.sum())}")
            values = np.zeros(n, np.float32)
            values[kept] = codec.unpack_seofp(blob[head:], e_min, length, stored)
    except ValueError as exc:  # codec's range checks: bad word, signed zero, exponent overflow
        raise ModelFileError(f"{what}: {exc}") from None
    return Tensor(values.reshape(shape), storage, e_min, length)


def load(path: str | Path) -> ModelFile:
    """Read and validate a ``.seofp`` file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelFileError(f"{path}: expected a .seofp file of at most {MAX_FILE_BYTES:,} "
                                 f"bytes (the largest model the header limits allow) but it has "
                                 f"{size:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"Expected a readable .seofp file at {path} but got {exc}") from None
    return read(data, str(path))
