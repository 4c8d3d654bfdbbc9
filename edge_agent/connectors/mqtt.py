"""MQTT connector: subscribe to topics on a broker and turn their payloads into Readings.

Configuration (one entry of the agent's ``sources``)::

    - type: mqtt
      name: line1-broker
      host: broker.local
      port: 8883                 # default 1883, or 8883 with tls
      protocol: "5"              # "3.1.1" (default) or 5
      client_id: agent-line1     # default twinedge-agent-<host>-<name>-<pid>-<random>
                                 # (without -<pid>-<random> when persistent_session is on)
      username: agent
      password_env: LINE1_MQTT_PASSWORD   # the variable's name; the password never goes in the file
      tls: true
      ca_file: /etc/twinedge/line1-ca.pem # default: the system's trusted CAs
      qos: 1
      backoff: {initial: 0.5, maximum: 30}
      topics:
        - filter: plant/+/press/+/telemetry       # '+' one level, '#' the rest
          payload: json
          time_path: ts                            # ISO 8601 string or epoch milliseconds
          signals:
            - {signal: "{1}.{2}.oil_temp", path: data.temp}
            - {signal: "{1}.{2}.pressure", path: "values[2]"}
        - filter: plant/hall1/power
          payload: number                          # the payload is the number itself: b"23.5"
          signal: hall1.power
        - filter: plant/hall1/state
          payload: text                            # the payload as UTF-8 text
          signal: hall1.state

Topic filters
    MQTT filters: ``+`` matches exactly one level, ``#`` (last level only) any number of levels including
    none. ``$share/<group>/<filter>`` shared subscriptions work (matching uses ``<filter>``).

Signal-name templates
    With wildcards in the filter, a signal name may contain ``{1}``, ``{2}``, ... : the text the first,
    second, ... wildcard of the filter matched, counted left to right. For ``+`` that is one topic level;
    for ``#`` it is the rest of the topic, levels joined by ``/`` (empty when the topic is the filter's
    parent). With filter ``plant/+/press/+/telemetry`` the topic ``plant/hall1/press/p07/telemetry`` gives
    ``{1}`` = ``hall1`` and ``{2}`` = ``p07``, so ``"{1}.{2}.oil_temp"`` names ``hall1.p07.oil_temp``. No
    other braces are allowed. Such signals exist once a matching topic has been seen: :meth:`signals`
    lists the names without templates plus the templated names seen so far.

JSON paths
    Dotted keys and ``[n]`` indexes, as in ``data.temp``, ``values[2]``, ``machines[0].state`` or
    ``[1]`` (the payload is an array); ``[-1]`` is the last element; ``["a.b"]`` reads a key that contains
    dots or brackets; ``$`` alone is the whole payload and a leading ``$.`` is allowed. The value found
    must be a number, string or boolean.

Source time
    With ``time_path`` (JSON payloads) a reading's source time comes from the payload: an ISO 8601 string
    (without an offset it is taken as UTC) or a number of milliseconds since the epoch. Otherwise the
    source time is the receive time.

Errors
    A payload that is not JSON, lacks a path, holds an object/array/null there, or is not a number for
    ``number`` (or not UTF-8 for ``text``) is a per-signal error: the signal gets a BAD reading (value
    None) at the receive time, ``stats.errors`` grows by one, ``stats.signal_errors[signal]`` says
    ``topic <topic>: <reason>`` (until the signal next reads fine), and everything else keeps running. A
    bad ``time_path`` keeps the value but with quality UNCERTAIN at the receive time (also counted).
    When the broker is unreachable or refuses us, every known signal gets one BAD reading and the
    connector reconnects with ``backoff`` (exponential with jitter), subscribing to every filter again.

Delivery and speed
    paho-mqtt 2.x runs the network loop in a thread of this connector. Its ``on_message`` only appends
    the message to a list; the event loop is woken once per batch, decodes everything that arrived in
    one go and emits one ``Sequence[Reading]`` per batch (at most ``emit_batch`` messages). A QoS 1/2
    message is acknowledged once its readings are in the agent's durable buffer (``emit`` returned), so a
    crash or SIGKILL before that makes the broker deliver it again (at least once; the stores are
    idempotent, so nothing is stored twice). If the agent falls behind by
    ``max_pending`` messages the network thread stops reading (TCP back-pressure to the broker, which
    then queues or drops by its own limits: Mosquitto keeps ``max_queued_messages``, default 1000, per
    client and drops beyond that even at QoS 1). ``persistent_session: true`` keeps the session (and the
    messages queued for us) across reconnects: nothing is lost in a short outage, but messages queued
    while we were away arrive late and, without ``time_path``, carry their receive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aas_models.timeseries.base import Quality, Value
from edge_agent.connectors.base import Backoff, Connector, Emit, Reading

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "JsonSignal",
    "MqttConfigError",
    "MqttConnection",
    "MqttConnector",
    "MqttSourceConfig",
    "MqttTopic",
    "compile_json_path",
    "create",
    "make_client",
    "parse_filter",
]

log = logging.getLogger(__name__)


class MqttConfigError(ValueError):
    """An MQTT configuration that cannot work as given; the message says what to change."""


# ---------------------------------------------------------------------------------------------
# Topic filters, templates, JSON paths
# ---------------------------------------------------------------------------------------------

def parse_filter(flt: str) -> tuple[str, ...]:
    """The levels a filter matches against (without a ``$share/<group>/`` prefix); ValueError if invalid."""
    if not flt:
        raise ValueError("a topic filter must not be empty")
    if "\x00" in flt:
        raise ValueError(f"topic filter {flt!r} contains a NUL character")
    levels = flt.split("/")
    if levels[0] == "$share":
        if len(levels) < 3 or not levels[1] or set(levels[1]) & {"+", "#"}:
            raise ValueError(f"shared subscription {flt!r} must look like $share/<group>/<filter>")
        levels = levels[2:]
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"topic filter {flt!r}: '#' must be a whole level and the last one, as in 'a/b/#'")
        if "+" in level and level != "+":
            raise ValueError(f"topic filter {flt!r}: '+' must be a whole level, as in 'a/+/c'")
    return tuple(levels)


def _wildcards(levels: tuple[str, ...]) -> int:
    return sum(1 for level in levels if level in ("+", "#"))


def _match(levels: tuple[str, ...], topic: str) -> tuple[str, ...] | None:
    """The wildcard matches of ``topic`` against filter ``levels``, or None if it does not match."""
    parts = topic.split("/")
    if topic.startswith("$") and levels[0] in ("+", "#"):
        return None  # MQTT: wildcards at the first level do not match $SYS and other $ topics
    found: list[str] = []
    for i, level in enumerate(levels):
        if level == "#":
            found.append("/".join(parts[i:]))
            return tuple(found)
        if i >= len(parts):
            return None
        if level == "+":
            found.append(parts[i])
        elif level != parts[i]:
            return None
    return tuple(found) if len(parts) == len(levels) else None


_TEMPLATE_REF = re.compile(r"\{(\d+)\}")

#: A compiled signal-name template: literal text and 1-based wildcard numbers.
_Template = tuple[str | int, ...]


def _compile_template(name: str, wildcards: int, flt: str) -> _Template:
    parts: list[str | int] = []
    pos = 0
    for m in _TEMPLATE_REF.finditer(name):
        parts.append(name[pos:m.start()])
        n = int(m.group(1))
        if not 1 <= n <= wildcards:
            raise ValueError(f"signal {name!r} refers to {{{n}}} but filter {flt!r} has "
                             f"{wildcards} wildcard(s): use {{1}}..{{{wildcards}}}" if wildcards else
                             f"signal {name!r} refers to {{{n}}} but filter {flt!r} has no wildcards")
        parts.append(n)
        pos = m.end()
    parts.append(name[pos:])
    literal = "".join(p for p in parts if isinstance(p, str))
    if "{" in literal or "}" in literal:
        raise ValueError(f"signal {name!r}: braces are only allowed as wildcard references like {{1}}")
    return tuple(p for p in parts if p != "")


def _template_pattern(template: _Template) -> re.Pattern[str]:
    """A regex for every name the template can render (a wildcard match is non-empty text)."""
    return re.compile("".join(re.escape(p) if isinstance(p, str) else ".+" for p in template))


def _render(template: _Template, matches: tuple[str, ...]) -> str:
    return "".join(p if isinstance(p, str) else matches[p - 1] for p in template)


_PATH_TOKEN = re.compile(r"""
    \.?(?P<key>[^.\[\]"']+)         # key, after a dot (or at the start)
  | \[(?P<index>-?\d+)\]            # [2], [-1]
  | \[(?P<quoted>"(?:[^"\\]|\\.)*"|'[^']*')\]   # ["a.b"] or ['a.b']
""", re.VERBOSE)

#: A compiled JSON path: keys (str) and list indexes (int).
JsonPath = tuple[str | int, ...]


def compile_json_path(path: str) -> JsonPath:
    """Steps of a dotted/indexed JSON path (see the module docstring); ValueError if it is malformed."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text.startswith("."):
        text = text[1:]
        if not text:
            raise ValueError(f"JSON path {path!r} ends after '$.': name a key, as in '$.data.temp'")
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _PATH_TOKEN.match(text, pos)
        if m is None or (m.group("key") is not None and pos > 0 and text[pos] != "."):
            raise ValueError(f"JSON path {path!r} is malformed at {text[pos:]!r}: use keys and indexes as in "
                             "'data.temp', 'values[2]' or 'a[\"b.c\"]'")
        if m.group("key") is not None:
            steps.append(m.group("key"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        else:
            quoted = m.group("quoted")
            steps.append(orjson.loads(quoted) if quoted[0] == '"' else quoted[1:-1])
        pos = m.end()
    return tuple(steps)


def _path_text(steps: JsonPath) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[^.\[\]\"']+", step):
            out += ("." if out else "") + step
        else:
            out += f"[{orjson.dumps(step).decode()}]"
    return out or "$"


class _PathError(Exception):
    pass


def _extract(doc: Any, steps: JsonPath) -> Any:
    """The value at ``steps`` in ``doc``; raises _PathError saying where the path and the payload part."""
    cur = doc
    try:
        for step in steps:
            if type(cur) is str:  # "abc"[0] would be "a": a string is never a container here
                raise TypeError
            cur = cur[step]
    except (KeyError, IndexError, TypeError):
        _explain(doc, steps)
    return cur


def _explain(doc: Any, steps: JsonPath) -> None:
    cur = doc
    for i, step in enumerate(steps):
        where = _path_text(steps[:i]) if i else "the top"
        if isinstance(step, str) and isinstance(cur, dict):
            if step not in cur:
                raise _PathError(f"has no key {step!r} at {where}")
            cur = cur[step]
        elif isinstance(step, int) and isinstance(cur, list):
            if not -len(cur) <= step < len(cur):
                raise _PathError(f"has no index [{step}] at {where} (the array has {len(cur)} elements)")
            cur = cur[step]
        else:
            raise _PathError(f"has {_kind(cur)} at {where} where the path expects "
                             f"{'an object' if isinstance(step, str) else 'an array'}")
    raise _PathError("does not match the path")  # not reached: _extract only calls this after a failure


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


#: Types a signal's value may have (anything else in a JSON payload is a per-signal error).
_SCALARS = frozenset({float, int, str, bool})
_NUMBER = re.compile(rb"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")
_INTEGER = re.compile(rb"\s*[-+]?\d+\s*")

# Reasonable instants only (a number in seconds instead of ms lands in 1970 and is still accepted).
_MIN_MS = -62_135_596_800_000  # 0001-01-01
_MAX_MS = 253_402_300_799_999  # 9999-12-31


def _parse_time(raw: Any) -> datetime:
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise _PathError(f"is {raw[:40]!r}, not an ISO 8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not (math.isfinite(raw) and _MIN_MS <= raw <= _MAX_MS):
            raise _PathError(f"is {raw}, outside the range of epoch milliseconds")
        return datetime.fromtimestamp(raw / 1000, UTC)
    raise _PathError(f"is {_kind(raw)}, not an ISO 8601 string or epoch milliseconds")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

class MqttConnection(BaseModel):
    """Where the broker is and how to log in: shared by this connector and the MQTT sink."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    #: Default 1883, or 8883 with ``tls``.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: ``"3.1.1"`` or ``"5"`` (YAML ``5`` and ``"5.0"`` are accepted too).
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str | None = Field(default=None, min_length=1, max_length=256)
    username: str | None = None
    #: Name of the environment variable holding the password (never the password itself).
    password_env: str | None = Field(default=None, min_length=1)
    tls: bool = False
    #: CA bundle (PEM) to verify the broker; None uses the system's trusted CAs.
    ca_file: Path | None = None
    #: Client certificate and key (PEM) for brokers that require them.
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = Field(default=30, ge=5, le=65535)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, v: Any) -> Any:
        if v in (5, 5.0, "5.0", "v5", "5"):
            return "5"
        if v in ("311", "v3.1.1", "3.1.1"):
            return "3.1.1"
        return v

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise ValueError("ca_file/cert_file/key_file are set but tls is false: set tls: true or remove them")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate)")
        return self

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @property
    def address(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.broker_port}"


class JsonSignal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal: str = Field(min_length=1)
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        compile_json_path(v)
        return v


class MqttTopic(BaseModel):
    """One subscription and how its payloads become signals."""

    model_config = ConfigDict(extra="forbid")
    filter: str
    payload: Literal["json", "number", "text"] = "json"
    #: For ``json``: the signals and where each one is in the payload.
    signals: list[JsonSignal] = Field(default_factory=list)
    #: For ``number`` and ``text``: the one signal the payload is.
    signal: str | None = Field(default=None, min_length=1)
    #: For ``json``: where the source timestamp is (ISO 8601 or epoch ms); default: the receive time.
    time_path: str | None = None

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: str) -> str:
        parse_filter(v)
        return v

    @field_validator("time_path")
    @classmethod
    def _time_path(cls, v: str | None) -> str | None:
        if v is not None:
            compile_json_path(v)
        return v

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.payload == "json":
            if not self.signals or self.signal is not None:
                raise ValueError(f"topic {self.filter!r}: a json payload needs 'signals' (a list of "
                                 "{signal, path}) and no 'signal'")
        else:
            if self.signal is None or self.signals:
                raise ValueError(f"topic {self.filter!r}: a {self.payload} payload needs one 'signal' and no "
                                 "'signals' list")
            if self.time_path is not None:
                raise ValueError(f"topic {self.filter!r}: time_path only works with payload: json")
        wildcards = _wildcards(parse_filter(self.filter))
        for name in self.signal_names():
            _compile_template(name, wildcards, self.filter)
        return self

    def signal_names(self) -> list[str]:
        """The configured names (templates unresolved)."""
        return [s.signal for s in self.signals] if self.payload == "json" else [self.signal or ""]


class MqttSourceConfig(MqttConnection):
    """An MQTT source of the agent (see the module docstring for an example)."""

    type: Literal["mqtt"]
    name: str = Field(min_length=1)
    #: QoS of the subscriptions.
    qos: Literal[0, 1, 2] = 1
    backoff: Backoff = Field(default_factory=Backoff)
    topics: list[MqttTopic] = Field(min_length=1)
    #: Keep the broker session across reconnects (needs a stable client_id, which the default is).
    persistent_session: bool = False
    #: MQTT 5 session expiry in seconds when ``persistent_session`` is on.
    session_expiry: int = Field(default=3600, ge=0)
    #: Messages waiting for the event loop before the network thread stops reading.
    max_pending: int = Field(default=100_000, ge=100)
    #: Most messages decoded into one emitted batch.
    emit_batch: int = Field(default=5_000, ge=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: dict[str, str] = {}
        filters: set[str] = set()
        for topic in self.topics:
            if topic.filter in filters:
                raise ValueError(f"topic filter {topic.filter!r} appears twice: list all its signals in one entry")
            filters.add(topic.filter)
            for name in topic.signal_names():
                if "{" in name:
                    continue
                if name in seen:
                    raise ValueError(f"signal {name!r} is produced by topics {seen[name]!r} and {topic.filter!r}: "
                                     "a signal must come from one place")
                seen[name] = topic.filter
        return self


# ---------------------------------------------------------------------------------------------
# paho client (shared with the MQTT sink)
# ---------------------------------------------------------------------------------------------

def _password(conn: MqttConnection, environ: Mapping[str, str]) -> str | None:
    if conn.password_env is None:
        return None
    value = environ.get(conn.password_env)
    if value is None:
        raise MqttConfigError(f"password_env names the environment variable {conn.password_env!r}, which is not "
                              "set: export it with the broker password, or remove password_env")
    return value


def _nodelay(client: Client, userdata: Any, sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(conn: MqttConnection, environ: Mapping[str, str], *, client_id: str, clean: bool,
                client_class: type[Client] | None = None, manual_ack: bool = False) -> Client:
    """A paho 2.x client (callback API 2) with credentials, TLS and TCP_NODELAY set; not connected.

    ``clean`` is the MQTT 3.1.1 clean-session flag; for MQTT 5 pass ``clean_start`` to ``connect``.
    Raises MqttConfigError for a missing password variable or certificate file.
    """
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    v5 = conn.protocol == "5"
    client = (client_class or Client)(CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                    clean_session=None if v5 else clean, manual_ack=manual_ack)
    password = _password(conn, environ)
    if conn.username is not None or password is not None:
        client.username_pw_set(conn.username or "", password)
    if conn.tls:
        for what, path in (("ca_file", conn.ca_file), ("cert_file", conn.cert_file), ("key_file", conn.key_file)):
            if path is not None and not path.is_file():
                raise MqttConfigError(f"{what} {path} does not exist: give a PEM file, or remove {what}")
        try:
            client.tls_set(ca_certs=str(conn.ca_file) if conn.ca_file else None,
                           certfile=str(conn.cert_file) if conn.cert_file else None,
                           keyfile=str(conn.key_file) if conn.key_file else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise MqttConfigError(f"cannot use the TLS files of {conn.address}: {exc}") from exc
    client.on_socket_open = _nodelay
    return client


def default_client_id(role: str, name: str, *, stable: bool = False) -> str:
    """``twinedge-<role>-<host>-<name>``, plus ``-<pid>-<random>`` unless ``stable``.

    A persistent session needs the same id on every connect (``stable``); otherwise a unique id keeps two
    processes with the same config (the agent and ``twinedge agent check``, say) from knocking each other
    off the broker, which lets only one connection per client id.
    """
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40]
    base = f"twinedge-{role}-{host}-{name}"[:100]
    return base if stable else f"{base}-{os.getpid()}-{secrets.token_hex(3)}"


def _no_op(client: Client, userdata: Any, sock: Any) -> None:
    pass


#: Bytes the network thread asks the socket for at once (see _draining_client_class).
_RECV_SIZE = 65536


@functools.cache
def _draining_client_class() -> type[Client]:
    """paho's Client, tuned for receiving floods of small messages in a thread of our own.

    Stock paho reads one packet per ``select()`` and writes every PUBACK with its own ``send()`` at once;
    on loopback each of those sends costs as much as the rest of the message's handling (measured: two
    thirds of paho's time per QoS 1 message). This subclass reads every packet already there (up to 1,000
    per call, so keep-alive and writes still get their turn) and sends the acknowledgements of all of
    them together, corked into as few TCP segments as possible. Acks still go out in the order the
    messages came (MQTT requires that), right after the burst that carried them.

    Stock paho also reads each packet with three or more ``recv()`` calls (command byte, length bytes,
    body). Every call releases the GIL, and with the event loop busy in the other thread, getting it back
    can take a switch interval (5 ms): the network thread then spent more time per message than paho does
    alone. Here one ``recv()`` of up to 64 KiB fills a buffer the packets are read from; a read never
    ends with bytes left in it (``select()`` would not see them).

    A PUBLISH of QoS 0 or 1 under MQTT 3.1.1 that lies whole in that buffer is parsed right there and
    handed to ``on_publish_data`` as (topic bytes, payload, qos, packet id), when that is set: paho's own
    path builds an MQTTMessage (with a threading.Condition) and matches topic callbacks per message, half
    of its time. QoS 2 (paho keeps those until PUBREL), MQTT 5 (properties, topic aliases) and anything
    else take paho's path to ``on_message``. With ``manual_ack`` (as the connector runs it) paho sends no
    PUBACK for QoS 1 by itself on either path.

    It uses paho's public hooks (``on_socket_register_write``, ``loop_read``/``loop_write``) plus
    ``_packet_read``, ``_sock_recv``, ``_loop_rc_handle``, ``_protocol``, ``_in_packet`` and
    ``_last_bytes_received``; paho-mqtt is pinned below 3.
    """
    from paho.mqtt.client import Client, MQTTv5, time_func
    from paho.mqtt.enums import MQTTErrorCode

    cork = getattr(socket, "TCP_CORK", None)

    class DrainingClient(Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # With a register-write hook paho queues outgoing packets instead of sending each at once;
            # loop_read below (and paho's own loop, via want_write) sends them.
            self.on_socket_register_write = _no_op
            # Bytes received and not yet taken by paho: _received[_taken:], from the socket _from.
            self._received = b""
            self._taken = 0
            self._from: Any = None
            #: Takes (topic, payload, qos, packet id) of whole QoS 0/1 PUBLISH packets (see above).
            self.on_publish_data: Callable[[bytes, bytes, int, int], None] | None = None

        def _packet_read(self) -> MQTTErrorCode:
            handler = self.on_publish_data
            data, pos = self._received, self._taken
            if (handler is None or pos >= len(data) or self._in_packet["command"] or self._protocol == MQTTv5
                    or data[pos] & 0xF6 not in (0x30, 0x32) or self._from is not self._sock):
                return super()._packet_read()
            command = data[pos]
            length, shift, i = 0, 0, pos + 1
            while True:  # the remaining length: 1 to 4 bytes of 7 bits, least significant first
                if i >= len(data) or shift > 21:
                    return super()._packet_read()  # not all here (or malformed): paho's path decides
                byte = data[i]
                i += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            end = i + length
            if end > len(data) or length < 2:
                return super()._packet_read()
            start = i + 2 + ((data[i] << 8) | data[i + 1])
            qos = (command >> 1) & 3
            mid = 0
            if qos:
                if start + 2 > end:
                    return super()._packet_read()
                mid = (data[start] << 8) | data[start + 1]
                start += 2
            if start > end:
                return super()._packet_read()
            self._taken = end
            handler(data[i + 2:start - 2 * qos], data[start:end], qos, mid)
            return MQTTErrorCode.MQTT_ERR_SUCCESS

        def _sock_recv(self, bufsize: int) -> bytes:
            if self._from is not self._sock:  # a new connection: nothing of the old one is left
                self._received, self._taken, self._from = b"", 0, self._sock
            taken = self._taken
            if taken >= len(self._received):
                data = super()._sock_recv(max(bufsize, _RECV_SIZE))
                if len(data) <= bufsize:
                    self._received, self._taken = b"", 0
                    return data
                self._received, self._taken = data, bufsize
                return data[:bufsize]
            self._taken = taken + bufsize
            return self._received[taken:taken + bufsize]

        def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
            packets = 0
            while packets < 1000 or self._taken < len(self._received):
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = self._packet_read()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    if self._taken < len(self._received):
                        continue  # paho paused inside a huge packet: the rest is buffered already
                    break
                packets += 1
            with self._msgtime_mutex:  # keep-alive: what paho's _packet_read does after each packet
                self._last_bytes_received = time_func()
            if self.want_write():
                return self.loop_write()
            return MQTTErrorCode.MQTT_ERR_SUCCESS

        def loop_write(self) -> MQTTErrorCode:
            setsockopt = getattr(self.socket(), "setsockopt", None)
            corked = False
            if cork is not None and setsockopt is not None:
                with contextlib.suppress(OSError):
                    setsockopt(socket.IPPROTO_TCP, cork, 1)
                    corked = True
            try:
                return super().loop_write()
            finally:
                if corked and setsockopt is not None:
                    with contextlib.suppress(OSError):
                        setsockopt(socket.IPPROTO_TCP, cork, 0)

    return DrainingClient


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Up:
    session_present: bool


@dataclass(frozen=True)
class _Down:
    reason: str


@dataclass(frozen=True)
class _Subscribed:
    failures: tuple[tuple[str, str], ...]


_Event = _Up | _Down | _Subscribed
#: A message as the network thread hands it on: topic (raw bytes), payload, qos, packet id, receive time.
_Message = tuple[bytes, bytes | bytearray, int, int, float]


@dataclass(frozen=True)
class _Spec:
    """A compiled topic entry."""

    topic: MqttTopic
    levels: tuple[str, ...]
    kind: str
    templates: tuple[_Template, ...]
    paths: tuple[JsonPath, ...]
    time_path: JsonPath | None
    #: JSON without time_path whose every path is one object key: those keys (the quick case).
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Route:
    spec: _Spec
    #: Resolved signal names, one per template.
    names: tuple[str, ...]


_UNSET: Any = object()
_ROUTE_CACHE_MAX = 20_000
_LOG_EVERY = 60.0
#: Seconds the event loop waits after a wake-up before it takes the messages that arrived.
_GATHER = 0.005


class MqttConnector(Connector):
    """Subscribes to the configured topics and emits Readings in batches (see the module docstring).

    Extra counters besides ``stats``: ``messages`` (received), ``unmatched`` (messages on topics no entry
    matches, e.g. left over in a persistent session); ``subscribed`` is True while the broker has
    confirmed the subscriptions of the current connection.
    """

    def __init__(self, config: MqttSourceConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.name)
        self.config = config
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.client_id = config.client_id or default_client_id("agent", config.name,
                                                               stable=config.persistent_session)
        self._specs = [self._compile(t) for t in config.topics]
        self._static = [n for t in config.topics for n in t.signal_names() if "{" not in n]
        self._seen: dict[str, None] = {}
        #: By raw topic: the topic as text and its routes (none for a topic that is not UTF-8).
        self._routes: dict[bytes, tuple[str, tuple[_Route, ...]]] = {}
        self.messages = 0
        self.unmatched = 0
        self.subscribed = False
        self._logged: dict[str, float] = {}
        self._down_reported = False
        self._connects = 0
        self._running = False
        # paho thread -> event loop
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._pending: list[_Message | _Event] = []
        self._wakeup_sent = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self._connected_once = False  # written by the network thread
        self._refused = False  # network thread: the broker refused the CONNECT just now
        # Fail at creation, not in the network thread: missing password variable or TLS files.
        make_client(config, self._environ, client_id=self.client_id, clean=True)

    # -- configuration --------------------------------------------------------------------------
    @staticmethod
    def _compile(topic: MqttTopic) -> _Spec:
        levels = parse_filter(topic.filter)
        n = _wildcards(levels)
        templates = tuple(_compile_template(name, n, topic.filter) for name in topic.signal_names())
        paths = tuple(compile_json_path(s.path) for s in topic.signals)
        time_path = compile_json_path(topic.time_path) if topic.time_path else None
        keys = (tuple(str(p[0]) for p in paths) if topic.payload == "json" and time_path is None and paths
                and all(len(p) == 1 and isinstance(p[0], str) for p in paths) else None)
        return _Spec(topic, levels, topic.payload, templates, paths, time_path, keys)

    def signals(self) -> Sequence[str]:
        return [*self._static, *self._seen]

    def accepts(self, signal: str) -> bool:
        if signal in self._static or signal in self._seen:
            return True
        return any(_template_pattern(t).fullmatch(signal) for spec in self._specs for t in spec.templates)

    # -- paho thread ----------------------------------------------------------------------------
    def _post(self, item: _Message | _Event) -> None:
        with self._lock:
            self._pending.append(item)
            if self._wakeup_sent:
                return
            self._wakeup_sent = True
        self._signal_loop()

    def _signal_loop(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
                loop.call_soon_threadsafe(wake.set)

    def _on_message(self, client: Client, userdata: Any, msg: MQTTMessage) -> None:
        """paho's path (QoS 2, MQTT 5): as `_on_data`."""
        try:
            topic = msg.topic.encode()
        except UnicodeDecodeError:
            topic = b"\xff"  # not UTF-8 either: counted as unmatched
        self._on_data(topic, msg.payload, msg.qos, msg.mid)

    def _on_data(self, topic: bytes, payload: bytes | bytearray, qos: int, mid: int) -> None:
        item = (topic, payload, qos, mid, time.time())
        max_pending = self.config.max_pending
        with self._lock:
            while len(self._pending) >= max_pending and not self._stop.is_set():
                self._room.wait(0.5)  # back-pressure: stop reading until the loop catches up
            self._pending.append(item)
            if self._wakeup_sent:
                return
            self._wakeup_sent = True
        self._signal_loop()

    def _on_connect(self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            self._refused = True  # paho reports the disconnect next: keep this, the more useful reason
            self._post(_Down(f"{self.config.address} refused the connection: {reason}"))
            return
        self._connected_once = True
        self._post(_Up(bool(flags.session_present)))
        subscriptions: list[tuple[str, int]] = [(t.filter, self.config.qos) for t in self.config.topics]
        client.subscribe(subscriptions)

    def _on_subscribe(self, client: Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Properties | None) -> None:
        failures = tuple((t.filter, str(r)) for t, r in zip(self.config.topics, reasons, strict=False)
                         if r.is_failure)
        self._post(_Subscribed(failures))

    def _on_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        if self._refused:
            self._refused = False
        elif not self._stop.is_set():
            self._post(_Down(f"lost the connection to {self.config.address}: {reason}"))

    def _network(self, client: Client) -> None:
        """The network thread: connect, run paho's loop, reconnect with backoff until stopped."""
        from paho.mqtt.enums import MQTTErrorCode
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        cfg = self.config
        stop = self._stop
        delays = cfg.backoff.delays()
        props: Properties | None = None
        clean_start = not cfg.persistent_session
        if cfg.protocol == "5" and cfg.persistent_session:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry
        while not stop.is_set():
            self._connected_once = False
            try:
                if cfg.protocol == "5":
                    client.connect(cfg.host, cfg.broker_port, cfg.keepalive, clean_start=clean_start,
                                   properties=props)
                else:
                    client.connect(cfg.host, cfg.broker_port, cfg.keepalive)
            except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS handshake
                self._post(_Down(f"cannot connect to {cfg.address}: {exc}"))
            else:
                try:
                    while not stop.is_set():
                        if client.loop(0.25) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                            break
                except Exception as exc:  # a bug, not the network: log it, reconnect, keep the thread alive
                    log.exception("mqtt source %s: the network loop failed", self.name)
                    with contextlib.suppress(Exception):
                        client.disconnect()
                    self._post(_Down(f"internal error in the MQTT loop: {exc!r}"))
                if stop.is_set():
                    with contextlib.suppress(Exception):
                        client.disconnect()
                        client.loop_write()  # writes are queued (see _draining_client_class): send it
                    break
            if self._connected_once:
                delays = cfg.backoff.delays()  # it worked for a while: start again from the shortest delay
            stop.wait(next(delays))

    # -- event loop -----------------------------------------------------------------------------
    async def run(self, emit: Emit) -> None:
        if self._running:
            raise RuntimeError(f"mqtt source {self.name!r} is already running")
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        self._stop = threading.Event()
        with self._lock:
            self._pending = []
            self._wakeup_sent = False
        client = make_client(self.config, self._environ, client_id=self.client_id,
                             clean=not self.config.persistent_session, client_class=_draining_client_class(),
                             manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        cast(Any, client).on_publish_data = self._on_data  # the draining client's fast path
        thread = threading.Thread(target=self._network, args=(client,), daemon=True,
                                  name=f"twinedge-mqtt-{self.name}")
        thread.start()
        try:
            while True:
                await wake.wait()
                # Let messages gather for a moment: one wake-up and one emit per many messages, and the
                # network thread gets the GIL to itself meanwhile (this is where the throughput comes from).
                await asyncio.sleep(_GATHER)
                wake.clear()
                with self._lock:
                    batch, self._pending = self._pending, []
                    self._wakeup_sent = False
                    self._room.notify_all()
                step = self.config.emit_batch
                for start in range(0, len(batch), step):
                    chunk = batch[start:start + step]
                    readings = self._process(chunk)
                    if readings:
                        self.stats.readings += len(readings)
                        await emit(readings)
                    # Acknowledge only now that the readings are in the durable buffer: a crash before
                    # this line makes the broker deliver them again (the stores drop the duplicates).
                    for item in chunk:
                        if type(item) is tuple and item[2]:
                            client.ack(item[3], item[2])
        finally:
            self._stop.set()
            with self._lock:
                self._room.notify_all()
            await asyncio.to_thread(thread.join, 10)
            self.stats.connected = False
            self.subscribed = False
            self._running = False

    def _process(self, items: Sequence[_Message | _Event]) -> list[Reading]:
        out: list[Reading] = []
        routes_cache = self._routes
        for item in items:
            if type(item) is not tuple:
                self._event(item, out)  # type: ignore[arg-type]
                continue
            raw_topic, payload, _, _, t = item
            self.messages += 1
            found = routes_cache.get(raw_topic)
            if found is None:
                found = self._route(raw_topic)
            topic, routes = found
            if not routes:
                self.unmatched += 1
                continue
            received = datetime.fromtimestamp(t, UTC)
            doc: Any = _UNSET
            for route in routes:
                kind = route.spec.kind
                if kind == "json":
                    if doc is _UNSET:
                        try:
                            doc = orjson.loads(payload)
                        except orjson.JSONDecodeError as exc:
                            doc = _BadJson(f"payload is not JSON ({exc}): {bytes(payload[:40])!r}")
                    self._json(route, topic, doc, received, out)
                else:
                    self._scalar(route, topic, payload, received, out)
        return out

    def _route(self, raw_topic: bytes) -> tuple[str, tuple[_Route, ...]]:
        if len(self._routes) >= _ROUTE_CACHE_MAX:
            self._routes.clear()
        result: tuple[str, tuple[_Route, ...]]
        try:
            topic = raw_topic.decode("utf-8")
        except UnicodeDecodeError:
            self._routes[raw_topic] = result = ("", ())
            return result
        found: list[_Route] = []
        for spec in self._specs:
            matches = _match(spec.levels, topic)
            if matches is None:
                continue
            names = tuple(_render(t, matches) for t in spec.templates)
            for template, name in zip(spec.templates, names, strict=True):
                if any(isinstance(p, int) for p in template):
                    self._seen[name] = None
            found.append(_Route(spec, names))
        self._routes[raw_topic] = result = (topic, tuple(found))
        return result

    def _json(self, route: _Route, topic: str, doc: Any, received: datetime, out: list[Reading]) -> None:
        spec = route.spec
        keys = spec.keys
        if keys is not None and type(doc) is dict:  # the quick case: all values there, no error to clear
            values = [doc.get(key) for key in keys]
            errors = self.stats.signal_errors
            if all(type(v) in _SCALARS for v in values) and (not errors or errors.keys().isdisjoint(route.names)):
                out.extend(map(Reading, route.names, values, repeat(received), repeat(Quality.GOOD),
                               repeat(received)))
                return
        if isinstance(doc, _BadJson):
            for name in route.names:
                self._bad(out, name, topic, doc.reason, received)
            return
        source_time = received
        quality = Quality.GOOD
        time_error = ""
        if spec.time_path is not None:
            try:
                source_time = _parse_time(_extract(doc, spec.time_path))
            except _PathError as exc:
                time_error = f"time_path {spec.topic.time_path} {exc}; using the receive time"
                quality = Quality.UNCERTAIN
        errors = self.stats.signal_errors
        for name, steps, path_cfg in zip(route.names, spec.paths, spec.topic.signals, strict=True):
            try:
                value = _extract(doc, steps)
            except _PathError as exc:
                self._bad(out, name, topic, f"payload {exc} (path {path_cfg.path})", received)
                continue
            vt = type(value)
            if vt is not float and vt is not int and vt is not str and vt is not bool:
                self._bad(out, name, topic, f"path {path_cfg.path} holds {_kind(value)}, not a number, string "
                                            "or boolean", received)
                continue
            if time_error:
                self._record(name, topic, time_error)
            elif errors and name in errors:
                del errors[name]
            out.append(Reading(name, value, source_time, quality, received))

    def _scalar(self, route: _Route, topic: str, payload: bytes | bytearray, received: datetime,
                out: list[Reading]) -> None:
        name = route.names[0]
        value: Value
        if route.spec.kind == "number":
            if len(payload) <= 400 and _INTEGER.fullmatch(payload):
                value = int(payload)
            elif len(payload) <= 400 and _NUMBER.fullmatch(payload):
                value = float(payload)
            else:
                self._bad(out, name, topic, f"payload is not a number: {bytes(payload[:40])!r}", received)
                return
        else:
            try:
                value = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._bad(out, name, topic, f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          received)
                return
        errors = self.stats.signal_errors
        if errors and name in errors:
            del errors[name]
        out.append(Reading(name, value, received, Quality.GOOD, received))

    def _record(self, name: str, topic: str, reason: str) -> None:
        stats = self.stats
        stats.errors += 1
        text = f"topic {topic}: {reason}"
        stats.signal_errors[name] = text
        stats.last_error = f"{name}: {text}"
        now = time.monotonic()
        if now - self._logged.get(name, -math.inf) >= _LOG_EVERY:  # at most one line per signal a minute
            self._logged[name] = now
            log.warning("mqtt source %s: signal %s: %s", self.name, name, text)

    def _bad(self, out: list[Reading], name: str, topic: str, reason: str, received: datetime) -> None:
        self._record(name, topic, reason)
        out.append(Reading(name, None, received, Quality.BAD, received))

    def _event(self, event: _Event, out: list[Reading]) -> None:
        stats = self.stats
        if isinstance(event, _Up):
            self._connects += 1
            if self._connects > 1:
                stats.reconnects += 1
            stats.connected = True
            self._down_reported = False
            log.info("mqtt source %s: connected to %s (session present: %s)", self.name, self.config.address,
                     event.session_present)
        elif isinstance(event, _Subscribed):
            self.subscribed = True
            for flt, reason in event.failures:
                text = f"the broker refused the subscription to {flt!r}: {reason}"
                stats.errors += 1
                stats.last_error = text
                log.error("mqtt source %s: %s", self.name, text)
                spec = next(s for s in self._specs if s.topic.filter == flt)
                for name in spec.topic.signal_names():
                    if "{" not in name:
                        stats.signal_errors[name] = text
        else:
            stats.connected = False
            self.subscribed = False
            stats.errors += 1
            if not self._down_reported:
                self._down_reported = True
                log.warning("mqtt source %s: %s; retrying with backoff", self.name, event.reason)
                out.extend(self.bad_readings(event.reason))
            else:
                stats.last_error = event.reason


@dataclass(frozen=True)
class _BadJson:
    reason: str


def create(config: MqttSourceConfig, environ: Mapping[str, str] | None = None) -> MqttConnector:
    """The connector for ``config``; passwords come from ``environ`` (default ``os.environ``).

    Raises MqttConfigError when a named environment variable or TLS file is missing.
    """
    return MqttConnector(config, environ)
