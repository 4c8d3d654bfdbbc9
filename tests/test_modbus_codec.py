"""Pure tests of the Modbus codec: golden register vectors, decoding plans, coalescing."""

from __future__ import annotations

import math
import struct
import time

import pytest

from edge_agent.connectors.modbus_codec import (
    BitDecoder,
    Block,
    DecodeError,
    FieldSpec,
    RegisterDecoder,
    coalesce,
    decode_value,
    encode_value,
    register_count,
    registers_to_bytes,
    swap_bytes,
)

F32 = struct.unpack(">f", struct.pack(">f", 123.456))[0]

#: (registers as on the wire, data_type, byte_order, word_order, value)
GOLDEN = [
    # float32 123.456 = 0x42F6E979 in the four layouts
    ([0x42F6, 0xE979], "float32", "big", "big", F32),        # ABCD
    ([0x79E9, 0xF642], "float32", "little", "little", F32),  # DCBA
    ([0xF642, 0x79E9], "float32", "little", "big", F32),     # BADC
    ([0xE979, 0x42F6], "float32", "big", "little", F32),     # CDAB
    # int32 -123456789 = 0xF8A432EB
    ([0xF8A4, 0x32EB], "int32", "big", "big", -123456789),
    ([0x32EB, 0xF8A4], "int32", "big", "little", -123456789),
    ([0xEB32, 0xA4F8], "int32", "little", "little", -123456789),
    ([0xA4F8, 0xEB32], "int32", "little", "big", -123456789),
    # uint32 3,000,000,000 = 0xB2D05E00
    ([0xB2D0, 0x5E00], "uint32", "big", "big", 3_000_000_000),
    ([0x5E00, 0xB2D0], "uint32", "big", "little", 3_000_000_000),
    # int64 -1234567890123 = 0xFFFFFEE08E04FB35
    ([0xFFFF, 0xFEE0, 0x8E04, 0xFB35], "int64", "big", "big", -1234567890123),
    ([0xFB35, 0x8E04, 0xFEE0, 0xFFFF], "int64", "big", "little", -1234567890123),
    ([0x35FB, 0x048E, 0xE0FE, 0xFFFF], "int64", "little", "little", -1234567890123),
    ([0xFFFF, 0xE0FE, 0x048E, 0x35FB], "int64", "little", "big", -1234567890123),
    # uint64 2**64 - 2
    ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], "uint64", "big", "big", 2**64 - 2),
    # float64 1.0 = 0x3FF0000000000000, -2.5 = 0xC004000000000000
    ([0x3FF0, 0, 0, 0], "float64", "big", "big", 1.0),
    ([0, 0, 0, 0xF03F], "float64", "little", "little", 1.0),
    ([0, 0, 0, 0xC004], "float64", "big", "little", -2.5),
    ([0x04C0, 0, 0, 0], "float64", "little", "big", -2.5),
    # 16-bit
    ([0xFFFE], "int16", "big", "big", -2),
    ([0xFEFF], "int16", "little", "big", -2),
    ([0xD431], "uint16", "big", "big", 54321),
    ([0x31D4], "uint16", "little", "little", 54321),
]


@pytest.mark.parametrize(("registers", "data_type", "byte_order", "word_order", "value"), GOLDEN)
def test_golden_decode(registers: list[int], data_type: str, byte_order: str, word_order: str,
                       value: float) -> None:
    assert decode_value(registers, data_type, byte_order, word_order) == value


@pytest.mark.parametrize(("registers", "data_type", "byte_order", "word_order", "value"), GOLDEN)
def test_golden_encode(registers: list[int], data_type: str, byte_order: str, word_order: str,
                       value: float) -> None:
    assert encode_value(value, data_type, byte_order, word_order) == registers


def test_strings() -> None:
    # "ABC" in 3 registers: 0x4142 0x4300 0x0000 (trailing NULs dropped)
    assert decode_value([0x4142, 0x4300, 0x0000], "string", length=3) == "ABC"
    # byte-swapped registers (byte_order little): 0x4241 0x0043
    assert decode_value([0x4241, 0x0043], "string", "little", length=2) == "ABC"
    assert decode_value([0, 0], "string", length=2) == ""
    assert decode_value([0x4142, 0x2020], "string", length=2) == "AB  "  # spaces are kept
    assert encode_value("ABC", "string", length=3) == [0x4142, 0x4300, 0x0000]
    assert encode_value("ABC", "string", "little", length=2) == [0x4241, 0x0043]
    assert decode_value(encode_value("Grüße", "string", length=4), "string", length=4) == "Grüße"
    with pytest.raises(ValueError, match="do not fit"):
        encode_value("too long", "string", length=2)


def test_bits_and_scaling() -> None:
    word = [0b1010_0000_0000_0101]
    assert [decode_value(word, "bit", bit=b) for b in (0, 1, 2, 13, 14, 15)] == [True, False, True, True, False,
                                                                                    True]
    assert decode_value([1000], "uint16", scale=0.1, offset=-20) == pytest.approx(80.0)
    assert decode_value([0xFFFE], "int16", scale=2.0) == -4.0
    assert decode_value([0x3FF0, 0, 0, 0], "float64", offset=1.5) == 2.5


def test_nan_and_infinity_pass_through() -> None:
    assert math.isnan(float(decode_value([0x7FC0, 0], "float32")))
    assert decode_value([0x7F80, 0], "float32") == math.inf


@pytest.mark.parametrize("data_type", ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                                       "float64"])
@pytest.mark.parametrize(("byte_order", "word_order"), [("big", "big"), ("little", "little"), ("little", "big"),
                                                        ("big", "little")])
def test_round_trip(data_type: str, byte_order: str, word_order: str) -> None:
    value = {"int16": -12345, "uint16": 65000, "int32": -2_000_000_001, "uint32": 4_000_000_001,
             "int64": -(2**62) - 7, "uint64": 2**64 - 12345, "float32": 0.5, "float64": math.pi}[data_type]
    registers = encode_value(value, data_type, byte_order, word_order)
    assert len(registers) == register_count(data_type)
    assert decode_value(registers, data_type, byte_order, word_order) == value


def test_block_mixing_orders_types_and_overlaps() -> None:
    registers = (encode_value(1.5, "float32") + encode_value(-2.25, "float32", "little", "little")
                 + encode_value(3.75, "float32", "little", "big") + encode_value(-4.5, "float32", "big", "little")
                 + encode_value("Hi", "string", length=1) + [0] * 3  # a gap of 3 registers
                 + encode_value(-7, "int64", "big", "little") + [0x8001])
    fields = [  # deliberately not in address order, with two overlapping views of the same registers
        FieldSpec("float32", 6, "big", "little"),
        FieldSpec("float32", 0),
        FieldSpec("uint16", 0),
        FieldSpec("float32", 4, "little", "big"),
        FieldSpec("string", 8, length=1),
        FieldSpec("float32", 2, "little", "little"),
        FieldSpec("int64", 12, "big", "little", scale=10.0),
        FieldSpec("bit", 16, bit=15),
        FieldSpec("bit", 16, bit=0),
        FieldSpec("bit", 16, bit=1),
    ]
    decoder = RegisterDecoder(fields, len(registers))
    values = decoder.decode(registers_to_bytes(registers))
    assert list(values) == [-4.5, 1.5, 0x3FC0, 3.75, "Hi", -2.25, -70.0, True, True, False]


def test_block_of_one_order_is_one_struct() -> None:
    registers = [r for i in range(62) for r in encode_value(float(i), "float32")]
    decoder = RegisterDecoder([FieldSpec("float32", 2 * i) for i in range(62)])
    raw = registers_to_bytes(registers)
    assert list(decoder.decode(raw)) == [float(i) for i in range(62)]
    assert decoder.unpacks == 1
    # the four orders in one block: two buffers (raw, swapped) x two struct orders
    orders = [("big", "big"), ("little", "little"), ("little", "big"), ("big", "little")]
    mixed = RegisterDecoder([FieldSpec("float32", 2 * i, *orders[i % 4]) for i in range(8)])
    assert mixed.unpacks == 4
    mixed_raw = registers_to_bytes([r for i in range(8) for r in encode_value(float(i), "float32", *orders[i % 4])])
    assert list(mixed.decode(mixed_raw)) == [float(i) for i in range(8)]
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        decoder.decode(raw)
    per_tag = (time.perf_counter() - started) / (n * 62)
    print(f"\nRegisterDecoder: {per_tag * 1e9:.0f} ns per float32 in a block of 62")  # a figure, not a check


def test_decoder_rejects_short_responses_and_bad_fields() -> None:
    decoder = RegisterDecoder([FieldSpec("float32", 2)])
    assert decoder.count == 4
    with pytest.raises(DecodeError):
        decoder.decode(b"\x00" * 6)
    with pytest.raises(ValueError, match="outside the block"):
        RegisterDecoder([FieldSpec("float64", 0)], 3)
    with pytest.raises(ValueError, match="bit"):
        RegisterDecoder([FieldSpec("bit", 0)])
    with pytest.raises(ValueError, match="length"):
        register_count("string")
    with pytest.raises(ValueError, match="unknown data type"):
        register_count("float16")


def test_bit_decoder() -> None:
    # 20 coils: bits 0, 3, 9 and 19 set -> bytes LSB first
    raw = bytes([0b0000_1001, 0b0000_0010, 0b0000_1000])
    decoder = BitDecoder([0, 1, 3, 9, 19, 18], 20)
    assert decoder.decode(raw) == [True, False, True, True, True, False]
    with pytest.raises(DecodeError):
        decoder.decode(raw[:2])
    with pytest.raises(ValueError):
        BitDecoder([20], 20)


def test_swap_bytes() -> None:
    assert swap_bytes(b"\x01\x02\x03\x04") == b"\x02\x01\x04\x03"


def test_coalesce() -> None:
    # contiguous float32s: one read
    assert coalesce([(0, 2), (2, 2), (4, 2)], 0, 125) == [Block(0, 6, (0, 1, 2))]
    # a hole of 4: filled with max_gap 4, not with 3
    assert coalesce([(0, 2), (6, 2)], 4, 125) == [Block(0, 8, (0, 1))]
    assert coalesce([(0, 2), (6, 2)], 3, 125) == [Block(0, 2, (0,)), Block(6, 2, (1,))]
    # unordered input, overlapping spans share a read; members come back in address order
    assert coalesce([(10, 1), (0, 4), (2, 1), (3, 2)], 0, 125) == [Block(0, 5, (1, 2, 3)), Block(10, 1, (0,))]
    # the limit: 63 float32 do not fit 125 registers
    blocks = coalesce([(2 * i, 2) for i in range(63)], 0, 125)
    assert [(b.address, b.count, len(b.members)) for b in blocks] == [(0, 124, 62), (124, 2, 1)]
    with pytest.raises(ValueError, match="does not fit"):
        coalesce([(0, 126)], 0, 125)
    assert coalesce([], 5, 125) == []
