"""The connector interface: read signals from one device or broker and hand them on as Readings.

A connector owns its connection: it connects, subscribes or polls, reconnects with backoff by
itself after any failure, and never raises out of `run` for a device problem. While the device is
unreachable it reports every signal once with quality BAD (the value it last had is not
repeated as good), and it counts what happened in `stats`.

A connector hands on a `Sequence[Reading]`: a list of Reading objects, or a `Readings` made of
`ReadingBatch`es (several signals with one source time, quality and receive time, e.g. one Modbus
block read), which spares an object per tag; the mapper treats both alike, signal by signal.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import overload

from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import Quality, Value


@dataclass(slots=True)
class Reading:
    """One value of one signal of one source, as the protocol delivered it.

    Not frozen on purpose: one is made per tag and poll, and a frozen dataclass costs about three
    times as much to construct (~1.3 against ~0.45 us here). Treat it as read-only all the same.
    """

    signal: str
    value: Value
    #: The device's timestamp if it has one (OPC UA source timestamp), else the receive time.
    source_time: datetime
    quality: Quality = Quality.GOOD
    received: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class ReadingBatch:
    """Values of several signals that share one source time, quality and receive time (one Modbus block
    read, say): one object per batch instead of one Reading per tag, which cost more than mapping the tag.
    Each value keeps the per-tag meaning of a Reading."""

    signals: Sequence[str]
    values: Sequence[Value]
    source_time: datetime
    quality: Quality = Quality.GOOD
    #: Defaults to `source_time` (a device without timestamps: the value is stamped when it arrived).
    received: datetime | None = None

    def readings(self) -> list[Reading]:
        received = self.source_time if self.received is None else self.received
        return list(map(Reading, self.signals, self.values, repeat(self.source_time), repeat(self.quality),
                        repeat(received)))


class Readings(Sequence[Reading]):
    """What a connector emits, held as ReadingBatches (and single Readings) in arrival order.

    A Sequence of Reading objects to anyone who iterates it (built on first use); the mapper reads the
    batches themselves. A connector may emit a plain list of Readings instead: both mean the same.
    """

    __slots__ = ("_flat", "_len", "parts")

    def __init__(self) -> None:
        self.parts: list[ReadingBatch | Reading] = []
        self._len = 0
        self._flat: list[Reading] | None = None

    def add(self, signals: Sequence[str], values: Sequence[Value], source_time: datetime,
            quality: Quality = Quality.GOOD, received: datetime | None = None) -> None:
        """`values[i]` of `signals[i]`; both of the same length (checked, a mismatch is a connector bug)."""
        if len(signals) != len(values):
            raise ValueError(f"{len(signals)} signals but {len(values)} values")
        self.parts.append(ReadingBatch(signals, values, source_time, quality, received))
        self._len += len(signals)
        self._flat = None

    def append(self, reading: Reading) -> None:
        self.parts.append(reading)
        self._len += 1
        self._flat = None

    def extend(self, readings: Sequence[Reading]) -> None:
        if isinstance(readings, Readings):
            self.parts.extend(readings.parts)
            self._len += len(readings)
            self._flat = None
        else:
            for reading in readings:
                self.append(reading)

    def __len__(self) -> int:
        return self._len

    def _readings(self) -> list[Reading]:
        if self._flat is None:
            self._flat = list(chain.from_iterable(
                [part] if isinstance(part, Reading) else part.readings() for part in self.parts))
        return self._flat

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> list[Reading]: ...

    def __getitem__(self, index: int | slice) -> Reading | list[Reading]:
        return self._readings()[index]

    def __iter__(self) -> Iterator[Reading]:
        return iter(self._readings())

    def __repr__(self) -> str:
        return f"Readings({self._readings()!r})"


Emit = Callable[[Sequence[Reading]], Awaitable[None]]


class Backoff(BaseModel):
    """Reconnect delays: exponential from `initial` to `maximum` seconds, with jitter."""

    model_config = ConfigDict(extra="forbid")
    initial: float = Field(default=0.5, gt=0)
    maximum: float = Field(default=30.0, gt=0)

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (0.8 + 0.4 * random.random())
            delay = min(delay * 2, self.maximum)


@dataclass
class ConnectorStats:
    readings: int = 0
    errors: int = 0
    reconnects: int = 0
    connected: bool = False
    last_error: str = ""
    #: Per-signal problems that a user must fix (unknown node, illegal address, bad payload).
    signal_errors: dict[str, str] = field(default_factory=dict)


class Connector(ABC):
    """One configured source. `name` is the source's name in the agent config."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = ConnectorStats()

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Read until cancelled; reconnect by itself. Only cancellation ends it."""

    @abstractmethod
    def signals(self) -> Sequence[str]:
        """The signal names this connector produces (its configured tags/nodes/topics)."""

    def accepts(self, signal: str) -> bool:
        """Whether a binding may name `signal`: connectors with name templates (MQTT wildcards) know
        more names than `signals()` lists before the first message."""
        return signal in self.signals()

    async def read_once(self, timeout: float = 10.0) -> list[Reading]:
        """Connect, read every signal once, disconnect (for `twinedge agent check`)."""
        readings: list[Reading] = []
        wanted = set(self.signals())
        done = asyncio.Event()

        async def collect(batch: Sequence[Reading]) -> None:
            readings.extend(batch)
            if wanted <= {r.signal for r in readings}:
                done.set()

        task = asyncio.create_task(self.run(collect))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        latest: dict[str, Reading] = {}
        for reading in readings:
            latest[reading.signal] = reading
        return list(latest.values())

    def bad_readings(self, reason: str) -> list[Reading]:
        """Every signal once with quality BAD: what the connector emits when the device goes away."""
        now = datetime.now(UTC)
        self.stats.last_error = reason
        return [Reading(s, None, now, Quality.BAD, now) for s in self.signals()]
