"""The OPC UA connector against real servers: asyncua's (in-process thread) and node-opcua (Node.js)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aas_models.timeseries.base import Quality
from edge_agent.connectors import opcua
from edge_agent.connectors.base import Reading
from edge_agent.connectors.opcua import OpcUaConfigError, OpcUaConnector, OpcUaNode, OpcUaSourceConfig, create
from tests.opcua_peers import (  # noqa: F401 - the imports register the fixtures
    AsyncuaServer,
    Certificates,
    NodeOpcuaServer,
    asyncua_server_fixture,
    make_asyncua_server_fixture,
    make_certificates,
    node_opcua_server_fixture,
    opcua_certificates_fixture,
)


def run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


class Collector:
    """The `emit` callback: keeps every reading, lets a test wait for one."""

    def __init__(self, delay: float = 0.0) -> None:
        self.readings: list[Reading] = []
        self.batches = 0
        self.delay = delay
        self._changed = asyncio.Event()

    async def __call__(self, batch: Sequence[Reading]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.readings.extend(batch)
        self.batches += 1
        self._changed.set()

    def of(self, signal: str) -> list[Reading]:
        return [r for r in self.readings if r.signal == signal]

    def values(self, signal: str) -> list[Any]:
        return [r.value for r in self.of(signal)]

    async def wait(self, predicate: Callable[[Reading], bool], timeout: float = 5.0, start: int = 0) -> Reading:
        """The first reading from index `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        seen = start
        while True:
            for reading in self.readings[seen:]:
                if predicate(reading):
                    return reading
            seen = max(seen, len(self.readings))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching reading within {timeout} s; got {self.readings[start:]!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def signal(self, signal: str, timeout: float = 5.0, start: int = 0) -> Reading:
        return await self.wait(lambda r: r.signal == signal, timeout, start)

    async def value(self, signal: str, value: Any, timeout: float = 5.0, start: int = 0) -> Reading:
        return await self.wait(lambda r: r.signal == signal and r.value == value, timeout, start)


def source(endpoint: str, nodes: list[dict[str, Any]], **options: Any) -> OpcUaSourceConfig:
    return OpcUaSourceConfig.model_validate({
        "type": "opcua", "name": "press1", "endpoint": endpoint, "timeout": 2.0,
        "backoff": {"initial": 0.1, "maximum": 0.4}, "nodes": nodes, **options,
    })


class Running:
    """A connector running in the background of the test's event loop."""

    def __init__(self, connector: OpcUaConnector, emit: Collector) -> None:
        self.connector = connector
        self.emit = emit
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.connector.run(self.emit))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # surface a crash
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


# --------------------------------------------------------------------------- configuration


def test_config_errors_name_the_field() -> None:
    good = {"name": "p", "endpoint": "opc.tcp://h:4840", "nodes": [{"signal": "t", "node_id": "ns=2;i=1"}]}
    cfg = OpcUaSourceConfig.model_validate({"type": "opcua", **good})
    assert cfg.nodes[0].mode == "subscribe" and cfg.security_policy == "None"

    cases: list[tuple[dict[str, Any], tuple[Any, ...], str]] = [
        ({**good, "nodes": [{"signal": "t", "node_id": "Press1.Temp"}]}, ("nodes", 0, "node_id"), "ns=2;s="),
        ({**good, "endpoint": "http://h"}, ("endpoint",), "opc.tcp://"),
        ({**good, "nodes": [{"signal": "t", "node_id": "ns=2;i=1", "sampling": 5}]}, ("nodes", 0, "sampling"),
         "Extra inputs"),
        ({**good, "nodes": [{"signal": "t", "node_id": "ns=2;i=1", "deadband": "percent",
                             "deadband_value": 150}]}, ("nodes", 0), "0 to 100"),
        ({**good, "nodes": [{"signal": "t", "node_id": "ns=2;i=1", "mode": "push"}]}, ("nodes", 0, "mode"), ""),
        ({**good, "security_policy": "Basic256Sha256"}, (), "do not go together"),
        ({**good, "security_policy": "Basic256Sha256", "security_mode": "Sign"}, (), "certificate"),
        ({**good, "password": "hunter2"}, (), "password_env"),
        ({**good, "password_env": "PW"}, (), "username"),
        ({**good, "nodes": [{"signal": "t", "node_id": "ns=2;i=1"}, {"signal": "t", "node_id": "ns=2;i=2"}]}, (),
         "unique"),
        ({**good, "backoff": {"initial": 0}}, ("backoff", "initial"), ""),
    ]
    for data, loc, text in cases:
        with pytest.raises(ValidationError) as info:
            OpcUaSourceConfig.model_validate(data)
        error = info.value.errors()[0]
        assert error["loc"] == loc, (data, error)
        assert text in error["msg"], (data, error)


def test_create_reads_password_from_environment(tmp_path: Path) -> None:
    cfg = OpcUaSourceConfig(name="p", endpoint="opc.tcp://h:4840", username="op", password_env="PRESS_PW",
                            nodes=[OpcUaNode(signal="t", node_id="ns=2;i=1")])
    with pytest.raises(OpcUaConfigError, match="PRESS_PW"):
        create(cfg, {})
    connector = create(cfg, {"PRESS_PW": "secret"})
    assert connector.signals() == ["t"]
    missing = cfg.model_copy(update={"security_policy": "Basic256Sha256", "security_mode": "Sign",
                                     "certificate": tmp_path / "c.der", "private_key": tmp_path / "k.pem"})
    with pytest.raises(OpcUaConfigError, match=r"certificate file .*c\.der does not exist"):
        create(missing, {"PRESS_PW": "x"})


# --------------------------------------------------------------------------- asyncua server


def test_subscribe_types_quality_and_timestamps(asyncua_server: AsyncuaServer) -> None:
    srv = asyncua_server
    srv.write("OilTemperature", 42.5)
    names = ["OilTemperature", "StrokeCount", "Running", "Program", "Speed", "Sensor", "Level"]
    cfg = source(srv.endpoint, [{"signal": n, "node_id": srv.node_id(n), "sampling_interval": 50} for n in names])

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            for name in names:
                await emit.signal(name)
            first = {name: emit.of(name)[0] for name in names}
            assert first["OilTemperature"].value == 42.5 and first["OilTemperature"].quality is Quality.GOOD
            assert first["StrokeCount"].value == 7 and type(first["StrokeCount"].value) is int
            assert first["Running"].value is True
            assert first["Program"].value == "P-100"
            assert first["Speed"].value == 1.5 and type(first["Speed"].value) is float
            assert first["Sensor"].value is None and first["Sensor"].quality is Quality.BAD
            assert first["Level"].value == 12.5 and first["Level"].quality is Quality.UNCERTAIN
            for reading in first.values():
                assert reading.source_time.utcoffset() == timedelta(0)

            stamp = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
            srv.write("OilTemperature", 50.25, source_time=stamp)
            reading = await emit.value("OilTemperature", 50.25)
            assert reading.source_time == stamp and reading.quality is Quality.GOOD

            # A Bad status never re-sends the last good value as good.
            mark = len(emit.readings)
            srv.write("OilTemperature", 50.25, status="BadSensorFailure")
            bad = await emit.wait(lambda r: r.signal == "OilTemperature", start=mark)
            assert bad.quality is Quality.BAD and bad.value is None
            srv.write("OilTemperature", 51.0)
            good = await emit.value("OilTemperature", 51.0, start=mark)
            assert good.quality is Quality.GOOD
            assert connector.stats.connected and connector.stats.signal_errors == {}
            assert connector.stats.reconnects == 0

        assert connector.stats.readings == len(emit.readings)

    run(scenario())


def test_read_once_reports_every_signal(asyncua_server: AsyncuaServer) -> None:
    """What `twinedge agent check` uses: one reading per signal, a BAD one for a node that is missing."""
    srv = asyncua_server
    srv.write("Program", "P-200")
    connector = create(source(srv.endpoint, [
        {"signal": "program", "node_id": srv.node_id("Program")},
        {"signal": "strokes", "node_id": srv.node_id("StrokeCount"), "mode": "poll"},
        {"signal": "ghost", "node_id": "ns=2;s=Nope"},
    ]))
    readings = {r.signal: r for r in asyncio.run(connector.read_once(10))}
    assert readings["program"].value == "P-200" and readings["program"].quality is Quality.GOOD
    assert readings["strokes"].quality is Quality.GOOD
    assert readings["ghost"].quality is Quality.BAD and "ghost" in connector.stats.signal_errors


def test_poll_reads_all_nodes_in_one_batch(asyncua_server: AsyncuaServer) -> None:
    srv = asyncua_server
    srv.write("StrokeCount", 100)
    names = ["StrokeCount", "Running", "Sensor"]
    cfg = source(srv.endpoint, [{"signal": n, "node_id": srv.node_id(n), "mode": "poll", "poll_interval": 0.1}
                                for n in names])

    async def scenario() -> None:
        emit = Collector()
        async with Running(create(cfg), emit):
            await emit.value("StrokeCount", 100)
            srv.write("StrokeCount", 101)
            await emit.value("StrokeCount", 101)
            await asyncio.sleep(0.25)
            # Every poll reads all nodes at once: the readings of one poll share their receive time.
            by_received: dict[datetime, set[str]] = {}
            for reading in emit.readings:
                by_received.setdefault(reading.received, set()).add(reading.signal)
            assert len(by_received) >= 3
            assert all(signals == set(names) for signals in by_received.values())
            assert all(r.quality is Quality.BAD and r.value is None for r in emit.of("Sensor"))
            assert len(emit.of("StrokeCount")) >= 3  # a poll reports the value even when unchanged

    run(scenario())


def test_deadband_absolute_and_percent(asyncua_server: AsyncuaServer) -> None:
    srv = asyncua_server
    srv.write("OilTemperature", 10.0)
    srv.write("Pressure", 100.0)
    cfg = source(srv.endpoint, [
        {"signal": "oil", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 20,
         "deadband": "absolute", "deadband_value": 1.0},
        # 5 % of the EURange 0..200 is a band of 10.
        {"signal": "pressure", "node_id": srv.node_id("Pressure"), "sampling_interval": 20,
         "deadband": "percent", "deadband_value": 5},
        # OilTemperature has no EURange: a percent deadband cannot work there.
        {"signal": "no_range", "node_id": srv.node_id("OilTemperature"), "deadband": "percent",
         "deadband_value": 5},
    ])

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            await emit.value("oil", 10.0)
            await emit.value("pressure", 100.0)
            srv.write("OilTemperature", 10.6)  # inside the band
            srv.write("Pressure", 106.0)  # inside the band
            await asyncio.sleep(0.3)
            srv.write("OilTemperature", 11.7)
            srv.write("Pressure", 111.0)
            await emit.value("oil", 11.7)
            await emit.value("pressure", 111.0)
            await asyncio.sleep(0.1)
            assert emit.values("oil") == [10.0, 11.7]
            assert emit.values("pressure") == [100.0, 111.0]
            # asyncua's server does not implement the percent deadband: the connector held it back.
            assert connector.stats.held_back >= 1
            error = connector.stats.signal_errors["no_range"]
            assert "EURange" in error and srv.node_id("OilTemperature") in error and srv.endpoint in error
            assert [r.quality for r in emit.of("no_range")] == [Quality.BAD]

    run(scenario())


def test_unknown_node_and_array_are_signal_errors(asyncua_server: AsyncuaServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    srv = asyncua_server
    srv.write("OilTemperature", 20.0)
    srv.write("Vector", [1.0, 2.0, 3.0])
    cfg = source(srv.endpoint, [
        {"signal": "oil", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 20},
        {"signal": "ghost", "node_id": "ns=2;s=Press1.DoesNotExist"},
        {"signal": "ghost_poll", "node_id": "ns=2;i=424242", "mode": "poll", "poll_interval": 0.1},
        {"signal": "vector", "node_id": srv.node_id("Vector"), "sampling_interval": 20},
    ])

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            for name in ("ghost", "ghost_poll", "vector"):
                await emit.signal(name)
            srv.write("Vector", [4.0, 5.0, 6.0])
            await emit.wait(lambda r: r.signal == "vector", start=len(emit.readings))
            srv.write("OilTemperature", 21.0)
            await emit.value("oil", 21.0)  # the others keep running
            await asyncio.sleep(0.3)
            errors = connector.stats.signal_errors
            assert set(errors) == {"ghost", "ghost_poll", "vector"}
            assert "ns=2;s=Press1.DoesNotExist" in errors["ghost"] and "BadNodeIdUnknown" in errors["ghost"]
            assert srv.endpoint in errors["ghost"]
            assert "ns=2;i=424242" in errors["ghost_poll"] and "BadNodeIdUnknown" in errors["ghost_poll"]
            assert "array of Double" in errors["vector"]
            assert all(r.quality is Quality.BAD and r.value is None for r in emit.of("vector"))
            assert len(emit.of("ghost")) == 1 and len(emit.of("ghost_poll")) == 1  # reported once
            assert connector.stats.connected

    with caplog.at_level(logging.ERROR, logger="edge_agent.connectors.opcua"):
        run(scenario())
    for name in ("ghost", "ghost_poll", "vector"):
        logged = [r for r in caplog.records if f"signal {name}:" in r.getMessage()]
        assert len(logged) == 1, (name, [r.getMessage() for r in caplog.records])


def test_backpressure_loses_nothing(asyncua_server: AsyncuaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow `emit` holds the subscription back; every value still arrives, in order."""
    srv = asyncua_server
    srv.write("StrokeCount", 0)
    monkeypatch.setattr(opcua, "OUTBOX_LIMIT", 5)
    waits = 0
    put = opcua._Outbox.put

    async def counting_put(self: opcua._Outbox, batch: list[Reading]) -> None:
        nonlocal waits
        waits += len(self) >= 5  # the outbox is full: this put (and asyncua's publish loop) waits
        await put(self, batch)

    monkeypatch.setattr(opcua._Outbox, "put", counting_put)
    cfg = source(srv.endpoint, [{"signal": "strokes", "node_id": srv.node_id("StrokeCount"),
                                 "sampling_interval": 0, "queue_size": 1000}], publishing_interval=20)
    count = 400

    async def scenario() -> None:
        emit = Collector(delay=0.1)
        connector = create(cfg)
        async with Running(connector, emit):
            await emit.value("strokes", 0)
            def write_all() -> None:
                for i in range(1, count + 1):
                    srv.write("StrokeCount", i)

            await asyncio.to_thread(write_all)
            await emit.value("strokes", count, timeout=20)
            assert emit.values("strokes") == list(range(count + 1))
            assert connector.stats.overflows == 0
            assert waits >= 1, waits  # the publish loop did wait for room

    run(scenario(), timeout=40)


# --------------------------------------------------------------------------- users and security


def test_username_password_and_sign(asyncua_server: AsyncuaServer, opcua_certificates: Certificates) -> None:
    certs = opcua_certificates
    srv = asyncua_server
    srv.write("OilTemperature", 33.0)
    node = {"signal": "oil", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 50}
    user = {"username": "operator", "password_env": "PRESS_PW"}

    async def scenario() -> None:
        good = create(source(srv.endpoint, [node], **user), {"PRESS_PW": "secret"})
        emit = Collector()
        async with Running(good, emit):
            assert (await emit.value("oil", 33.0)).quality is Quality.GOOD

        wrong = create(source(srv.endpoint, [node], **user), {"PRESS_PW": "wrong"})
        emit = Collector()
        async with Running(wrong, emit):
            await emit.wait(lambda r: r.quality is Quality.BAD)
            await asyncio.sleep(0.5)  # several attempts, one BAD report
        assert [r.quality for r in emit.readings] == [Quality.BAD]
        assert not wrong.stats.connected and wrong.stats.errors >= 2
        error = wrong.stats.last_error
        assert "rejected user 'operator'" in error and "$PRESS_PW" in error and srv.endpoint in error, error

        # Basic256Sha256 with Sign only; the password is then encrypted with the server's key.
        signed = create(source(srv.endpoint, [node], **user, security_policy="Basic256Sha256", security_mode="Sign",
                               certificate=certs.client_cert, private_key=certs.client_key), {"PRESS_PW": "secret"})
        emit = Collector()
        async with Running(signed, emit):
            await emit.value("oil", 33.0)
            assert signed.stats.errors == 0

    run(scenario())


def test_basic256sha256_sign_and_encrypt(make_asyncua_server: Callable[..., AsyncuaServer],
                                         opcua_certificates: Certificates, tmp_path: Path) -> None:
    """A server offering Basic256Sha256 SignAndEncrypt only, users only, trusting one client certificate."""
    certs = opcua_certificates
    srv = make_asyncua_server(certificates=certs, secure_only=True, allow_anonymous=False,
                              trusted_clients=[certs.client_cert])
    srv.write("OilTemperature", 44.0)
    node = {"signal": "oil", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 50}
    secure = {"security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
              "certificate": certs.client_cert, "private_key": certs.client_key,
              "username": "operator", "password_env": "PRESS_PW"}
    env = {"PRESS_PW": "secret"}

    async def failure(options: dict[str, Any]) -> OpcUaConnector:
        connector = create(source(srv.endpoint, [node], **options), env)
        emit = Collector()
        async with Running(connector, emit):
            await emit.wait(lambda r: r.quality is Quality.BAD)
        assert not connector.stats.connected and connector.stats.last_error
        return connector

    async def scenario() -> None:
        # With the server's certificate pinned, and without (then taken from the server's endpoints).
        for options in ({**secure, "server_certificate": certs.server_cert}, secure):
            emit = Collector()
            connector = create(source(srv.endpoint, [node], **options), env)
            async with Running(connector, emit):
                assert (await emit.value("oil", 44.0)).quality is Quality.GOOD
                assert connector.stats.connected and connector.stats.errors == 0

        plain = await failure({"username": "operator", "password_env": "PRESS_PW"})
        assert "no endpoint" in plain.stats.last_error, plain.stats.last_error
        anonymous = await failure({k: v for k, v in secure.items() if k not in ("username", "password_env")})
        assert "rejected anonymous" in anonymous.stats.last_error, anonymous.stats.last_error
        signed_only = await failure({**secure, "security_mode": "Sign"})
        assert "no endpoint with security Basic256Sha256/Sign" in signed_only.stats.last_error
        stranger = make_certificates(tmp_path / "stranger")
        untrusted = await failure({**secure, "certificate": stranger.client_cert, "private_key": stranger.client_key})
        assert "BadCertificateUntrusted" in untrusted.stats.last_error and srv.rejected_certificates >= 1

    run(scenario())


# --------------------------------------------------------------------------- reconnect


def test_reconnect_after_server_restart(asyncua_server: AsyncuaServer) -> None:
    srv = asyncua_server
    srv.write("OilTemperature", 60.0)
    srv.write("StrokeCount", 5)
    cfg = source(srv.endpoint, [
        {"signal": "oil", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 50},
        {"signal": "strokes", "node_id": srv.node_id("StrokeCount"), "mode": "poll", "poll_interval": 0.2},
    ])

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            await emit.value("oil", 60.0)
            await emit.value("strokes", 5)
            assert connector.stats.connected

            await asyncio.to_thread(srv.stop)
            await emit.wait(lambda r: r.signal == "oil" and r.quality is Quality.BAD)
            await emit.wait(lambda r: r.signal == "strokes" and r.quality is Quality.BAD)
            await asyncio.sleep(1.0)  # the connector keeps trying meanwhile
            assert not connector.stats.connected and connector.stats.last_error
            for name in ("oil", "strokes"):
                bad = [r for r in emit.of(name) if r.quality is Quality.BAD]
                assert len(bad) == 1 and bad[0].value is None, emit.of(name)

            srv.write("OilTemperature", 61.5)
            srv.write("StrokeCount", 6)
            await asyncio.to_thread(srv.start)
            assert (await emit.value("oil", 61.5, timeout=10)).quality is Quality.GOOD
            assert (await emit.value("strokes", 6, timeout=10)).quality is Quality.GOOD
            assert connector.stats.connected and connector.stats.reconnects == 1
            # The outage shows as one BAD reading between good ones.
            assert [r.quality for r in emit.of("oil")] == [Quality.GOOD, Quality.BAD, Quality.GOOD]

    try:
        run(scenario(), timeout=40)
    finally:
        srv.start()


def test_hung_server_is_detected_by_the_watchdog(asyncua_server: AsyncuaServer) -> None:
    """A server that stops answering but keeps the TCP connection open (no reset) is noticed too."""
    srv = asyncua_server
    srv.write("OilTemperature", 70.0)
    cfg = source(srv.endpoint, [{"signal": "oil", "node_id": srv.node_id("OilTemperature"),
                                 "sampling_interval": 50}], timeout=1.0)

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            await emit.value("oil", 70.0)
            frozen_until = time.monotonic() + 5.0
            srv.freeze(5.0)
            # Noticed while the server is still frozen (after it wakes up the old session would go on).
            bad = await emit.wait(lambda r: r.quality is Quality.BAD, timeout=5.0)
            assert bad.value is None
            await asyncio.sleep(max(0.0, frozen_until - time.monotonic()))
            srv.write("OilTemperature", 71.0)
            assert (await emit.value("oil", 71.0, timeout=10)).quality is Quality.GOOD
            assert connector.stats.reconnects == 1

    run(scenario())


# --------------------------------------------------------------------------- node-opcua


def test_node_opcua_types_qualities_and_deadbands(node_opcua_server: NodeOpcuaServer) -> None:
    srv = node_opcua_server
    srv.set("OilTemperature", 10.0)
    srv.set("Pressure", 100.0)
    names = ["StrokeCount", "Running", "Program", "Speed", "Sensor", "Level", "Vector"]
    nodes: list[dict[str, Any]] = [{"signal": n, "node_id": srv.node_id(n), "sampling_interval": 20} for n in names]
    nodes += [
        {"signal": "OilTemperature", "node_id": srv.node_id("OilTemperature"), "sampling_interval": 20,
         "deadband": "absolute", "deadband_value": 1.0},
        {"signal": "Pressure", "node_id": srv.node_id("Pressure"), "sampling_interval": 20,
         "deadband": "percent", "deadband_value": 5},
        {"signal": "polled", "node_id": srv.node_id("OilTemperature"), "mode": "poll", "poll_interval": 0.2},
        {"signal": "ghost", "node_id": "ns=1;s=Press1.Nothing"},
    ]

    async def scenario() -> None:
        emit = Collector()
        connector = create(source(srv.endpoint, nodes))
        async with Running(connector, emit):
            for name in [*names, "OilTemperature", "Pressure", "polled", "ghost"]:
                await emit.signal(name, timeout=10)
            first = {name: emit.of(name)[0] for name in [*names, "OilTemperature", "Pressure", "polled"]}
            assert first["StrokeCount"].value == 7 and type(first["StrokeCount"].value) is int
            assert first["Running"].value is True
            assert first["Program"].value == "P-100"
            assert first["Speed"].value == 1.5 and type(first["Speed"].value) is float
            assert first["OilTemperature"].value == 10.0 and first["polled"].value == 10.0
            assert first["Pressure"].value == 100.0
            assert all(r.quality is Quality.GOOD for n, r in first.items() if n not in ("Sensor", "Level", "Vector"))
            assert first["Sensor"].quality is Quality.BAD and first["Sensor"].value is None
            assert first["Level"].quality is Quality.UNCERTAIN and first["Level"].value == 12.5
            assert first["Vector"].quality is Quality.BAD
            assert "array of Double" in connector.stats.signal_errors["Vector"]
            ghost = connector.stats.signal_errors["ghost"]
            assert "ns=1;s=Press1.Nothing" in ghost and srv.endpoint in ghost and "BadNodeIdUnknown" in ghost

            # Deadbands, applied by node-opcua itself (nothing held back on the client).
            await asyncio.to_thread(srv.set, "OilTemperature", 10.6)
            await asyncio.to_thread(srv.set, "Pressure", 106.0)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(srv.set, "OilTemperature", 11.7)
            await asyncio.to_thread(srv.set, "Pressure", 111.0)
            await emit.value("OilTemperature", 11.7)
            await emit.value("Pressure", 111.0)
            assert emit.values("OilTemperature") == [10.0, 11.7]
            assert emit.values("Pressure") == [100.0, 111.0]
            assert connector.stats.held_back == 0
            await emit.value("polled", 11.7, timeout=2)

            # Bad and back.
            mark = len(emit.readings)
            await asyncio.to_thread(srv.set, "Running", False, "BadDeviceFailure")
            bad = await emit.wait(lambda r: r.signal == "Running", start=mark)
            assert bad.quality is Quality.BAD and bad.value is None
            await asyncio.to_thread(srv.set, "Running", False)
            assert (await emit.value("Running", False, start=mark)).quality is Quality.GOOD
            assert connector.stats.connected

    run(scenario())


def test_node_opcua_queue_overflow_is_counted(node_opcua_server: NodeOpcuaServer) -> None:
    """Values the server drops from a full monitored-item queue are counted, not silently lost."""
    srv = node_opcua_server
    srv.set("StrokeCount", 0)
    cfg = source(srv.endpoint, [{"signal": "strokes", "node_id": srv.node_id("StrokeCount"),
                                 "sampling_interval": 10, "queue_size": 2}], publishing_interval=1000)

    async def scenario() -> None:
        emit = Collector()
        connector = create(cfg)
        async with Running(connector, emit):
            await emit.value("strokes", 0, timeout=10)
            for i in range(1, 9):
                await asyncio.to_thread(srv.set, "StrokeCount", i)
                await asyncio.sleep(0.03)
            await emit.value("strokes", 8, timeout=5)
            assert connector.stats.overflows >= 1
            assert len(emit.values("strokes")) < 9

    run(scenario())
