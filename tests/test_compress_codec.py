"""Bit packing and sign/exponent codes (docs/method.md#exponent-range-reduction): round trips, known
bytes, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seofp_lab.compress import codec


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 16), st.lists(st.integers(0, 2**16 - 1), max_size=70))
def test_pack_unpack_round_trip_every_width(width: int, raw: list[int]) -> None:
    values = np.array(raw, np.int64) % (1 << width)
    buf = codec.pack_bits(values, width)
    assert len(buf) == codec.packed_size_bytes(len(values), width)
    back = codec.unpack_bits(buf, width, len(values))
    assert back.dtype == (np.uint8 if width <= 8 else np.uint16)
    assert np.array_equal(back.astype(np.int64), values)


def test_pack_is_lsb_first_little_endian() -> None:
    # 3-bit values 5 (101), 3 (011), 7 (111): stream bits 1,0,1, 1,1,0, 1,1,1 -> 0xDD, 0x01
    assert codec.pack_bits(np.array([5, 3, 7]), 3) == bytes([0b1101_1101, 0b0000_0001])
    assert codec.pack_bits(np.array([0x1234]), 16) == bytes([0x34, 0x12])
    assert codec.pack_bits(np.array([], np.int64), 5) == b""


def test_unpack_refuses_a_short_buffer() -> None:
    with pytest.raises(ValueError, match="Expected at least 2 bytes"):
        codec.unpack_bits(b"\x00", 3, 4)


@pytest.mark.parametrize(("values", "width"), [([4], 2), ([-1], 3), ([1], 0), ([1], 17)])
def test_pack_refuses_values_or_widths_out_of_range(values: list[int], width: int) -> None:
    with pytest.raises(ValueError, match="Expected"):
        codec.pack_bits(np.array(values), width)


def test_code_length_of_the_papers_ranges() -> None:
    assert codec.code_length(-23, 0) == 5  # BLSTM: 6 bits per weight
    assert codec.code_length(-26, 10) == 6  # FCN: 7 bits per weight
    assert codec.code_length(3, 3) == 1  # one exponent plus zero
    assert codec.code_length(0, 2) == 2 and codec.code_length(0, 3) == 3  # 4 codes fit 2 bits
    assert codec.code_length(-126, 127) == 8
    with pytest.raises(ValueError):
        codec.code_length(1, 0)


def test_exponent_range_and_refusals() -> None:
    assert codec.exponent_range(np.array([0.0, -0.0], np.float32)) is None
    assert codec.exponent_range(np.array([2.0**-126, -(2.0**127)], np.float32)) == (-126, 127)
    with pytest.raises(ValueError, match="±2\\^e"):
        codec.exponent_range(np.array([0.75], np.float32))
    with pytest.raises(ValueError, match="finite"):
        codec.exponent_range(np.array([np.inf], np.float32))
    with pytest.raises(ValueError, match="float32"):
        codec.exponent_range(np.array([1.0]))


def test_encode_known_words_and_zero() -> None:
    q = np.array([[0.125, -0.125], [2.0, -0.0]], np.float32)
    words = codec.encode_seofp(q, -3, 3)  # codes: e + 4
    assert words.shape == (2, 2)
    assert words.tolist() == [[1, 0b1001], [5, 0]]  # -0.0 is stored as +0
    assert np.array_equal(codec.decode_seofp(words, -3, 3), np.array([[0.125, -0.125], [2, 0]],
                                                                      np.float32))


def test_encode_refuses_values_outside_the_window() -> None:
    with pytest.raises(ValueError, match="Expected exponents in"):
        codec.encode_seofp(np.array([4.0], np.float32), 0, 1)  # window {2^0} only
    with pytest.raises(ValueError, match="±2\\^e"):
        codec.encode_seofp(np.array([3.0], np.float32), 0, 3)


def test_decode_refuses_corrupted_words() -> None:
    with pytest.raises(ValueError, match="signed zero"):
        codec.decode_seofp(np.array([0b100], np.uint16), 0, 2)
    with pytest.raises(ValueError, match="Expected words <"):
        codec.decode_seofp(np.array([8], np.uint16), 0, 2)
    with pytest.raises(ValueError, match="<= 127"):
        codec.decode_seofp(np.array([3], np.uint16), 126, 2)  # 2^128 is not a float32


@settings(max_examples=60, deadline=None)
@given(st.integers(-126, 127), st.integers(1, 8), st.data())
def test_seofp_codes_round_trip(e_min: int, length: int, data: st.DataObject) -> None:
    top = min(e_min + (1 << length) - 2, 127)
    exps = data.draw(st.lists(st.integers(e_min, top), max_size=40))
    signs = data.draw(st.lists(st.booleans(), min_size=len(exps), max_size=len(exps)))
    zeros = data.draw(st.lists(st.booleans(), min_size=len(exps), max_size=len(exps)))
    q = np.array([0.0 if z else (-1.0 if s else 1.0) * 2.0**e
                  for e, s, z in zip(exps, signs, zeros, strict=True)], np.float32)
    buf = codec.pack_seofp(q, e_min, length)
    assert len(buf) == codec.packed_size_bytes(len(q), 1 + length)
    back = codec.unpack_seofp(buf, e_min, length, len(q))
    assert np.array_equal(back.view(np.uint32), q.view(np.uint32))


def test_masks_round_trip() -> None:
    mask = np.array([1, 0, 0, 1, 1, 1, 0, 1, 1], bool)
    buf = codec.pack_mask(mask)
    assert buf == bytes([0b1011_1001, 0b1])
    assert np.array_equal(codec.unpack_mask(buf, 9), mask)
