"""The agent at run time: connectors feed the mapper, the mapper feeds the buffer, one forwarder
per sink drains the buffer at its own pace. Every part recovers by itself; only `stop` ends it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from edge_agent.buffer import Buffer
from edge_agent.connectors.base import Backoff, Connector, Emit, Reading
from edge_agent.mapping import Mapper
from edge_agent.metrics import MetricsConfig, serve
from edge_agent.sinks.base import Sink, SinkError, SinkRejected

log = logging.getLogger(__name__)


@dataclass
class Pace:
    """How forwarders batch: wait up to `flush_interval` s to gather up to `batch_size` samples (a sink
    reads whole appended batches, so a write may hold more when one append was larger)."""

    flush_interval: float = 0.5
    batch_size: int = 5000
    heartbeat_check: float = 1.0
    compact_interval: float = 30.0


class Agent:
    def __init__(self, connectors: Sequence[Connector], mapper: Mapper, buffer: Buffer, sinks: Sequence[Sink],
                 *, pace: Pace | None = None, backoff: Backoff | None = None,
                 metrics: MetricsConfig | None = None) -> None:
        self.connectors = list(connectors)
        self.mapper = mapper
        self.buffer = buffer
        self.sinks = list(sinks)
        self.pace = pace or Pace()
        self.backoff = backoff or Backoff()
        self.metrics = metrics
        self.appended = 0
        self._wake = {sink.name: asyncio.Event() for sink in self.sinks}
        self.metrics_port: int | None = None
        self._source_tasks: list[asyncio.Task[None]] = []

    async def _on_readings(self, source: str, readings: Sequence[Reading]) -> None:
        samples = self.mapper.map(source, readings)
        self._append(samples)

    def _emitter(self, source: str) -> Emit:
        async def emit(readings: Sequence[Reading]) -> None:
            await self._on_readings(source, readings)

        return emit

    def _append(self, samples: Sequence[Any]) -> None:
        if not samples:
            return
        self.buffer.append(samples)
        self.appended += len(samples)
        for event in self._wake.values():
            event.set()

    async def _forward(self, sink: Sink) -> None:
        wake = self._wake[sink.name]
        delays = self.backoff.delays()
        failing = False
        while True:
            batch = self.buffer.read(sink.name, self.pace.batch_size)
            if batch is None:
                wake.clear()
                await wake.wait()
                await asyncio.sleep(self.pace.flush_interval)
                continue
            try:
                await sink.write(batch.samples)
            except SinkRejected as exc:
                sink.stats.rejected += len(batch.samples)
                sink.stats.last_error = str(exc)
                log.warning("sink %s rejected %d samples: %s", sink.name, len(batch.samples), exc)
            except SinkError as exc:
                failing = True
                sink.stats.errors += 1
                sink.stats.last_error = str(exc)
                delay = next(delays)
                log.warning("sink %s: %s; retrying in %.1f s", sink.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            else:
                sink.stats.written += len(batch.samples)
                sink.stats.batches += 1
                if failing:
                    sink.stats.reconnects += 1
                    sink.stats.last_error = ""
                    failing = False
            delays = self.backoff.delays()
            self.buffer.ack(sink.name, batch.last_seq)
            # Reads take whole appended batches, so a short read does not mean the sink caught up: wait
            # to gather more only when less than a full batch is waiting.
            if self.buffer.depth(sink.name) < self.pace.batch_size:
                await asyncio.sleep(self.pace.flush_interval)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.pace.heartbeat_check)
            self._append(self.mapper.due(datetime.now(UTC)))

    async def _compact(self) -> None:
        while True:
            await asyncio.sleep(self.pace.compact_interval)
            self.buffer.compact()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        self.buffer.open([sink.name for sink in self.sinks])
        for sink in self.sinks:
            await sink.open()
        server = None
        if self.metrics and self.metrics.enabled:
            server = await serve(self.metrics, self.snapshot)
            self.metrics_port = server.sockets[0].getsockname()[1]
        self._source_tasks = [asyncio.create_task(c.run(self._emitter(c.name)), name=c.name)
                              for c in self.connectors]
        tasks: list[asyncio.Task[Any]] = list(self._source_tasks)
        tasks += [asyncio.create_task(self._forward(s), name=f"sink {s.name}") for s in self.sinks]
        tasks += [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._compact())]
        try:
            if stop is None:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if server is not None:
                server.close()
            for sink in self.sinks:
                await sink.close()
            self.buffer.close()

    async def stop_sources(self) -> None:
        """Stop reading (sinks keep forwarding what is buffered): for an orderly shutdown with `drain`."""
        for task in self._source_tasks:
            task.cancel()
        await asyncio.gather(*self._source_tasks, return_exceptions=True)

    async def drain(self, timeout: float) -> bool:
        """Wait until every sink has everything appended so far (demo and tests); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all(self.buffer.depth(s.name) == 0 for s in self.sinks):
                return True
            for event in self._wake.values():
                event.set()
            await asyncio.sleep(0.05)
        return False

    def snapshot(self) -> dict[str, Any]:
        sources = {c.name: {k: v for k, v in asdict(c.stats).items() if k != "signal_errors"}
                   | {"signal_errors": len(c.stats.signal_errors)} for c in self.connectors}
        sinks = {s.name: asdict(s.stats) | {"depth": self.buffer.depth(s.name)} for s in self.sinks}
        mapping = {k: v for k, v in asdict(self.mapper.stats).items() if k != "unbound_signals"}
        return {
            "time": datetime.now(UTC).isoformat(),
            "sources": sources,
            "sinks": sinks,
            "mapping": mapping,
            "buffer": {"appended": self.appended, "dropped": self.buffer.dropped()},
            "problems": {c.name: dict(c.stats.signal_errors) for c in self.connectors if c.stats.signal_errors},
        }
