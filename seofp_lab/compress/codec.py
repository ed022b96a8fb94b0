"""Bit packing and exact sizes of sign/exponent codes (docs/method.md#exponent-range-reduction);
numpy only.

A rounded weight ``±2^e`` of a group with window ``[e_min, e_min + 2^len - 2]`` is stored as one
word ``(sign << len) | code`` with ``code = e - e_min + 1`` and code 0 for zero, i.e. ``1 + len``
bits per weight. Words are packed into an LSB-first little-endian bitstream: value ``i`` occupies
stream bits ``[i * width, (i + 1) * width)``, its bit ``j`` at stream bit ``i * width + j``, and
stream bit ``k`` is bit ``k % 8`` of byte ``k // 8``. The last byte is zero-padded.

The ``.seofp`` model file (``seofp_lab/infer/modelfile.py``) builds on these functions.
"""

from __future__ import annotations

import numpy as np

MAX_WIDTH = 16  # words are uint16: a sign bit + a code of at most 15 bits
E_NORMAL_MIN, E_NORMAL_MAX = -126, 127  # unbiased exponents of normal float32 values
_EXP_MASK, _MANT_MASK, _SIGN = 0x7F80_0000, 0x007F_FFFF, 0x8000_0000


def packed_size_bytes(count: int, bits_per_value: int) -> int:
    """Bytes taken by ``count`` values of ``bits_per_value`` bits, padded to a whole byte.

    >>> packed_size_bytes(10, 6)
    8
    """
    if count < 0 or bits_per_value < 0:
        raise ValueError(
            f"Expected count >= 0 and bits_per_value >= 0 but got {count}, {bits_per_value}"
        )
    return (count * bits_per_value + 7) // 8


def _check_width(width: int) -> None:
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"Expected a bit width in [1, {MAX_WIDTH}] but got {width}")


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Pack unsigned integers ``< 2**width`` into an LSB-first bitstream.

    Args:
        values: (n,) (any shape is flattened in C order) non-negative integers.
        width: bits per value, 1..16.

    Returns:
        ``packed_size_bytes(n, width)`` bytes.

    >>> pack_bits(np.array([1, 2, 3]), 2).hex()  # 01 | 10 << 2 | 11 << 4
    '39'
    """
    _check_width(width)
    v = np.asarray(values)
    if v.size and not np.issubdtype(v.dtype, np.integer):
        raise ValueError(f"Expected integer values but got dtype {v.dtype}")
    v = v.reshape(-1).astype(np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << width):
        raise ValueError(
            f"Expected values in [0, {(1 << width) - 1}] for width {width} "
            f"but got [{v.min()}, {v.max()}]"
        )
    bits = ((v[:, None] >> np.arange(width, dtype=np.int64)) & 1).astype(np.uint8)
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def unpack_bits(buf: bytes | bytearray | memoryview, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``count`` values of ``width`` bits.

    Returns:
        (count,) uint8 when ``width <= 8``, else uint16.

    Raises:
        ValueError: the buffer holds fewer than ``count * width`` bits.

    >>> unpack_bits(bytes([0x39]), 2, 3)
    array([1, 2, 3], dtype=uint8)
    """
    _check_width(width)
    if count < 0:
        raise ValueError(f"Expected count >= 0 but got {count}")
    raw = np.frombuffer(buf, dtype=np.uint8)
    need = packed_size_bytes(count, width)
    if raw.size < need:
        raise ValueError(
            f"Expected at least {need} bytes for {count} values of {width} bits "
            f"but got {raw.size}"
        )
    bits = np.unpackbits(raw[:need], count=count * width, bitorder="little")
    weights = (1 << np.arange(width, dtype=np.uint32)).astype(np.uint32)
    out = bits.reshape(count, width).astype(np.uint32) @ weights
    return out.astype(np.uint8 if width <= 8 else np.uint16)


def _float_bits(q: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(q)
    if a.dtype != np.float32:
        raise ValueError(f"Expected a float32 array of {what} but got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError(f"Expected finite {what} but got NaN or inf")
    return np.ascontiguousarray(a).reshape(-1).view(np.uint32)


def _powers_of_two(u: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(nonzero mask, unbiased exponents of the non-zeros) of float32 bit patterns ``u``."""
    nz = (u & ~np.uint32(_SIGN)) != 0  # -0.0 counts as zero
    e_field = (u[nz] & np.uint32(_EXP_MASK)) >> np.uint32(23)
    bad = ((u[nz] & np.uint32(_MANT_MASK)) != 0) | (e_field == 0)
    if bad.any():
        example = u[nz][bad][0:1].view(np.float32)[0]
        raise ValueError(
            f"Expected {what} to be ±2^e (normal) or 0 but got {int(bad.sum())} other values, "
            f"e.g. {example!r}"
        )
    return nz, e_field.astype(np.int32) - 127


def exponent_range(q: np.ndarray) -> tuple[int, int] | None:
    """(e_min, e_max) of the non-zeros of a rounded float32 array; None if all are zero.

    >>> exponent_range(np.array([0.25, -4.0, 0.0], np.float32))
    (-2, 2)
    """
    nz, e = _powers_of_two(_float_bits(q, "rounded values"), "rounded values")
    if not nz.any():
        return None
    return int(e.min()), int(e.max())


def code_length(e_min: int, e_max: int) -> int:
    """Bits of the exponent code: ``ceil(log2(e_max - e_min + 2))``
    (docs/method.md#exponent-range-reduction).

    >>> code_length(-23, 0), code_length(-26, 10)  # the paper's BLSTM and FCN
    (5, 6)
    """
    if not E_NORMAL_MIN <= e_min <= e_max <= E_NORMAL_MAX:
        raise ValueError(
            f"Expected {E_NORMAL_MIN} <= e_min <= e_max <= {E_NORMAL_MAX} "
            f"but got e_min={e_min}, e_max={e_max}"
        )
    return (e_max - e_min + 1).bit_length()  # codes 0..e_max-e_min+1


def _check_window(e_min: int, length: int) -> None:
    if not 1 <= length <= MAX_WIDTH - 1:
        raise ValueError(f"Expected a code length in [1, {MAX_WIDTH - 1}] but got {length}")
    if not E_NORMAL_MIN <= e_min <= E_NORMAL_MAX:
        raise ValueError(f"Expected e_min in [{E_NORMAL_MIN}, {E_NORMAL_MAX}] but got {e_min}")


def encode_seofp(q: np.ndarray, e_min: int, length: int) -> np.ndarray:
    """Words ``(sign << length) | code`` of rounded values; ±0 becomes word 0.

    Args:
        q: float32 values, each ±2^e with ``e_min <= e <= e_min + 2^length - 2``, or ±0.
        e_min: the group's smallest exponent (code 1).
        length: code bits, 1..15.

    Returns:
        uint16 words, same shape as ``q``.

    >>> encode_seofp(np.array([0.25, -1.0, 0.0], np.float32), -2, 2)
    array([1, 7, 0], dtype=uint16)
    """
    _check_window(e_min, length)
    u = _float_bits(q, "values to encode")
    nz, e = _powers_of_two(u, "values to encode")
    code = e - e_min + 1
    top = (1 << length) - 1
    if code.size and (code.min() < 1 or code.max() > top):
        raise ValueError(
            f"Expected exponents in [{e_min}, {e_min + top - 1}] (e_min={e_min}, len={length}) "
            f"but got [{e.min() if e.size else None}, {e.max() if e.size else None}]"
        )
    words = np.zeros(u.shape, np.uint16)
    sign = (u[nz] >> np.uint32(31)).astype(np.uint16)
    words[nz] = (sign << np.uint16(length)) | code.astype(np.uint16)
    return words.reshape(np.shape(q))


def decode_seofp(words: np.ndarray, e_min: int, length: int) -> np.ndarray:
    """Inverse of :func:`encode_seofp`: ``(-1)^s 2^(e_min + code - 1)``, code 0 -> +0.

    Raises:
        ValueError: a word wider than ``1 + length`` bits, a signed zero code (never written),
            or an exponent outside the normal float32 range.

    >>> decode_seofp(np.array([1, 7, 0], np.uint16), -2, 2)
    array([ 0.25, -1.  ,  0.  ], dtype=float32)
    """
    _check_window(e_min, length)
    w = np.asarray(words)
    if w.size and (not np.issubdtype(w.dtype, np.integer) or w.min() < 0):
        raise ValueError(f"Expected non-negative integer words but got dtype {w.dtype}")
    w = w.astype(np.uint32)
    if w.size and w.max() >= 1 << (length + 1):
        raise ValueError(f"Expected words < {1 << (length + 1)} (len={length}) but got {w.max()}")
    code = (w & np.uint32((1 << length) - 1)).astype(np.int64)
    sign = w >> np.uint32(length)
    if ((code == 0) & (sign == 1)).any():
        raise ValueError("Expected code 0 (zero) with sign 0 but got a signed zero word")
    e = e_min + code - 1
    nz = code != 0
    if nz.any() and (e[nz].max() > E_NORMAL_MAX):
        raise ValueError(
            f"Expected exponents <= {E_NORMAL_MAX} but e_min={e_min} and code {code.max()} "
            f"give {e[nz].max()}"
        )
    bits = np.where(nz, (sign << np.uint32(31)) | ((e + 127).astype(np.uint32) << 23), 0)
    return bits.astype(np.uint32).view(np.float32).reshape(w.shape)


def pack_seofp(q: np.ndarray, e_min: int, length: int) -> bytes:
    """Encode rounded values and pack their ``1 + length``-bit words (flattened, C order)."""
    return pack_bits(encode_seofp(q, e_min, length).reshape(-1), length + 1)


def unpack_seofp(buf: bytes | bytearray | memoryview, e_min: int, length: int,
                 count: int) -> np.ndarray:
    """Inverse of :func:`pack_seofp`: (count,) float32."""
    return decode_seofp(unpack_bits(buf, length + 1, count), e_min, length)


def pack_mask(mask: np.ndarray) -> bytes:
    """A pruning bitmap: bit 1 = kept, 0 = pruned; one bit per value, LSB-first."""
    m = np.asarray(mask).reshape(-1)
    return np.packbits(m.astype(bool), bitorder="little").tobytes()


def unpack_mask(buf: bytes | bytearray | memoryview, count: int) -> np.ndarray:
    """Inverse of :func:`pack_mask`: (count,) bool."""
    return unpack_bits(buf, 1, count).astype(bool)
