"""Modbus TCP and RTU connector (pymodbus 3.16 asyncio client).

One connector is one device connection: a TCP host/port (a device or a gateway) or one serial
line, with any number of unit ids behind it. Each poll reads the configured tags in as few
requests as possible: tags of the same unit and table are coalesced into reads of at most
`max_registers` registers (2000 bits for coils and discrete inputs), reading across holes of up to
`max_gap` registers. Every read block has a decoding plan compiled once (see `modbus_codec`), and
the client hands back the raw response bytes instead of a list of registers, so a poll costs one
request per block and one ``struct.unpack_from`` per block, whatever the number of tags.

Configuration (one entry of the agent's ``sources``)::

    - type: modbus
      name: press1-plc
      host: 10.0.0.21            # transport: tcp (default); port 502
      unit_id: 1                 # default for the tags; a tag may name its own
      poll_interval: 0.5         # seconds
      max_gap: 8                 # unused registers a coalesced read may span
      tags:
        - {signal: pressure, address: 100, data_type: float32, word_order: little}   # CDAB
        - {signal: counter, address: 104, data_type: uint32}
        - {signal: temp, table: input, address: 0, data_type: int16, scale: 0.1}
        - {signal: pump_on, table: coil, address: 12}
        - {signal: alarm, address: 110, data_type: bit, bit: 3}
        - {signal: recipe, address: 120, data_type: string, length: 8}
        - {signal: drive_speed, address: 0, data_type: float32, unit_id: 7}
    - type: modbus
      name: line-rtu
      transport: rtu
      serial_port: /dev/ttyUSB0
      baudrate: 19200            # parity N, stopbits 1, bytesize 8 by default
      tags: [...]

Addresses are 0-based protocol addresses (holding register 40001 is ``address: 0``). Tables:
``holding`` (default), ``input``, ``coil``, ``discrete``. ``byte_order``/``word_order`` are
``big`` (default) or ``little``; see ``modbus_codec`` for the four float32 layouts they give.
``scale``/``offset`` apply to numbers: value = raw * scale + offset.

Errors
------
* Modbus exception 1, 2 or 3 (illegal function, address or value) on a block: the block is split
  until the tags that cause it are found; those are reported once with quality BAD and a message in
  ``stats.signal_errors`` (tag, table, address, unit id), and retried every `FAILED_TAG_RETRY`
  seconds; the rest of the block keeps being read.
* Other exceptions (device failure, busy, gateway) and time-outs of single blocks: that block's
  tags go BAD once, the others keep running.
* The connection drops, or no block answers at all: every signal is reported BAD once, then the
  connector reconnects by itself with backoff. ``stats.connected`` means the device answers (a
  serial port opens fine with nothing behind it); ``stats.reconnects`` counts the recoveries.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from aas_models.timeseries.base import Quality
from edge_agent.connectors.base import Backoff, Connector, Emit, Reading, Readings
from edge_agent.connectors.modbus_codec import (
    BIT_TABLES,
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    BitDecoder,
    DataType,
    DecodeError,
    FieldSpec,
    Order,
    RegisterDecoder,
    Table,
    coalesce,
    register_count,
)

log = logging.getLogger(__name__)

#: Seconds between new attempts at tags the device refused (illegal address/function).
FAILED_TAG_RETRY = 60.0
#: Exception codes that a retry will not fix: the tag's configuration is wrong for this device.
CONFIG_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value"}
EXCEPTION_NAMES = {
    **CONFIG_EXCEPTIONS,
    4: "server device failure", 5: "acknowledge", 6: "server device busy", 8: "memory parity error",
    10: "gateway path unavailable", 11: "gateway target device failed to respond",
}

UnitId = Annotated[int, Field(ge=0, le=255)]


class ModbusTag(BaseModel):
    """One value of the device. `address` is 0-based (the protocol address, not 40001-style)."""

    model_config = ConfigDict(extra="forbid")
    signal: str = Field(min_length=1)
    table: Table = "holding"
    address: int = Field(ge=0, le=65535)
    #: Overrides the source's unit_id.
    unit_id: UnitId | None = None
    #: Defaults to "bit" for coils and discrete inputs, "uint16" for registers.
    data_type: DataType = "uint16"
    byte_order: Order = "big"
    word_order: Order = "big"
    #: Registers of a string.
    length: int | None = Field(default=None, ge=1, le=MAX_READ_REGISTERS)
    #: Bit 0..15 of a register (data_type "bit" on holding/input registers).
    bit: int | None = Field(default=None, ge=0, le=15)
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _default_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and "data_type" not in data and data.get("table") in BIT_TABLES:
            return {**data, "data_type": "bit"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModbusTag:
        bits_table = self.table in BIT_TABLES
        if bits_table and self.data_type != "bit":
            raise ValueError(f"data_type: a {self.table} is a single bit, use data_type bit (or leave it out)")
        if self.bit is not None and (bits_table or self.data_type != "bit"):
            raise ValueError("bit: only for data_type bit on holding or input registers"
                             + (f" (a {self.table} is already one bit)" if bits_table else ""))
        if not bits_table and self.data_type == "bit" and self.bit is None:
            raise ValueError("bit: data_type bit on a register needs the bit number 0..15")
        if self.data_type == "string" and self.length is None:
            raise ValueError("length: a string needs its length in registers (2 characters each)")
        if self.length is not None and self.data_type != "string":
            raise ValueError("length: only for data_type string")
        if (self.scale != 1.0 or self.offset != 0.0) and self.data_type in ("string", "bit"):
            raise ValueError(f"scale: scale and offset only apply to numbers, not to data_type {self.data_type}")
        if self.address + self.registers - 1 > 65535:
            raise ValueError(f"address: {self.data_type} at {self.address} needs {self.registers} registers "
                             "and runs past the last address 65535")
        return self

    @property
    def registers(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the tag occupies."""
        return 1 if self.data_type == "bit" else register_count(self.data_type, self.length)


class ModbusSourceConfig(BaseModel):
    """A Modbus device (or gateway, or serial line) and the tags to poll from it."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["modbus"]
    name: str = Field(min_length=1)
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit_id: UnitId = 1
    #: Seconds between polls.
    poll_interval: float = Field(default=1.0, gt=0)
    #: Seconds to wait for a connection or an answer.
    timeout: float = Field(default=3.0, gt=0)
    #: Resends of a request that got no answer before it counts as failed.
    retries: int = Field(default=1, ge=0, le=10)
    #: Unused registers a coalesced read may span between two tags (bits: 16 per register).
    max_gap: int = Field(default=8, ge=0, le=MAX_READ_REGISTERS)
    #: Largest register read; some devices want fewer than the protocol's 125.
    max_registers: int = Field(default=MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)
    #: Largest coil/discrete-input read.
    max_bits: int = Field(default=MAX_READ_BITS, ge=1, le=MAX_READ_BITS)
    backoff: Backoff = Backoff()
    tags: list[ModbusTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ModbusSourceConfig:
        if self.transport == "tcp" and not self.host:
            raise ValueError("host: a tcp source needs the device's host name or address")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("serial_port: an rtu source needs the serial device, e.g. /dev/ttyUSB0")
        seen: dict[str, int] = {}
        for i, tag in enumerate(self.tags):
            if tag.signal in seen:
                raise ValueError(f"tags[{i}].signal: {tag.signal!r} is already used by tags[{seen[tag.signal]}]")
            seen[tag.signal] = i
            if tag.table not in BIT_TABLES and tag.registers > self.max_registers:
                raise ValueError(f"tags[{i}].length: {tag.registers} registers exceed max_registers "
                                 f"{self.max_registers}")
        return self


# -- raw responses ----------------------------------------------------------------------------
# Registered on each client in place of pymodbus's own read responses: they keep the data bytes
# as received instead of building a list of ints (and formatting it for a debug log line).

class _RawResponse(ModbusPDU):
    rtu_byte_count_pos = 2
    raw: bytes = b""

    def decode(self, data: bytes) -> None:
        size = data[0]
        if size >= len(data):
            raise ModbusIOException(f"byte count {size} > length of packet {len(data)}",
                                    function_code=self.function_code)
        self.raw = data[1:1 + size]

    def __str__(self) -> str:
        return f"{type(self).__name__}(dev_id={self.dev_id}, {len(self.raw)} bytes)"


class _RawCoils(_RawResponse):
    function_code = 1


class _RawDiscreteInputs(_RawResponse):
    function_code = 2


class _RawHoldingRegisters(_RawResponse):
    function_code = 3


class _RawInputRegisters(_RawResponse):
    function_code = 4


_READ_METHOD: dict[str, str] = {
    "coil": "read_coils", "discrete": "read_discrete_inputs",
    "holding": "read_holding_registers", "input": "read_input_registers",
}
_WHAT: dict[str, str] = {
    "coil": "coil", "discrete": "discrete input", "holding": "holding register", "input": "input register",
}


@dataclass(eq=False)
class _Block:
    unit_id: int
    table: str
    address: int
    count: int
    tags: tuple[ModbusTag, ...]
    signals: tuple[str, ...]
    decoder: RegisterDecoder | BitDecoder
    method: str
    #: BAD was emitted for this block's tags after a failed read (reset by a good read).
    bad: bool = False


class _ConnectionLost(Exception):
    pass


class _CancelGuard:
    """Re-raises a cancellation that was swallowed.

    On Python 3.11, ``asyncio.wait_for`` (which pymodbus awaits every request and connect with)
    returns the result, or raises the request's own error, instead of CancelledError when the
    answer arrives in the same loop iteration as the cancel. The cancel is then used up: the next
    ``asyncio.sleep`` (a poll interval, a backoff delay of up to a minute) would run in full, and a
    fast poll loop might never stop. The task still counts the request (``Task.cancelling()``), so
    the connector checks that count after every request and before every sleep. Counting from the
    value at start-up keeps a cancel the caller handled earlier from stopping the connector.
    """

    __slots__ = ("_baseline", "_task")

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._baseline = self._task.cancelling() if self._task is not None else 0

    def check(self) -> None:
        if self._task is not None and self._task.cancelling() > self._baseline:
            raise asyncio.CancelledError


def _exception_name(code: int) -> str:
    return f"Modbus exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})"


class ModbusConnector(Connector):
    """Polls the tags of one Modbus TCP/RTU connection; see the module docstring."""

    def __init__(self, config: ModbusSourceConfig) -> None:
        super().__init__(config.name)
        self.config = config
        self._signals = [t.signal for t in config.tags]
        self._units = {t.signal: config.unit_id if t.unit_id is None else t.unit_id for t in config.tags}
        self.initial_plan: list[_Block] = self.plan(config.tags)
        self._plan: list[_Block] = []
        #: Tags the device refused, each as a one-tag block, with the time of the next attempt.
        self._failed: dict[str, tuple[_Block, float]] = {}
        #: Requests of the current poll that got an answer (data or a Modbus exception).
        self._answers = 0
        self._guard: _CancelGuard | None = None
        #: The device has answered at least once (later recoveries count as reconnects).
        self._ever_up = False

    def signals(self) -> Sequence[str]:
        return self._signals

    # -- planning -------------------------------------------------------------------------------
    def plan(self, tags: Sequence[ModbusTag]) -> list[_Block]:
        """The read blocks for `tags`: per unit id and table, coalesced within the limits."""
        groups: dict[tuple[int, str], list[ModbusTag]] = {}
        for tag in tags:
            groups.setdefault((self._units[tag.signal], tag.table), []).append(tag)
        blocks: list[_Block] = []
        for (unit, table), members in sorted(groups.items()):
            bits = table in BIT_TABLES
            max_count = self.config.max_bits if bits else self.config.max_registers
            max_gap = self.config.max_gap * 16 if bits else self.config.max_gap
            for b in coalesce([(t.address, t.registers) for t in members], max_gap, max_count):
                chosen = tuple(members[i] for i in b.members)
                decoder: RegisterDecoder | BitDecoder
                if bits:
                    decoder = BitDecoder([t.address - b.address for t in chosen], b.count)
                else:
                    decoder = RegisterDecoder(
                        [FieldSpec(t.data_type, t.address - b.address, t.byte_order, t.word_order, t.length,
                                   t.bit, t.scale, t.offset) for t in chosen], b.count)
                blocks.append(_Block(unit, table, b.address, b.count, chosen, tuple(t.signal for t in chosen),
                                     decoder, _READ_METHOD[table]))
        return blocks

    # -- connection -----------------------------------------------------------------------------
    def _client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        cfg = self.config
        holder: list[AsyncModbusTcpClient | AsyncModbusSerialClient] = []

        def on_connection(up: bool) -> None:
            # A request in flight when the link drops would otherwise wait for its time-out.
            if not up and holder:
                pending = getattr(holder[0].ctx, "response_future", None)
                if isinstance(pending, asyncio.Future) and not pending.done():
                    pending.set_exception(ConnectionException("connection lost"))

        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if cfg.transport == "tcp":
            assert cfg.host is not None
            client = AsyncModbusTcpClient(cfg.host, port=cfg.port, name=cfg.name, timeout=cfg.timeout,
                                          retries=cfg.retries, reconnect_delay=0, trace_connect=on_connection)
        else:
            assert cfg.serial_port is not None
            client = AsyncModbusSerialClient(cfg.serial_port, framer=FramerType.RTU, baudrate=cfg.baudrate,
                                             bytesize=cfg.bytesize, parity=cfg.parity, stopbits=cfg.stopbits,
                                             name=cfg.name, timeout=cfg.timeout, retries=cfg.retries,
                                             reconnect_delay=0, trace_connect=on_connection)
        holder.append(client)
        for raw in (_RawCoils, _RawDiscreteInputs, _RawHoldingRegisters, _RawInputRegisters):
            client.register(raw)
        return client

    def _where(self) -> str:
        cfg = self.config
        return f"{cfg.host}:{cfg.port}" if cfg.transport == "tcp" else str(cfg.serial_port)

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        self._guard = guard = _CancelGuard()
        delays = self.config.backoff.delays()
        reported_down = False
        while True:
            client = self._client()
            try:
                opened = await client.connect()
                guard.check()
                if not opened:
                    raise _ConnectionLost(f"cannot connect to {self._where()}")
                self._plan = list(self.initial_plan)
                self._failed.clear()
                next_poll = loop.time()
                while True:
                    await self._poll(client, emit)
                    if reported_down:
                        reported_down = False
                        delays = self.config.backoff.delays()
                    next_poll += self.config.poll_interval
                    now = loop.time()
                    if next_poll < now:  # overran: start again now, no catching up
                        next_poll = now
                    guard.check()
                    await asyncio.sleep(next_poll - now)
            except (_ConnectionLost, ModbusException, OSError) as exc:
                reason = str(exc) or type(exc).__name__
                self.stats.errors += 1
                self.stats.connected = False
                self.stats.last_error = reason
                if not reported_down:
                    reported_down = True
                    log.warning("modbus %s: %s; reconnecting", self.name, reason)
                    for block in self.initial_plan:  # all BAD now: a block failing later need not repeat it
                        block.bad = True
                    await emit(self.bad_readings(f"{self._where()}: {reason}"))
            finally:
                self.stats.connected = False
                client.close()
            guard.check()
            await asyncio.sleep(next(delays))

    # -- polling --------------------------------------------------------------------------------
    def _came_up(self) -> None:
        """The device answers (again). Counted here, not when the socket or serial port opens: a serial
        port opens fine while the device behind it is silent."""
        self.stats.connected = True
        if self._ever_up:
            self.stats.reconnects += 1
        self._ever_up = True
        log.info("modbus %s: %s answers", self.name, self._where())

    def _check_cancelled(self) -> None:
        if self._guard is not None:
            self._guard.check()

    async def _poll(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, emit: Emit) -> None:
        out = Readings()
        self._answers = 0
        plan = self._plan
        changed = False
        new_plan: list[_Block] = []
        for block in plan:
            replacement = await self._process(client, block, out)
            if replacement is None:
                new_plan.append(block)
            else:
                changed = True
                new_plan.extend(replacement)
        if plan and not self._answers:
            raise _ConnectionLost(f"no answer from {self._where()} to any request")
        if not self.stats.connected:
            self._came_up()
        if changed:
            self._plan = new_plan
        if self._failed:
            await self._retry_failed(client, out)
        if out:
            self.stats.readings += len(out)
            await emit(out)

    async def _process(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: _Block,
                       out: Readings) -> list[_Block] | None:
        """Read one block into `out`. None keeps the block; a list replaces it (split or dropped tags)."""
        try:
            response: ModbusPDU = await getattr(client, block.method)(block.address, count=block.count,
                                                                      device_id=block.unit_id)
        except ConnectionException:
            raise
        except ModbusIOException as exc:  # no (usable) answer in time
            self._check_cancelled()
            self._block_failed(block, f"{self._describe(block)}: {exc}", out)
            return None
        except (ModbusException, OSError):
            raise
        except Exception as exc:  # a client bug, not the device: log it, reconnect, keep the source alive
            log.exception("modbus %s: reading %s failed", self.name, self._describe(block))
            raise _ConnectionLost(f"internal error reading {self._describe(block)}: {exc!r}") from exc
        self._check_cancelled()
        self._answers += 1
        if response.isError():
            code = response.exception_code
            if code in CONFIG_EXCEPTIONS:
                return await self._isolate(client, block, code, out)
            self._block_failed(block, f"{self._describe(block)}: {_exception_name(code)}", out)
            return None
        try:
            values = block.decoder.decode(response.raw)  # type: ignore[attr-defined]
        except (DecodeError, AttributeError) as exc:
            self._block_failed(block, f"{self._describe(block)}: unusable answer: {exc}", out)
            return None
        out.add(block.signals, values, datetime.now(UTC))
        block.bad = False
        return None

    async def _isolate(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: _Block, code: int,
                       out: Readings) -> list[_Block]:
        """The device refused `block`: split it to find the refused tags; the rest keep being read."""
        if len(block.tags) == 1:
            tag = block.tags[0]
            message = (f"{_WHAT[block.table]} {tag.address} ({tag.data_type}, {tag.registers} "
                       f"{'bit' if block.table in BIT_TABLES else 'register'}{'s' if tag.registers > 1 else ''}) "
                       f"on unit {block.unit_id}: the device answered {_exception_name(code)}; "
                       "check the tag's table, address and unit_id")
            self.stats.errors += 1
            self.stats.last_error = f"tag {tag.signal!r}: {message}"
            block.bad = True  # reported below (or already): a failed retry must not repeat it
            self._failed[tag.signal] = (block, time.monotonic() + FAILED_TAG_RETRY)
            if self.stats.signal_errors.get(tag.signal) != message:  # new: report it once
                log.warning("modbus %s: tag %r: %s", self.name, tag.signal, message)
                self.stats.signal_errors[tag.signal] = message
                now = datetime.now(UTC)
                out.append(Reading(tag.signal, None, now, Quality.BAD, now))
            return []
        half = len(block.tags) // 2
        kept: list[_Block] = []
        for part in (block.tags[:half], block.tags[half:]):
            for sub in self.plan(part):
                replacement = await self._process(client, sub, out)
                kept.extend([sub] if replacement is None else replacement)
        return kept

    async def _retry_failed(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient,
                            out: Readings) -> None:
        now = time.monotonic()
        for signal, (block, due) in list(self._failed.items()):
            if due > now:
                continue
            del self._failed[signal]
            replacement = await self._process(client, block, out)
            if replacement is None and not block.bad:
                self.stats.signal_errors.pop(signal, None)
                self._plan.append(block)
                log.info("modbus %s: tag %r reads again", self.name, signal)
            elif replacement is None:
                self._failed[signal] = (block, now + FAILED_TAG_RETRY)

    def _block_failed(self, block: _Block, reason: str, out: Readings) -> None:
        self.stats.errors += 1
        self.stats.last_error = reason
        if not block.bad:
            block.bad = True
            log.warning("modbus %s: %s", self.name, reason)
            now = datetime.now(UTC)
            out.add(block.signals, (None,) * len(block.signals), now, Quality.BAD)

    def _describe(self, block: _Block) -> str:
        unit = "bits" if block.table in BIT_TABLES else "registers"
        return (f"{_WHAT[block.table]}s {block.address}..{block.address + block.count - 1} ({block.count} {unit}) "
                f"on unit {block.unit_id}")


class ModbusSetupError(RuntimeError):
    """This installation cannot serve the source as configured (says what to install)."""


def create(config: ModbusSourceConfig, environ: Mapping[str, str] | None = None) -> ModbusConnector:
    """The connector for one `type: modbus` source (Modbus needs no secrets: `environ` is unused)."""
    del environ
    if config.transport == "rtu" and importlib.util.find_spec("serial") is None:
        raise ModbusSetupError(f"source {config.name!r}: transport rtu needs pyserial; install it with "
                               "`pip install pyserial` (or pymodbus[serial])")
    return ModbusConnector(config)

