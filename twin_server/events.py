"""Change events of the twin server: an in-process bus, a server-sent-events stream, an MQTT publisher.

Every change to a shell, submodel, submodel element or concept description is published as an
:class:`Event` on the server's :class:`EventBus`. Two consumers ship with it:

* :func:`sse_response` streams events to dashboards as ``text/event-stream``;
* :class:`MqttPublisher` forwards them to an MQTT broker (configured by :class:`MqttConfig`).

Events
------
``type`` is one of ``created``, ``updated``, ``deleted``, ``value-changed``; ``kind`` is one of
``shells``, ``submodels``, ``concept-descriptions`` (the repository names of AAS Part 2); ``id`` is
the identifiable's id (the IRI, not base64url); ``idShortPath`` names a submodel element (only with
kind ``submodels``; ``null`` for the identifiable itself); ``value`` is the new value-only
representation for ``value-changed`` (``null`` otherwise unless the publisher sets one);
``timestamp`` is ISO 8601 UTC; ``sequence`` is assigned by the bus when the event is published and
increases by one per published event (it starts at the process start time in microseconds since
the epoch, so it keeps increasing across restarts); ``dropped`` is the number of events this
consumer lost just before this one (normally 0; any value above 0 means "reload"). JSON form::

    {"sequence": 1764070000000001, "type": "value-changed", "kind": "submodels",
     "id": "urn:twinedge:sm:press-01:OperationalData:1.0", "idShortPath": "Hydraulics.OilTemperature",
     "value": 48.7, "timestamp": "2025-11-25T12:00:00.123456Z", "dropped": 0}

Bus
---
:meth:`EventBus.publish` is synchronous, O(subscribers), never blocks and never raises; it may be
called from the event loop or from any thread. Each :class:`Subscription` has a bounded queue: when
a consumer is too slow the oldest queued event is dropped, counted, and the next delivered event
carries the count in ``dropped``. The bus keeps the last ``history`` events so that a consumer that
reconnects with the last sequence it saw (SSE ``Last-Event-ID``) gets what it missed.

MQTT topic scheme
-----------------
With ``P`` the configured ``topic_prefix`` (default ``twinedge``), ``B`` the identifiable id as
base64url of its UTF-8 bytes without ``=`` padding (as in the AAS HTTP API paths) and ``T`` the
event type:

* identifiable events:   ``P/aas/{kind}/B/T``, e.g. ``twinedge/aas/shells/dXJuOnR3aW5lZGdlOmFhczpwcmVzcy0wMQ/created``
* element events:        ``P/aas/submodels/B/elements/{idShortPath with every "." replaced by "/"}/T``,
  e.g. ``twinedge/aas/submodels/dXJu.../elements/Hydraulics/OilTemperature/value-changed``; list
  indexes stay attached to their segment (``Markings[0].MarkingName`` -> ``Markings[0]/MarkingName``).

The last topic level is always the event type. The payload is the event's JSON (above), UTF-8.
``value-changed`` messages are retained when ``retain_values`` is on; a ``deleted`` event for a
submodel or element then also clears (empty retained payload) the retained value topics this
publisher wrote below it. Messages use the configured QoS (default 1).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aas_models.ids import IdError, b64url_decode, b64url_encode

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from starlette.requests import Request
    from starlette.responses import StreamingResponse

__all__ = [
    "Event",
    "EventBus",
    "EventError",
    "EventFilter",
    "EventFilterError",
    "EventKind",
    "EventType",
    "JsonValue",
    "MqttConfig",
    "MqttConfigError",
    "MqttPublisher",
    "Subscription",
    "event_topic",
    "sse_response",
]

log = logging.getLogger(__name__)

#: A JSON value (what orjson can write): None, bool, int, float, str, list, dict with str keys.
JsonValue = Any


class EventType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    VALUE_CHANGED = "value-changed"


class EventKind(StrEnum):
    SHELLS = "shells"
    SUBMODELS = "submodels"
    CONCEPT_DESCRIPTIONS = "concept-descriptions"


class EventError(ValueError):
    """An event that cannot be published as given (a programming error in the caller)."""


class EventFilterError(ValueError):
    """A subscription filter a client asked for that makes no sense; the message says what to send."""


_FORBIDDEN_IN_PATH = frozenset("/+#\x00 ")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, set | frozenset):
        return list(obj)
    return str(obj)


_JSON_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True, eq=False)
class Event:
    """One change. Build it with type, kind, id (and idShortPath, value); the bus stamps ``sequence``."""

    type: EventType
    kind: EventKind
    #: The identifiable's id (IRI), not base64url.
    id: str
    #: Dotted idShortPath of a submodel element (kind ``submodels`` only); None for the identifiable.
    id_short_path: str | None = None
    #: New value-only representation (for ``value-changed``); any JSON value.
    value: JsonValue = None
    #: When the change happened, timezone-aware (converted to UTC).
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Assigned by :meth:`EventBus.publish`; 0 until then.
    sequence: int = 0
    #: Events this consumer lost just before this one (set per subscriber on delivery).
    dropped: int = 0
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", EventType(self.type))
        except ValueError:
            raise EventError(f"event type {self.type!r} is not one of {[t.value for t in EventType]}") from None
        try:
            object.__setattr__(self, "kind", EventKind(self.kind))
        except ValueError:
            raise EventError(f"event kind {self.kind!r} is not one of {[k.value for k in EventKind]}") from None
        if not isinstance(self.id, str) or not self.id:
            raise EventError("event id must be the identifiable's non-empty id (IRI)")
        if self.id_short_path is not None:
            if self.kind is not EventKind.SUBMODELS:
                raise EventError(f"idShortPath {self.id_short_path!r} given for kind {self.kind}: only submodels "
                                 "have elements")
            if not self.id_short_path or self.id_short_path.startswith(".") or self.id_short_path.endswith(".") \
                    or ".." in self.id_short_path or _FORBIDDEN_IN_PATH.intersection(self.id_short_path):
                raise EventError(f"idShortPath {self.id_short_path!r} is not a dotted path of idShorts "
                                 "(e.g. 'Hydraulics.OilTemperature' or 'Markings[0].MarkingName')")
        if self.type is EventType.VALUE_CHANGED and self.kind is not EventKind.SUBMODELS:
            raise EventError(f"value-changed events exist only for submodels and their elements, not {self.kind}")
        ts = self.timestamp
        if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
            raise EventError(f"event timestamp {ts!r} must be a timezone-aware datetime (UTC)")
        if ts.utcoffset():
            object.__setattr__(self, "timestamp", ts.astimezone(UTC))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form as a dict (keys as in AAS JSON: camelCase)."""
        return {
            "sequence": self.sequence,
            "type": self.type.value,
            "kind": self.kind.value,
            "id": self.id,
            "idShortPath": self.id_short_path,
            "value": self.value,
            "timestamp": self.timestamp,
            "dropped": self.dropped,
        }

    def to_json(self) -> bytes:
        """The JSON form (one line, UTF-8), computed once per event object. Never raises: a value
        orjson cannot write is written as its ``str()``."""
        cached = self._json
        if cached is None:
            try:
                cached = orjson.dumps(self.to_dict(), default=_json_default, option=_JSON_OPTS)
            except (orjson.JSONEncodeError, TypeError) as exc:
                log.warning("event %s %s value is not JSON (%s); sending it as text", self.kind, self.id, exc)
                d = self.to_dict()
                d["value"] = str(self.value)
                cached = orjson.dumps(d, default=_json_default, option=_JSON_OPTS)
            object.__setattr__(self, "_json", cached)
        return cached

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Parse the JSON form (e.g. an MQTT payload) back into an event."""
        try:
            d = orjson.loads(data)
            ts = datetime.fromisoformat(d["timestamp"])
            return cls(type=d["type"], kind=d["kind"], id=d["id"], id_short_path=d.get("idShortPath"),
                       value=d.get("value"), timestamp=ts, sequence=int(d.get("sequence", 0)),
                       dropped=int(d.get("dropped", 0)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EventError):
                raise
            raise EventError(f"not a TwinEdge event: {exc}") from None


def _path_related(event_path: str | None, prefix: str) -> bool:
    """True when the element at event_path is the prefix, inside it, or contains it."""
    if event_path is None or event_path == prefix:
        return True
    if event_path.startswith(prefix):
        return event_path[len(prefix)] in ".["
    if prefix.startswith(event_path):
        return prefix[len(event_path)] in ".["
    return False


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants; an empty set means "any".

    ``id_short_path`` selects the element subtree at that dotted path in submodels: events on the
    element itself, anything inside it, any element containing it and the submodel itself (they
    all change what is at the path). It implies kind ``submodels``.
    """

    kinds: frozenset[EventKind] = frozenset()
    #: Identifiable ids (IRIs, not base64url).
    ids: frozenset[str] = frozenset()
    id_short_path: str | None = None
    types: frozenset[EventType] = frozenset()

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kinds", frozenset(EventKind(k) for k in self.kinds))
        except ValueError:
            raise EventFilterError(f"kind must be among {[k.value for k in EventKind]}, got "
                                   f"{sorted(map(str, self.kinds))}") from None
        try:
            object.__setattr__(self, "types", frozenset(EventType(t) for t in self.types))
        except ValueError:
            raise EventFilterError(f"type must be among {[t.value for t in EventType]}, got "
                                   f"{sorted(map(str, self.types))}") from None
        object.__setattr__(self, "ids", frozenset(self.ids))
        if self.id_short_path is not None:
            p = self.id_short_path
            if not p or p.startswith(".") or p.endswith(".") or ".." in p:
                raise EventFilterError(f"idShortPath {p!r} is not a dotted path such as 'Hydraulics.OilTemperature'")
            if self.kinds and EventKind.SUBMODELS not in self.kinds:
                raise EventFilterError("an idShortPath filter selects submodel elements; drop it or add kind=submodels")

    def matches(self, event: Event) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.types and event.type not in self.types:
            return False
        if self.ids and event.id not in self.ids:
            return False
        if self.id_short_path is not None:
            return event.kind is EventKind.SUBMODELS and _path_related(event.id_short_path, self.id_short_path)
        return True

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]] | Mapping[str, str]) -> EventFilter:
        """Build a filter from HTTP query parameters (pass ``request.query_params.multi_items()``).

        ``kind`` and ``type`` (repeatable or comma-separated), ``id`` (repeatable: the identifiable id
        base64url-encoded, as in the API's paths) and ``idShortPath``. Other parameters are ignored.
        """
        pairs = items.items() if isinstance(items, Mapping) else items
        kinds: set[EventKind] = set()
        types: set[EventType] = set()
        ids: set[str] = set()
        path: str | None = None
        for key, raw in pairs:
            values = [v.strip() for v in raw.split(",") if v.strip()]
            if key == "kind":
                for v in values:
                    try:
                        kinds.add(EventKind(v))
                    except ValueError:
                        raise EventFilterError(f"kind={v!r}: use one of {[k.value for k in EventKind]}") from None
            elif key == "type":
                for v in values:
                    try:
                        types.add(EventType(v))
                    except ValueError:
                        raise EventFilterError(f"type={v!r}: use one of {[t.value for t in EventType]}") from None
            elif key == "id":
                try:
                    ids.add(b64url_decode(raw))
                except IdError as exc:
                    raise EventFilterError(f"id: {exc}; send the identifiable id base64url-encoded") from None
            elif key == "idShortPath":
                if path is not None and path != raw:
                    raise EventFilterError("give idShortPath at most once")
                path = raw
        return cls(kinds=frozenset(kinds), ids=frozenset(ids), id_short_path=path, types=frozenset(types))


_ANY = EventFilter()


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Subscription:
    """An async iterator over the events that match a filter; one consumer at a time.

    Iteration ends when the subscription or the bus is closed (after the queued events when the bus
    closes). :meth:`get` with a timeout returns None on timeout, so a consumer can do other work
    (heartbeats) between events.
    """

    def __init__(self, bus: EventBus, flt: EventFilter, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue_size must be at least 1")
        self.filter = flt
        self.maxsize = maxsize
        self._bus = bus
        self._lock = bus._lock
        self._queue: deque[Event] = deque(maxlen=maxsize)
        self._pending_dropped = 0
        #: Events dropped for this subscriber because it was too slow (total).
        self.dropped = 0
        #: Events handed to the consumer.
        self.delivered = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None
        self._waiter_thread = 0

    # -- producer side (called with the bus lock held) ------------------------------------------
    def _offer(self, event: Event) -> bool:
        if self._closed:
            return False
        q = self._queue
        lost = len(q) == self.maxsize
        if lost:
            self._pending_dropped += 1
            self.dropped += 1
        q.append(event)
        self._wake()
        return lost

    def _wake(self) -> None:
        fut = self._waiter
        if fut is None:
            return
        self._waiter = None
        if threading.get_ident() == self._waiter_thread:
            _set_done(fut)
        elif self._waiter_loop is not None:
            with contextlib.suppress(RuntimeError):  # the consumer's loop is closed
                self._waiter_loop.call_soon_threadsafe(_set_done, fut)

    # -- consumer side ---------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _take(self) -> Event | None:
        if not self._queue:
            return None
        event = self._queue.popleft()
        if self._pending_dropped:
            event = replace(event, dropped=self._pending_dropped)
            self._pending_dropped = 0
        self.delivered += 1
        return event

    def get_nowait(self) -> Event | None:
        """The next queued event, or None when none is queued."""
        with self._lock:
            return self._take()

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None after ``timeout`` seconds without one, or when closed and drained."""
        while True:
            with self._lock:
                event = self._take()
                if event is not None:
                    return event
                if self._closed:
                    return None
                if self._waiter is not None and not self._waiter.done():
                    raise RuntimeError("a Subscription has one consumer; this one is already waiting")
                loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                self._waiter, self._waiter_loop, self._waiter_thread = fut, loop, threading.get_ident()
            try:
                if timeout is None:
                    await fut
                else:
                    async with asyncio.timeout(timeout):
                        await fut
            except TimeoutError:
                with self._lock:
                    return self._take()
            finally:
                with self._lock:
                    if self._waiter is fut:
                        self._waiter = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self, *, drain: bool = False) -> None:
        """Stop receiving. With ``drain`` the events already queued are still delivered."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if not drain:
                    self._queue.clear()
                self._wake()
        self._bus._forget(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """In-process fan-out of events to subscribers. Thread-safe; one per server process.

    ``queue_size`` is the default bound of each subscriber's queue, ``history`` how many of the last
    events are kept for resuming consumers (0 disables), ``start_sequence`` the first sequence
    number (default: microseconds since the epoch at construction).
    """

    def __init__(self, *, queue_size: int = 1000, history: int = 1000, start_sequence: int | None = None) -> None:
        if queue_size < 1 or history < 0:
            raise ValueError("queue_size must be >= 1 and history >= 0")
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        #: Subscriptions that feed a client's open stream (SSE): ended first when the server stops.
        self._streams: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._history: deque[Event] = deque(maxlen=history) if history else deque(maxlen=0)
        first = time.time_ns() // 1000 if start_sequence is None else start_sequence
        self.first_sequence = first
        self._counter = itertools.count(first)
        self._next = first
        self._closed = False
        #: Events published (stamped and fanned out).
        self.published = 0
        #: Events dropped for slow subscribers, summed over all subscribers.
        self.dropped = 0
        #: Internal errors swallowed by publish (should stay 0).
        self.errors = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_sequence(self) -> int:
        """The sequence of the last published event (first_sequence - 1 before any)."""
        return self._next - 1

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "errors": self.errors,
                "subscribers": self.subscriber_count, "last_sequence": self.last_sequence}

    def publish(self, event: Event) -> Event | None:
        """Stamp ``event`` with the next sequence and hand it to every matching subscriber.

        A fresh event (sequence 0) is stamped in place; one that already has a sequence is copied.
        Returns the stamped event (None when the bus is closed or on an internal error, which is
        logged). Never blocks on consumers and never raises.
        """
        try:
            with self._lock:
                if self._closed:
                    return None
                seq = next(self._counter)
                self._next = seq + 1
                if event.sequence == 0 and event.dropped == 0:  # a fresh event: stamp it in place
                    object.__setattr__(event, "sequence", seq)
                    object.__setattr__(event, "_json", None)
                    stamped = event
                else:  # published before (or a parsed one): stamp a copy
                    stamped = replace(event, sequence=seq, dropped=0)
                self._history.append(stamped)
                self.published += 1
                for sub in list(self._subs):
                    if sub.filter.matches(stamped) and sub._offer(stamped):
                        self.dropped += 1
                return stamped
        except Exception:
            self.errors += 1
            log.exception("event bus: could not publish %r", event)
            return None

    def end_streams(self) -> None:
        """Close the subscriptions of open client streams (a stopping server must not wait for their
        clients to leave); the others (MQTT) keep receiving until the bus closes."""
        for sub in list(self._streams):
            sub.close()

    def subscribe(self, flt: EventFilter | None = None, *, queue_size: int | None = None,
                  after: int | None = None, stream: bool = False) -> Subscription:
        """A new subscription; ``after`` resumes after that sequence (replaying kept history).

        When events after ``after`` are no longer kept (or ``after`` is not from this bus's
        lifetime) the first delivered event carries the number lost in ``dropped`` (at least 1 if
        unknown). The bus holds subscriptions weakly: drop the last reference or call close().
        """
        sub = Subscription(self, flt or _ANY, queue_size or self.queue_size)
        if stream:
            self._streams.add(sub)
        with self._lock:
            if self._closed:
                sub._closed = True
                return sub
            if after is not None and after != self._next - 1:
                if self.first_sequence - 1 <= after < self._next:
                    oldest = self._history[0].sequence if self._history else self._next
                    lost = max(0, oldest - 1 - after)
                    for ev in self._history:
                        if ev.sequence > after and sub.filter.matches(ev):
                            sub._offer(ev)
                    if lost:
                        sub._pending_dropped += lost
                else:  # another process's (or replica's) sequence: cannot tell what was missed
                    sub._pending_dropped += 1
            self._subs.add(sub)
        return sub

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def close(self) -> None:
        """Refuse further events; subscribers get what is queued, then their iteration ends."""
        with self._lock:
            self._closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.close(drain=True)


# --------------------------------------------------------------------------------------------
# Server-sent events
# --------------------------------------------------------------------------------------------

def _sse_frame(event: Event) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.sequence, event.type.value.encode(), event.to_json())


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def sse_response(bus: EventBus, flt: EventFilter | None, request: Request, *, heartbeat: float = 15.0,
                 queue_size: int | None = None, retry_ms: int = 3000, batch: int = 256) -> StreamingResponse:
    """A ``text/event-stream`` response with the bus's events that match ``flt``.

    Each event is ``id: <sequence>``, ``event: <type>``, ``data: <JSON>``; a comment line
    (``: heartbeat``) goes out after ``heartbeat`` seconds without events. The stream ends when the
    client disconnects or the bus closes. A reconnecting client's ``Last-Event-ID`` header (or a
    ``lastEventId`` query parameter) resumes from the bus's history. The subscription is made
    before this returns, so nothing published after the call is missed.
    """
    from starlette.background import BackgroundTask
    from starlette.responses import StreamingResponse

    sub = bus.subscribe(flt, queue_size=queue_size, after=_last_event_id(request), stream=True)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: %d\n\n" % retry_ms
            while True:
                event = await sub.get(timeout=heartbeat)
                if event is None:
                    if sub.closed or await request.is_disconnected():
                        return
                    yield b": heartbeat\n\n"
                    continue
                chunk = [_sse_frame(event)]
                while len(chunk) < batch and (more := sub.get_nowait()) is not None:
                    chunk.append(_sse_frame(more))
                yield b"".join(chunk)
        finally:
            sub.close()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(sub.close),
    )


# --------------------------------------------------------------------------------------------
# MQTT
# --------------------------------------------------------------------------------------------

class MqttConfigError(ValueError):
    """The MQTT configuration cannot be used as it is; the message says what to change."""


class MqttConfig(BaseModel):
    """Where and how the server publishes events over MQTT (``mqtt:`` section of its YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "twinedge"
    #: Default: ``twinedge-server-<hostname>-<pid>`` (unique per replica).
    client_id: str | None = None
    username: str | None = None
    #: Name of the environment variable that holds the password (never the password itself).
    password_env: str | None = None
    tls: bool = False
    #: CA bundle for TLS; None uses the system's trusted CAs.
    ca_file: Path | None = None
    qos: Literal[0, 1, 2] = 1
    #: Publish value-changed messages retained (and clear them when the element is deleted).
    retain_values: bool = False
    keepalive: int = Field(default=30, ge=5)
    #: Reconnect backoff in seconds: doubles from min to max.
    reconnect_min_delay: int = Field(default=1, ge=1)
    reconnect_max_delay: int = Field(default=30, ge=1)
    #: Events kept while the broker is unreachable; beyond that the oldest are dropped (counted).
    buffer_size: int = Field(default=10_000, ge=1)
    #: Messages handed to the MQTT client and not yet acknowledged, at most.
    max_inflight: int = Field(default=100, ge=1)

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if not v or v.startswith(("/", "$")) or v.endswith("/") or "//" in v or set(v) & {"+", "#", "\x00"}:
            raise ValueError("topic_prefix must be topic levels like 'twinedge' or 'plant1/twinedge': no wildcards "
                             "(+ #), no leading '$' or '/', no trailing or doubled '/'")
        return v

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false: set tls: true or remove ca_file")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay must be >= reconnect_min_delay")
        return self


def event_topic(prefix: str, event: Event) -> str:
    """The MQTT topic of ``event`` (see the module docstring for the scheme)."""
    base = f"{prefix}/aas/{event.kind.value}/{b64url_encode(event.id)}"
    if event.id_short_path is not None:
        base += "/elements/" + event.id_short_path.replace(".", "/")
    return f"{base}/{event.type.value}"


_Message = tuple[str, bytes, bool]  # topic, payload, retain


class MqttPublisher:
    """Forwards the bus's events to an MQTT broker with paho-mqtt (its network thread).

    ``await start()`` subscribes to the bus and connects in the background (the broker may be down:
    paho retries with backoff, and events wait in a bounded buffer); ``await stop()`` flushes for up
    to ``timeout`` seconds and disconnects. Nothing here blocks the event loop. Counters for metrics:
    ``published`` (acknowledged by the broker, or written for QoS 0), ``dropped`` (lost to a full
    buffer, a stop, or an error), ``reconnects``, plus ``connected`` and ``buffered``.
    """

    def __init__(self, bus: EventBus, config: MqttConfig, *, flt: EventFilter | None = None) -> None:
        self.bus = bus
        self.config = config
        self.filter = flt
        self.published = 0
        self.reconnects = 0
        self._errors = 0
        self._lost_on_stop = 0
        self._connects = 0
        self.connected = False
        self._outstanding = 0
        self._client: Client | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._local: deque[_Message] = deque()
        #: submodel id -> {idShortPath or None: retained topic}
        self._retained: dict[str, dict[str | None, str]] = {}
        self._last_state_log = ""
        self._stopping = False

    # -- counters ---------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return (self._sub.dropped if self._sub else 0) + self._errors + self._lost_on_stop

    @property
    def buffered(self) -> int:
        return (self._sub.queued if self._sub else 0) + len(self._local)

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "reconnects": self.reconnects,
                "buffered": self.buffered, "connected": int(self.connected)}

    # -- lifecycle --------------------------------------------------------------------------------
    def _password(self) -> str | None:
        name = self.config.password_env
        if name is None:
            return None
        value = os.environ.get(name)
        if value is None:
            raise MqttConfigError(f"mqtt.password_env names the environment variable {name!r}, which is not set: "
                                  "export it with the broker password, or remove password_env")
        return value

    def _make_client(self) -> Client:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        cfg = self.config
        client_id = cfg.client_id or f"twinedge-server-{socket.gethostname()}-{os.getpid()}"
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                        protocol=MQTTProtocolVersion.MQTTv311)
        password = self._password()
        if cfg.username is not None or password is not None:
            client.username_pw_set(cfg.username or "", password)
        if cfg.tls:
            if cfg.ca_file is not None and not cfg.ca_file.is_file():
                raise MqttConfigError(f"mqtt.ca_file {cfg.ca_file} does not exist: give the broker's CA bundle "
                                      "(PEM) or remove ca_file to use the system's CAs")
            client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
        client.reconnect_delay_set(cfg.reconnect_min_delay, cfg.reconnect_max_delay)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_publish = self._cb_publish
        return client

    async def start(self) -> None:
        """Subscribe to the bus and start connecting (returns at once)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()  # bound to this loop
        self._connects = 0
        self._outstanding = 0
        client = self._make_client()
        self._client = client
        self._sub = self.bus.subscribe(self.filter, queue_size=self.config.buffer_size)
        client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        client.loop_start()
        self._task = asyncio.create_task(self._pump(), name="twinedge-mqtt-events")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop taking events, publish what is buffered for up to ``timeout`` s, then disconnect."""
        task, client, sub = self._task, self._client, self._sub
        if task is None or client is None or sub is None:
            return
        sub.close(drain=True)
        self._stopping = True
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
            while self._outstanding and self.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            log.exception("mqtt: the event pump failed")
        left = len(self._local) + sub.queued + (self._outstanding if self.config.qos else 0)
        if left:
            log.warning("mqtt: stopping with %d events not delivered to %s:%d", left, self.config.host,
                        self.config.port)
            self._lost_on_stop += left
        self._local.clear()
        self._task = None
        await asyncio.to_thread(self._shutdown_client, client)
        self.connected = False
        self._stopping = False

    @staticmethod
    def _shutdown_client(client: Client) -> None:
        try:
            client.disconnect()
        finally:
            client.loop_stop()

    # -- paho thread -> event loop ----------------------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed
            loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._call(self._on_connect, not reason.is_failure, str(reason))

    def _cb_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        self._call(self._on_disconnect, str(reason))

    def _cb_publish(self, client: Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._call(self._on_published)

    # -- event loop side --------------------------------------------------------------------------
    def _update_ready(self) -> None:
        if self.connected and self._outstanding < self.config.max_inflight:
            self._ready.set()
        else:
            self._ready.clear()

    def _log_state(self, level: int, msg: str, *args: Any) -> None:
        text = msg % args
        if text != self._last_state_log:
            self._last_state_log = text
            log.log(level, "%s", text)

    def _on_connect(self, ok: bool, reason: str) -> None:
        if not ok:
            self._log_state(logging.WARNING, "mqtt: broker %s:%d refused the connection: %s", self.config.host,
                            self.config.port, reason)
            return
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
        self.connected = True
        self._log_state(logging.INFO, "mqtt: connected to %s:%d", self.config.host, self.config.port)
        self._update_ready()

    def _on_disconnect(self, reason: str) -> None:
        self.connected = False
        if self.config.qos == 0:  # paho discards unsent QoS 0 messages on reconnect
            self._outstanding = 0
        if self._stopping:
            self._log_state(logging.INFO, "mqtt: disconnected from %s:%d", self.config.host, self.config.port)
        else:
            self._log_state(logging.WARNING, "mqtt: disconnected from %s:%d (%s); buffering events",
                            self.config.host, self.config.port, reason)
        self._update_ready()

    def _on_published(self) -> None:
        self.published += 1
        if self._outstanding:
            self._outstanding -= 1
        self._update_ready()

    def _messages(self, event: Event) -> list[_Message]:
        cfg = self.config
        topic = event_topic(cfg.topic_prefix, event)
        retain = cfg.retain_values and event.type is EventType.VALUE_CHANGED
        out: list[_Message] = []
        if cfg.retain_values and event.kind is EventKind.SUBMODELS:
            if retain:
                self._retained.setdefault(event.id, {})[event.id_short_path] = topic
            elif event.type is EventType.DELETED and event.id in self._retained:
                known = self._retained[event.id]
                if event.id_short_path is None:
                    gone = list(known)
                else:
                    p = event.id_short_path
                    gone = [k for k in known if k is not None and (k == p or k.startswith((p + ".", p + "[")))]
                out.extend((known.pop(k), b"", True) for k in gone)
                if not known:
                    del self._retained[event.id]
        out.append((topic, event.to_json(), retain))
        return out

    async def _pump(self) -> None:
        from paho.mqtt.enums import MQTTErrorCode

        sub, client, qos = self._sub, self._client, self.config.qos
        assert sub is not None and client is not None
        local = self._local
        while True:
            if not local:
                event = await sub.get()
                if event is None:
                    return
                try:
                    local.extend(self._messages(event))
                except Exception:
                    self._errors += 1
                    log.exception("mqtt: cannot make a message of %r", event)
                    continue
            await self._ready.wait()
            topic, payload, retain = local[0]
            try:
                info = client.publish(topic, payload, qos=qos, retain=retain)
            except Exception as exc:
                local.popleft()
                self._errors += 1
                log.error("mqtt: cannot publish to %s: %s", topic, exc)
                continue
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos == 0:
                self.connected = False  # paho noticed first; keep the message until on_connect
                self._update_ready()
                continue
            local.popleft()
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self._outstanding += 1  # QoS>0 with NO_CONN: paho keeps it and sends it on reconnect
                self._update_ready()
            else:
                self._errors += 1
                log.error("mqtt: publish to %s failed: %s", topic, info.rc)
