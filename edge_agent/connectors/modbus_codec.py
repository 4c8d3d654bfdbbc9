"""Modbus register decoding and read coalescing: pure functions, no I/O, no pymodbus.

Byte and word order
-------------------
A value of several registers is stored as its big-endian bytes (A B C D for a float32), rearranged
by two independent settings:

* ``word_order="little"`` reverses the order of the 16-bit words (C D A B);
* ``byte_order="little"`` swaps the two bytes inside every word (B A D C).

Both little gives D C B A. The four float32 layouts are therefore ABCD (big, big), DCBA (little,
little), BADC (byte little, word big) and CDAB (byte big, word little); int64/float64 follow the
same rules over four words. Strings are the bytes as they come (``byte_order="little"`` swaps the
two characters of each register), trailing NULs removed; ``bit`` is one bit of a register.

Speed
-----
:class:`RegisterDecoder` compiles a read block into a few :class:`struct.Struct` objects once, so
decoding a response is one ``unpack_from`` per lane (usually one for the whole block) and no work
per tag beyond that. The trick: with the wire bytes ``raw`` and ``swapped`` (every register's two
bytes exchanged), each value is a plain struct code read from one of the two buffers, with the
struct's byte order equal to the word order:

=================  =========  ========================
byte / word order  buffer     struct order
=================  =========  ========================
big / big          raw        ``>`` (ABCD)
little / little    raw        ``<`` (DCBA)
little / big       swapped    ``>`` (BADC)
big / little       swapped    ``<`` (CDAB)
=================  =========  ========================
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, get_args

DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bit"]
Order = Literal["big", "little"]
Table = Literal["holding", "input", "coil", "discrete"]

DATA_TYPES: tuple[str, ...] = get_args(DataType)
#: Tables that hold 16-bit registers; the others hold single bits.
REGISTER_TABLES = frozenset({"holding", "input"})
BIT_TABLES = frozenset({"coil", "discrete"})
#: Protocol limits of one read request (Modbus application protocol 1.1b3, 6.1 to 6.4).
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000

_CODE: dict[str, str] = {
    "int16": "h", "uint16": "H", "bit": "H",
    "int32": "i", "uint32": "I", "float32": "f",
    "int64": "q", "uint64": "Q", "float64": "d",
}
_REGISTERS: dict[str, int] = {
    "int16": 1, "uint16": 1, "bit": 1,
    "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}

#: What a decoded tag is: numbers, str for strings, bool for bits.
DecodedValue = float | int | str | bool


class DecodeError(ValueError):
    """A response does not fit the block it answers (too short)."""


def register_count(data_type: str, length: int | None = None) -> int:
    """Registers one value of `data_type` occupies (`length` registers for a string)."""
    if data_type == "string":
        if not length or length < 1:
            raise ValueError("a string needs its length in registers")
        return length
    try:
        return _REGISTERS[data_type]
    except KeyError:
        raise ValueError(f"unknown data type {data_type!r}; one of {', '.join(DATA_TYPES)}") from None


def swap_bytes(raw: bytes) -> bytes:
    """`raw` with the two bytes of every 16-bit register exchanged."""
    words = array("H")
    words.frombytes(raw)
    words.byteswap()
    return words.tobytes()


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """Registers as they travel on the wire (big-endian words)."""
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(raw: bytes) -> list[int]:
    if len(raw) % 2:
        raise ValueError("register data has an odd number of bytes")
    return list(struct.unpack(f">{len(raw) // 2}H", raw))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One value inside a read block. `start` counts registers from the block's first register."""

    data_type: str
    start: int
    byte_order: str = "big"
    word_order: str = "big"
    #: String length in registers.
    length: int | None = None
    #: Bit number (0 = least significant) for data_type "bit".
    bit: int | None = None
    scale: float = 1.0
    offset: float = 0.0


def _string(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


def _bit_of(bit: int) -> Callable[[int], bool]:
    mask = 1 << bit

    def get(value: int) -> bool:
        return value & mask != 0

    return get


def _linear(scale: float, offset: float) -> Callable[[float], float]:
    if offset == 0.0:
        def scaled(value: float) -> float:
            return value * scale
        return scaled

    def transformed(value: float) -> float:
        return value * scale + offset

    return transformed


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    swapped: bool
    order: str
    byte_start: int
    code: str
    size: int


class RegisterDecoder:
    """A compiled decoding plan for one block of `count` registers.

    ``decode(raw)`` returns the values in the order of the `fields` given, ready to use: scaled,
    bits as bool, strings as str.
    """

    __slots__ = ("_lanes", "_post", "_reorder", "_single", "_swap", "count", "nbytes")

    def __init__(self, fields: Sequence[FieldSpec], count: int | None = None) -> None:
        if not fields:
            raise ValueError("a block needs at least one field")
        ends = [f.start + register_count(f.data_type, f.length) for f in fields]
        self.count = count if count is not None else max(ends)
        self.nbytes = 2 * self.count
        entries: list[_Entry] = []
        post: list[tuple[int, Callable[[Any], DecodedValue]]] = []  # bytes -> str, int -> bool, scaling
        for i, (f, end) in enumerate(zip(fields, ends, strict=True)):
            if f.start < 0 or end > self.count:
                raise ValueError(f"field {i} ({f.data_type} at {f.start}) lies outside the block of {self.count}")
            size = 2 * (end - f.start)
            if f.data_type == "string":
                entries.append(_Entry(i, f.byte_order == "little", ">", 2 * f.start, f"{size}s", size))
                post.append((i, _string))
                continue
            code = _CODE[f.data_type]
            if size == 2:
                entries.append(_Entry(i, False, ">" if f.byte_order == "big" else "<", 2 * f.start, code, size))
            else:
                entries.append(_Entry(i, f.byte_order != f.word_order, ">" if f.word_order == "big" else "<",
                                      2 * f.start, code, size))
            if f.data_type == "bit":
                if f.bit is None or not 0 <= f.bit <= 15:
                    raise ValueError(f"field {i}: a bit needs its number 0..15")
                post.append((i, _bit_of(f.bit)))
            elif f.scale != 1.0 or f.offset != 0.0:
                post.append((i, _linear(f.scale, f.offset)))

        # Group by (buffer, struct order); inside a group, values that do not overlap share one
        # struct ("lane"), padding the gaps with "x"; overlapping ones open another lane.
        groups: dict[tuple[bool, str], list[_Entry]] = {}
        for e in entries:
            groups.setdefault((e.swapped, e.order), []).append(e)
        lanes: list[tuple[struct.Struct, int, bool]] = []
        produced: list[int] = []
        for (swapped, order), group in sorted(groups.items()):
            open_lanes: list[list[_Entry]] = []
            for e in sorted(group, key=lambda x: (x.byte_start, x.index)):
                for lane in open_lanes:
                    last = lane[-1]
                    if last.byte_start + last.size <= e.byte_start:
                        lane.append(e)
                        break
                else:
                    open_lanes.append([e])
            for lane in open_lanes:
                fmt = [order]
                pos = lane[0].byte_start
                for e in lane:
                    if e.byte_start > pos:
                        fmt.append(f"{e.byte_start - pos}x")
                    fmt.append(e.code)
                    pos = e.byte_start + e.size
                    produced.append(e.index)
                lanes.append((struct.Struct("".join(fmt)), lane[0].byte_start, swapped))
        self._lanes = tuple(lanes)
        self._single = lanes[0] if len(lanes) == 1 else None
        self._swap = any(swapped for _, _, swapped in lanes)
        where = {field: pos for pos, field in enumerate(produced)}
        self._reorder = (None if produced == list(range(len(fields)))
                         else itemgetter(*(where[i] for i in range(len(fields)))))
        self._post = tuple(post)

    @property
    def unpacks(self) -> int:
        """``struct`` unpack calls per decode (one per lane; one when all fields share an order)."""
        return len(self._lanes)

    def decode(self, raw: bytes) -> Sequence[DecodedValue]:
        """Values of the fields from the block's register bytes as they came off the wire."""
        if len(raw) < self.nbytes:
            raise DecodeError(f"response has {len(raw) // 2} registers, the block needs {self.count}")
        swapped = swap_bytes(raw[:self.nbytes]) if self._swap else raw
        values: Sequence[Any]
        if self._single is not None:
            lane, start, use_swapped = self._single
            values = lane.unpack_from(swapped if use_swapped else raw, start)
        else:
            collected: tuple[Any, ...] = ()
            for lane, start, use_swapped in self._lanes:
                collected += lane.unpack_from(swapped if use_swapped else raw, start)
            values = collected
        if self._reorder is not None:
            values = self._reorder(values)
        if self._post:
            out = list(values)
            for i, fn in self._post:
                out[i] = fn(out[i])
            return out
        return values


class BitDecoder:
    """Decoding plan for a block of coils or discrete inputs: `starts` are bit offsets in the block."""

    __slots__ = ("_pos", "count", "nbytes")

    def __init__(self, starts: Sequence[int], count: int | None = None) -> None:
        if not starts:
            raise ValueError("a block needs at least one bit")
        self.count = count if count is not None else max(starts) + 1
        if min(starts) < 0 or max(starts) >= self.count:
            raise ValueError(f"bit offsets must lie in 0..{self.count - 1}")
        self.nbytes = (self.count + 7) // 8
        self._pos = tuple((s >> 3, s & 7) for s in starts)

    def decode(self, raw: bytes) -> list[bool]:
        """Bits from a coil/discrete-input response's data bytes (first bit = LSB of byte 0)."""
        if len(raw) < self.nbytes:
            raise DecodeError(f"response has {len(raw)} bytes of bits, the block needs {self.nbytes}")
        return [(raw[b] >> s) & 1 == 1 for b, s in self._pos]


def decode_value(registers: Sequence[int], data_type: str, byte_order: str = "big", word_order: str = "big",
                 length: int | None = None, bit: int | None = None, scale: float = 1.0,
                 offset: float = 0.0) -> DecodedValue:
    """One value from its registers (convenience; the connector uses a compiled RegisterDecoder)."""
    spec = FieldSpec(data_type, 0, byte_order, word_order, length, bit, scale, offset)
    return RegisterDecoder([spec], len(registers)).decode(registers_to_bytes(registers))[0]


def encode_value(value: float | str | bytes, data_type: str, byte_order: str = "big", word_order: str = "big",
                 length: int | None = None) -> list[int]:
    """Registers holding `value` (the inverse of decode_value; for simulators and tests).

    Integers must fit the type; strings are UTF-8, NUL-padded to `length` registers.
    """
    if data_type == "bit":
        raise ValueError("a bit is set in a register, not encoded on its own")
    n = register_count(data_type, length)
    if data_type == "string":
        text = value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        if len(text) > 2 * n:
            raise ValueError(f"{len(text)} bytes do not fit {n} registers")
        data = text.ljust(2 * n, b"\x00")
        return bytes_to_registers(swap_bytes(data) if byte_order == "little" else data)
    data = struct.pack(">" + _CODE[data_type], value)
    if n > 1 and word_order == "little":
        data = b"".join(data[i:i + 2] for i in range(len(data) - 2, -1, -2))
    if byte_order == "little":
        data = swap_bytes(data)
    return bytes_to_registers(data)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers (or bits) from `address`, covering the spans `members`."""

    address: int
    count: int
    members: tuple[int, ...]


def coalesce(spans: Sequence[tuple[int, int]], max_gap: int, max_count: int) -> list[Block]:
    """Group (address, count) spans of one unit and table into as few reads as possible.

    Spans are merged while the hole between them is at most `max_gap` and the read stays within
    `max_count`; overlapping spans share a read. Returns blocks in address order; `members` are
    indices into `spans`, in address order.
    """
    if max_count < 1 or max_gap < 0:
        raise ValueError("max_count must be >= 1 and max_gap >= 0")
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], i))
    blocks: list[Block] = []
    members: list[int] = []
    start = end = 0
    for i in order:
        address, count = spans[i]
        if count < 1 or count > max_count:
            raise ValueError(f"span {i} of {count} does not fit one read of at most {max_count}")
        if members and address - end <= max_gap and max(end, address + count) - start <= max_count:
            members.append(i)
            end = max(end, address + count)
            continue
        if members:
            blocks.append(Block(start, end - start, tuple(members)))
        members = [i]
        start, end = address, address + count
    if members:
        blocks.append(Block(start, end - start, tuple(members)))
    return blocks
