"""twin_server.events: the bus, the SSE stream (real uvicorn), the MQTT publisher (real Mosquitto)."""

from __future__ import annotations

import asyncio
import base64
import gc
import http.client
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pydantic
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt_broker import MosquittoBroker, free_port, mosquitto_broker_fixture  # noqa: F401
from twin_server.events import (
    Event,
    EventBus,
    EventError,
    EventFilter,
    EventFilterError,
    EventKind,
    EventType,
    MqttConfig,
    MqttConfigError,
    MqttPublisher,
    event_topic,
    sse_response,
)

SM = "urn:twinedge:sm:press-01:OperationalData:1.0"
SM2 = "urn:twinedge:sm:press-02:OperationalData:1.0"
SHELL = "urn:twinedge:aas:press-01"
CD = "urn:twinedge:cd:hydraulic-press:1.0:OilTemperature"


def b64(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode().rstrip("=")


def value_event(path: str | None, value: Any, sm: str = SM) -> Event:
    return Event(EventType.VALUE_CHANGED, EventKind.SUBMODELS, sm, path, value)


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 60))


# --------------------------------------------------------------------------------------------
# Event
# --------------------------------------------------------------------------------------------

def test_event_json_roundtrip() -> None:
    ts = datetime(2025, 11, 25, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    ev = Event(EventType.VALUE_CHANGED, EventKind.SUBMODELS, SM, "Hydraulics.OilTemperature", 48.7, timestamp=ts)
    assert ev.timestamp == ts and ev.timestamp.tzinfo is UTC  # converted to UTC
    d = orjson.loads(ev.to_json())
    assert d == {"sequence": 0, "type": "value-changed", "kind": "submodels", "id": SM,
                 "idShortPath": "Hydraulics.OilTemperature", "value": 48.7,
                 "timestamp": "2025-11-25T12:00:00.123456Z", "dropped": 0}
    back = Event.from_json(ev.to_json())
    assert back.to_dict() == ev.to_dict()
    assert Event(EventType.CREATED, EventKind.SHELLS, SHELL).to_dict()["idShortPath"] is None
    # Strings (e.g. the storage layer's Kind values) are accepted and normalised.
    assert Event("deleted", "concept-descriptions", CD).kind is EventKind.CONCEPT_DESCRIPTIONS  # type: ignore[arg-type]


def test_event_validation() -> None:
    with pytest.raises(EventError, match="only submodels"):
        Event(EventType.UPDATED, EventKind.SHELLS, SHELL, "A.B")
    with pytest.raises(EventError, match="value-changed"):
        Event(EventType.VALUE_CHANGED, EventKind.CONCEPT_DESCRIPTIONS, CD)
    with pytest.raises(EventError, match="timezone-aware"):
        Event(EventType.CREATED, EventKind.SHELLS, SHELL, timestamp=datetime(2025, 1, 1))
    with pytest.raises(EventError, match="dotted path"):
        Event(EventType.UPDATED, EventKind.SUBMODELS, SM, "A/B")
    with pytest.raises(EventError, match="type"):
        Event("renamed", EventKind.SHELLS, SHELL)  # type: ignore[arg-type]
    with pytest.raises(EventError, match="not a TwinEdge event"):
        Event.from_json(b'{"type": "created"}')


# --------------------------------------------------------------------------------------------
# EventBus
# --------------------------------------------------------------------------------------------

def test_fanout_in_order_with_sequences() -> None:
    async def main() -> None:
        bus = EventBus(start_sequence=1)
        a, b = bus.subscribe(), bus.subscribe()
        stamped = [bus.publish(value_event("A.B", i)) for i in range(10)]
        assert [s.sequence for s in stamped if s] == list(range(1, 11))
        assert bus.last_sequence == 10 and bus.published == 10
        for sub in (a, b):
            got = [await sub.get(timeout=1) for _ in range(10)]
            assert [e.value for e in got if e] == list(range(10))
            assert [e.sequence for e in got if e] == list(range(1, 11))
            assert await sub.get(timeout=0.01) is None  # timeout, not closed
            assert not sub.closed
        # A fresh event is stamped in place; publishing it again stamps a copy.
        again = bus.publish(stamped[0])  # type: ignore[arg-type]
        assert again is not None and again is not stamped[0] and again.sequence == 11
        assert stamped[0] is not None and stamped[0].sequence == 1
        # The default start is the time in microseconds: later processes continue above.
        assert EventBus().first_sequence > 1_700_000_000_000_000

    run(main)


def test_filters() -> None:
    def ev(kind: EventKind, ident: str, path: str | None = None, type_: EventType = EventType.UPDATED) -> Event:
        return Event(type_, kind, ident, path)

    f = EventFilter(kinds=frozenset({EventKind.SHELLS}))
    assert f.matches(ev(EventKind.SHELLS, SHELL)) and not f.matches(ev(EventKind.SUBMODELS, SM))
    f = EventFilter(ids=frozenset({SM}))
    assert f.matches(ev(EventKind.SUBMODELS, SM, "X")) and not f.matches(ev(EventKind.SUBMODELS, SM2, "X"))
    f = EventFilter(types=frozenset({EventType.VALUE_CHANGED}))
    assert f.matches(value_event("X", 1)) and not f.matches(ev(EventKind.SUBMODELS, SM, "X"))

    f = EventFilter(ids=frozenset({SM}), id_short_path="Hydraulics.Oil")
    inside = ["Hydraulics.Oil", "Hydraulics.Oil.Temperature", "Hydraulics.Oil[0]", "Hydraulics", None]
    outside = ["Hydraulics.OilLevel", "Hydraulics.Pump", "Hydraulic", "Electrics.Oil"]
    for p in inside:
        assert f.matches(ev(EventKind.SUBMODELS, SM, p)), p
    for p in outside:
        assert not f.matches(ev(EventKind.SUBMODELS, SM, p)), p
    assert not EventFilter(id_short_path="A").matches(ev(EventKind.SHELLS, SHELL))

    q = EventFilter.from_query([("kind", "submodels"), ("id", b64(SM)), ("id", b64(SM2)),
                                ("idShortPath", "A.B"), ("type", "value-changed,deleted"), ("other", "x")])
    assert q == EventFilter(kinds=frozenset({EventKind.SUBMODELS}), ids=frozenset({SM, SM2}), id_short_path="A.B",
                            types=frozenset({EventType.VALUE_CHANGED, EventType.DELETED}))
    assert EventFilter.from_query({}) == EventFilter()
    with pytest.raises(EventFilterError, match="kind="):
        EventFilter.from_query({"kind": "things"})
    with pytest.raises(EventFilterError, match="base64url"):
        EventFilter.from_query({"id": "not base64!"})
    with pytest.raises(EventFilterError, match="kind=submodels"):
        EventFilter.from_query([("kind", "shells"), ("idShortPath", "A")])

    async def main() -> None:
        bus = EventBus(start_sequence=1)
        only_oil = bus.subscribe(EventFilter(id_short_path="Hydraulics.Oil"))
        shells = bus.subscribe(EventFilter(kinds=frozenset({EventKind.SHELLS})))
        bus.publish(ev(EventKind.SHELLS, SHELL, type_=EventType.CREATED))
        bus.publish(value_event("Hydraulics.Oil.Temperature", 40))
        bus.publish(value_event("Hydraulics.Pump", 1))
        oil = only_oil.get_nowait()
        assert oil is not None and oil.value == 40 and only_oil.get_nowait() is None
        got = shells.get_nowait()
        assert got is not None and got.kind is EventKind.SHELLS and shells.get_nowait() is None

    run(main)


def test_slow_subscriber_drops_oldest_and_says_so() -> None:
    async def main() -> None:
        bus = EventBus(start_sequence=1, queue_size=3)
        slow, fast = bus.subscribe(), bus.subscribe(queue_size=100)
        for i in range(5):
            bus.publish(value_event("A", i))
        assert slow.dropped == 2 and fast.dropped == 0 and bus.dropped == 2
        got = [await slow.get() for _ in range(3)]
        assert [(e.value, e.sequence, e.dropped) for e in got if e] == [(2, 3, 2), (3, 4, 0), (4, 5, 0)]
        assert [e.dropped for e in [fast.get_nowait() for _ in range(5)] if e] == [0] * 5
        # The bus's own copy stays untouched (the count is per subscriber).
        assert bus._history[2].dropped == 0
        bus.publish(value_event("A", 5))
        nxt = await slow.get()
        assert nxt is not None and nxt.dropped == 0

    run(main)


def test_close_subscription_and_bus() -> None:
    async def main() -> None:
        bus = EventBus(start_sequence=1)
        sub = bus.subscribe()
        other = bus.subscribe()
        assert bus.subscriber_count == 2
        sub.close()
        assert bus.subscriber_count == 1 and sub.closed
        bus.publish(value_event("A", 1))
        assert await sub.get(timeout=0.01) is None  # closed: nothing more
        # A waiting consumer is released by bus.close() after the queued events.
        bus.publish(value_event("A", 2))
        received: list[Any] = []

        async def consume() -> None:
            async for e in other:
                received.append(e.value)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        bus.close()
        await asyncio.wait_for(task, 2)
        assert received == [1, 2]
        assert bus.publish(value_event("A", 3)) is None
        late = bus.subscribe()
        assert late.closed and await late.get() is None
        # Subscriptions are held weakly: a dropped one disappears without close().
        bus2 = EventBus()
        s = bus2.subscribe()
        assert bus2.subscriber_count == 1
        del s
        gc.collect()
        assert bus2.subscriber_count == 0
        async with bus2.subscribe() as s2:
            assert bus2.subscriber_count == 1
        assert s2.closed and bus2.subscriber_count == 0

    run(main)


def test_publish_from_threads_wakes_consumer() -> None:
    async def main() -> None:
        bus = EventBus(start_sequence=1, queue_size=10_000)
        sub = bus.subscribe()

        def producer(base: int) -> None:
            for i in range(500):
                bus.publish(value_event("A", base + i))

        threads = [threading.Thread(target=producer, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        got = []
        for _ in range(2000):
            e = await asyncio.wait_for(sub.get(), 5)
            assert e is not None
            got.append(e)
        for t in threads:
            t.join()
        assert [e.sequence for e in got] == list(range(1, 2001))
        for k in range(4):  # each producer's own order is kept
            mine = [e.value for e in got if k * 1000 <= e.value < (k + 1) * 1000]
            assert mine == [k * 1000 + i for i in range(500)]

    run(main)


def test_publish_never_raises() -> None:
    class Broken(EventFilter):
        def matches(self, event: Event) -> bool:
            raise RuntimeError("boom")

    bus = EventBus()
    keep = bus.subscribe(Broken())
    assert bus.publish(value_event("A", 1)) is None
    assert bus.errors == 1 and keep.queued == 0


def test_resume_from_history() -> None:
    async def main() -> None:
        bus = EventBus(start_sequence=100, history=3)
        for i in range(5):
            bus.publish(value_event("A", i))  # sequences 100..104; history keeps 102..104
        # Resuming inside the kept history replays what was missed.
        sub = bus.subscribe(after=102)
        assert [(e.sequence, e.dropped) for e in [sub.get_nowait(), sub.get_nowait()] if e] == [(103, 0), (104, 0)]
        # Up to date: nothing to replay.
        assert bus.subscribe(after=104).get_nowait() is None
        # Too far back: the events kept are replayed, the first says how many are gone.
        sub = bus.subscribe(after=99)
        first = sub.get_nowait()
        assert first is not None and (first.sequence, first.dropped) == (102, 2)
        # From another process's lifetime: the count is unknown, reported as 1, nothing replayed.
        sub = bus.subscribe(after=5)
        assert sub.get_nowait() is None
        bus.publish(value_event("A", 5))
        nxt = sub.get_nowait()
        assert nxt is not None and nxt.sequence == 105 and nxt.dropped == 1

    run(main)


# --------------------------------------------------------------------------------------------
# Server-sent events through a real uvicorn server
# --------------------------------------------------------------------------------------------

@dataclass
class SseServer:
    bus: EventBus
    port: int


@pytest.fixture(scope="module")
def sse_server() -> Iterator[SseServer]:
    bus = EventBus(start_sequence=1, history=100)
    app = FastAPI()

    @app.get("/events")
    async def events(request: Request) -> Response:
        try:
            flt = EventFilter.from_query(request.query_params.multi_items())
        except EventFilterError as exc:
            return JSONResponse({"messages": [str(exc)]}, status_code=400)
        return sse_response(bus, flt, request, heartbeat=0.3)

    @app.post("/publish")
    async def publish(count: int = 1, path: str = "A.B") -> list[int]:
        out = []
        for i in range(count):
            e = bus.publish(value_event(path, i))
            assert e is not None
            out.append(e.sequence)
        return out

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, name="uvicorn-sse-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield SseServer(bus, port)
    finally:
        bus.close()
        server.should_exit = True
        thread.join(10)


class SseClient:
    """A minimal text/event-stream reader over http.client (which undoes the chunked encoding)."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()

    def block(self) -> dict[str, Any]:
        """The next block up to a blank line: fields (id, event, data, retry) and comments."""
        out: dict[str, Any] = {"comments": []}
        while True:
            line = self.resp.readline()
            if not line:
                raise EOFError("stream ended")
            text = line.decode().rstrip("\n")
            if text == "":
                if len(out) > 1 or out["comments"]:
                    return out
                continue
            if text.startswith(":"):
                out["comments"].append(text[1:].strip())
                continue
            name, _, value = text.partition(":")
            out[name] = value[1:] if value.startswith(" ") else value

    def events(self, n: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < n:
            b = self.block()
            if "data" in b:
                got.append(b)
        return got

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


def post(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        return orjson.loads(resp.read())
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_sse_stream_delivers_in_order(sse_server: SseServer) -> None:
    client = SseClient(sse_server.port, "/events")
    try:
        assert client.resp.status == 200
        assert client.resp.getheader("content-type", "").startswith("text/event-stream")
        assert client.resp.getheader("cache-control") == "no-cache"
        assert client.block()["retry"] == "3000"
        # Published on the server's loop (a request handler) and from another thread.
        seqs = post(sse_server.port, "/publish?count=30&path=Hydraulics.Oil")
        threaded = [sse_server.bus.publish(value_event("Hydraulics.Pump", 100 + i)) for i in range(20)]
        seqs += [e.sequence for e in threaded if e]
        got = client.events(50)
        assert [int(b["id"]) for b in got] == seqs
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        assert {b["event"] for b in got} == {"value-changed"}
        data = [orjson.loads(b["data"]) for b in got]
        assert [d["sequence"] for d in data] == seqs
        assert [d["value"] for d in data] == list(range(30)) + list(range(100, 120))
        assert data[0]["idShortPath"] == "Hydraulics.Oil" and data[0]["id"] == SM and data[0]["kind"] == "submodels"
    finally:
        client.close()


def test_sse_filter_heartbeat_and_disconnect(sse_server: SseServer) -> None:
    bus = sse_server.bus
    assert wait_until(lambda: bus.subscriber_count == 0), "an earlier stream's subscription is still open"
    before = 0
    client = SseClient(sse_server.port, f"/events?kind=submodels&id={b64(SM)}&idShortPath=Line.Press")
    try:
        assert client.block()["retry"] == "3000"
        assert bus.subscriber_count == before + 1
        bus.publish(Event(EventType.CREATED, EventKind.SHELLS, SHELL))
        bus.publish(value_event("Line.Pressure", 1))  # a sibling with a longer name: filtered out
        bus.publish(value_event("Line.Press.Force", 2, sm=SM2))  # another submodel
        bus.publish(value_event("Line.Press.Force", 3))
        bus.publish(Event(EventType.DELETED, EventKind.SUBMODELS, SM, "Line"))  # an ancestor
        got = client.events(2)
        pairs = [(b["event"], orjson.loads(b["data"])["value"]) for b in got]
        assert pairs == [("value-changed", 3), ("deleted", None)]
        # Idle: a comment heartbeat arrives (0.3 s in this app, 15 s by default).
        block = client.block()
        assert block["comments"] == ["heartbeat"] and "data" not in block
    finally:
        client.close()
    # The server notices the disconnect and drops the subscription.
    assert wait_until(lambda: bus.subscriber_count == before), "subscription not released after disconnect"


def test_sse_bad_filter_and_resume(sse_server: SseServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sse_server.port, timeout=5)
    conn.request("GET", "/events?kind=nope")
    resp = conn.getresponse()
    assert resp.status == 400 and "kind" in orjson.loads(resp.read())["messages"][0]
    conn.close()

    seqs = post(sse_server.port, "/publish?count=5&path=Resume.Me")
    # A browser's EventSource reconnects with Last-Event-ID: it gets what it missed, in order.
    client = SseClient(sse_server.port, "/events?idShortPath=Resume", headers={"Last-Event-ID": str(seqs[1])})
    try:
        got = client.events(3)
        assert [int(b["id"]) for b in got] == seqs[2:]
        assert all(orjson.loads(b["data"])["dropped"] == 0 for b in got)
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# MQTT against a real Mosquitto
# --------------------------------------------------------------------------------------------

class Collector:
    """A paho subscriber that records (topic, payload, retain) of every message."""

    def __init__(self, broker: MosquittoBroker, topic: str = "twinedge/#", *, client_id: str | None = None,
                 persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"collector-{uuid.uuid4().hex}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(1, 1)

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            c.subscribe(topic, qos=1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
            self.subscribed.set()

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "collector did not subscribe"

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        await eventually(lambda: len(self.snapshot()) >= n, timeout, f"{n} MQTT messages (have {self.messages})")
        return self.snapshot()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unique(messages: list[tuple[str, bytes, bool]]) -> list[dict[str, Any]]:
    """Payloads in arrival order without QoS 1 duplicates (same sequence)."""
    seen: set[int] = set()
    out = []
    for _, payload, _ in messages:
        d = orjson.loads(payload)
        if d["sequence"] not in seen:
            seen.add(d["sequence"])
            out.append(d)
    return out


def mqtt_config(broker: MosquittoBroker, **kw: Any) -> MqttConfig:
    base: dict[str, Any] = {"host": broker.host, "port": broker.port, "client_id": f"twinedge-test-{uuid.uuid4().hex}",
                            "reconnect_min_delay": 1, "reconnect_max_delay": 2}
    return MqttConfig(**(base | kw))


def test_topic_scheme() -> None:
    assert event_topic("twinedge", Event(EventType.CREATED, EventKind.SHELLS, SHELL)) == \
        f"twinedge/aas/shells/{b64(SHELL)}/created"
    assert event_topic("plant1/twinedge", Event(EventType.UPDATED, EventKind.CONCEPT_DESCRIPTIONS, CD)) == \
        f"plant1/twinedge/aas/concept-descriptions/{b64(CD)}/updated"
    assert event_topic("twinedge", value_event("Hydraulics.OilTemperature", 1)) == \
        f"twinedge/aas/submodels/{b64(SM)}/elements/Hydraulics/OilTemperature/value-changed"
    assert event_topic("twinedge", Event(EventType.DELETED, EventKind.SUBMODELS, SM, "Markings[0].MarkingName")) == \
        f"twinedge/aas/submodels/{b64(SM)}/elements/Markings[0]/MarkingName/deleted"
    assert event_topic("t", Event(EventType.CREATED, EventKind.SHELLS, "urn:x:ab")).split("/")[3] == "dXJuOng6YWI"


def test_mqtt_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = MqttConfig(host="broker")
    assert (cfg.port, cfg.topic_prefix, cfg.qos, cfg.retain_values, cfg.tls) == (1883, "twinedge", 1, False, False)
    with pytest.raises(pydantic.ValidationError, match="topic_prefix"):
        MqttConfig(host="b", topic_prefix="twinedge/#")
    with pytest.raises(pydantic.ValidationError, match="tls"):
        MqttConfig(host="b", ca_file="/etc/ssl/ca.pem")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="extra"):
        MqttConfig(host="b", password="secret")  # type: ignore[call-arg]

    monkeypatch.delenv("TWINEDGE_TEST_MQTT_PW", raising=False)

    async def main() -> None:
        pub = MqttPublisher(EventBus(), MqttConfig(host="127.0.0.1", password_env="TWINEDGE_TEST_MQTT_PW"))
        with pytest.raises(MqttConfigError, match="TWINEDGE_TEST_MQTT_PW"):
            await pub.start()
        pub2 = MqttPublisher(EventBus(), MqttConfig(host="127.0.0.1", tls=True, ca_file="/nonexistent/ca.pem"))  # type: ignore[arg-type]
        with pytest.raises(MqttConfigError, match="ca_file"):
            await pub2.start()

    run(main)


def test_mqtt_topics_and_payloads(mosquitto_broker: MosquittoBroker) -> None:
    collector = Collector(mosquitto_broker)

    async def main() -> None:
        bus = EventBus(start_sequence=1)
        pub = MqttPublisher(bus, mqtt_config(mosquitto_broker))
        await pub.start()
        await eventually(lambda: pub.connected, what="publisher connected")
        events = [
            Event(EventType.CREATED, EventKind.SHELLS, SHELL),
            Event(EventType.CREATED, EventKind.SUBMODELS, SM),
            value_event("Hydraulics.OilTemperature", 48.7),
            Event(EventType.DELETED, EventKind.SUBMODELS, SM, "Markings[0].MarkingName"),
            Event(EventType.UPDATED, EventKind.CONCEPT_DESCRIPTIONS, CD),
        ]
        stamped = [bus.publish(e) for e in events]
        got = await collector.wait_for(5)
        assert [t for t, _, _ in got] == [
            f"twinedge/aas/shells/{b64(SHELL)}/created",
            f"twinedge/aas/submodels/{b64(SM)}/created",
            f"twinedge/aas/submodels/{b64(SM)}/elements/Hydraulics/OilTemperature/value-changed",
            f"twinedge/aas/submodels/{b64(SM)}/elements/Markings[0]/MarkingName/deleted",
            f"twinedge/aas/concept-descriptions/{b64(CD)}/updated",
        ]
        assert [orjson.loads(p) for _, p, _ in got] == [orjson.loads(e.to_json()) for e in stamped if e]
        assert orjson.loads(got[2][1])["value"] == 48.7 and orjson.loads(got[2][1])["sequence"] == 3
        assert not any(r for _, _, r in got)  # retain_values is off
        await eventually(lambda: pub.published == 5, what="5 acknowledged")
        assert pub.stats() == {"published": 5, "dropped": 0, "reconnects": 0, "buffered": 0, "connected": 1}
        # stop() flushes what is still buffered before disconnecting.
        for i in range(50):
            bus.publish(value_event("Burst", i))
        await pub.stop()
        got = await collector.wait_for(55)
        assert [orjson.loads(p)["value"] for _, p, _ in got[5:]] == list(range(50))
        assert pub.published == 55 and pub.dropped == 0 and not pub.connected

    try:
        run(main)
    finally:
        collector.close()


def test_mqtt_retained_values_and_clearing(mosquitto_broker: MosquittoBroker) -> None:
    def late_collector(n: int) -> list[tuple[str, bytes, bool]]:
        c = Collector(mosquitto_broker)
        try:
            wait_until(lambda: len(c.snapshot()) >= n, 5)
            time.sleep(0.3)  # nothing else should arrive
            return sorted(c.snapshot())
        finally:
            c.close()

    topic = f"twinedge/aas/submodels/{b64(SM)}/elements"
    topic2 = f"twinedge/aas/submodels/{b64(SM2)}/elements"

    async def main() -> None:
        bus = EventBus(start_sequence=1)
        pub = MqttPublisher(bus, mqtt_config(mosquitto_broker, retain_values=True))
        await pub.start()
        await eventually(lambda: pub.connected, what="publisher connected")
        bus.publish(Event(EventType.CREATED, EventKind.SUBMODELS, SM))  # not retained
        bus.publish(value_event("A.X", 1))
        bus.publish(value_event("A.Y", 2))
        bus.publish(value_event("B", 3))
        bus.publish(value_event("C", 4, sm=SM2))
        await eventually(lambda: pub.published == 5)
        got = await asyncio.to_thread(late_collector, 4)
        assert [(t, orjson.loads(p)["value"], r) for t, p, r in got] == [
            (f"{topic}/A/X/value-changed", 1, True), (f"{topic}/A/Y/value-changed", 2, True),
            (f"{topic}/B/value-changed", 3, True), (f"{topic2}/C/value-changed", 4, True)]
        # Deleting element A clears the retained values below it; deleting SM2 clears all of SM2's.
        bus.publish(Event(EventType.DELETED, EventKind.SUBMODELS, SM, "A"))
        bus.publish(Event(EventType.DELETED, EventKind.SUBMODELS, SM2))
        await eventually(lambda: pub.published == 5 + 3 + 2, what="clears and deletes acknowledged")
        got = await asyncio.to_thread(late_collector, 1)
        assert [(t, orjson.loads(p)["value"]) for t, p, _ in got] == [(f"{topic}/B/value-changed", 3)]
        await pub.stop()

    run(main)


def test_mqtt_buffers_while_broker_down_and_reconnects(mosquitto_broker: MosquittoBroker) -> None:
    # A persistent session, so that the broker keeps what arrives before this subscriber is back.
    collector = Collector(mosquitto_broker, client_id=f"collector-{uuid.uuid4().hex}", persistent=True)

    async def main() -> None:
        bus = EventBus(start_sequence=1)
        pub = MqttPublisher(bus, mqtt_config(mosquitto_broker, buffer_size=5))
        await pub.start()
        await eventually(lambda: pub.connected, what="publisher connected")
        for i in range(3):
            bus.publish(value_event("Before", i))
        await collector.wait_for(3)
        # (QoS 1 is at-least-once: stopping the broker before its acks arrive would resend them.)
        await eventually(lambda: pub.published == 3, what="3 acknowledged")

        await asyncio.to_thread(mosquitto_broker.stop)
        await eventually(lambda: not pub.connected, what="publisher noticed the broker is gone")
        t0 = time.perf_counter()
        for i in range(8):
            bus.publish(value_event("During", i))
        assert time.perf_counter() - t0 < 0.05  # publishing never waits for the broker
        await asyncio.sleep(0.3)
        assert pub.buffered + pub.dropped == 8 and pub.dropped >= 2  # bound 5 (+1 in the pump's hand)
        lost = pub.dropped

        await asyncio.to_thread(mosquitto_broker.start)  # same port; the publisher is not restarted
        # QoS 1 is at-least-once on both legs: a message in flight when the broker stopped may
        # come twice. Consumers dedupe on the sequence.
        await eventually(lambda: len(unique(collector.snapshot())) >= 3 + 8 - lost, 20, "the buffered events")
        during = unique(collector.snapshot())[3:]
        assert len(during) == 8 - lost
        values = [d["value"] for d in during]
        assert values == sorted(values) and values[-1] == 7  # the oldest were dropped, order kept
        assert [d["idShortPath"] for d in during] == ["During"] * len(during)
        # The first event after the gap says how many were lost.
        gap_at = next(i for i, d in enumerate(during) if d["dropped"])
        assert during[gap_at]["dropped"] == lost
        assert sum(d["dropped"] for d in during) == lost
        await eventually(lambda: pub.published == 3 + 8 - lost, what="all acknowledged")
        assert pub.reconnects == 1 and pub.buffered == 0
        bus.publish(value_event("After", 0))
        await eventually(lambda: unique(collector.snapshot())[-1]["idShortPath"] == "After", what="a new event")
        await pub.stop()

    try:
        run(main)
    finally:
        collector.close()


def test_mqtt_broker_down_at_start(mosquitto_broker: MosquittoBroker) -> None:
    collector = Collector(mosquitto_broker, persistent=True)
    mosquitto_broker.stop()

    async def main() -> None:
        bus = EventBus(start_sequence=1)
        pub = MqttPublisher(bus, mqtt_config(mosquitto_broker))
        await pub.start()  # returns at once although nothing listens
        try:
            bus.publish(Event(EventType.CREATED, EventKind.SHELLS, SHELL))
            await asyncio.sleep(0.2)
            assert not pub.connected and pub.buffered == 1
            await asyncio.to_thread(mosquitto_broker.start)
            await eventually(lambda: pub.published == 1, timeout=15, what="the first event acknowledged")
            bus.publish(Event(EventType.DELETED, EventKind.SHELLS, SHELL))
            await eventually(lambda: len(unique(collector.snapshot())) == 2, what="both events")
            topics = [t for t, _, _ in collector.snapshot()]
            assert topics[0] == f"twinedge/aas/shells/{b64(SHELL)}/created"
            assert topics[-1] == f"twinedge/aas/shells/{b64(SHELL)}/deleted"
            assert pub.reconnects == 0  # the first connection is not a reconnect
        finally:
            await pub.stop()

    try:
        run(main)
    finally:
        collector.close()


def test_stopping_server_ends_open_streams_first(tmp_path: Any) -> None:
    """A dashboard's open event stream must not hold the server's stop until uvicorn gives up on it (which
    cancels the stream's task and logs a traceback); the stream ends cleanly and the client sees its end."""
    import logging

    from tests.server import run_server
    from twin_server.config import ServerConfig

    class Errors(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.ERROR)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    errors = Errors()
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's loggers do not propagate to the root
    try:
        with run_server(ServerConfig(data_dir=tmp_path)) as server:
            uvicorn_log.addHandler(errors)
            port = int(server.base.split(":")[2].split("/")[0])
            client = SseClient(port, "/api/v3.0/events")
            assert client.block()["retry"] == "3000"
            ended: list[BaseException] = []

            def read_to_end() -> None:
                try:
                    while True:
                        client.block()
                except BaseException as exc:  # what ended the stream is the finding
                    ended.append(exc)

            reader = threading.Thread(target=read_to_end, daemon=True)
            reader.start()
        reader.join(10)
        client.close()
    finally:
        uvicorn_log.removeHandler(errors)
    assert len(ended) == 1 and isinstance(ended[0], EOFError), ended  # a clean end of the stream
    assert errors.messages == []
