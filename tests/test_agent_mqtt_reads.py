"""The MQTT connector's own read path (one recv() for many packets, PUBLISH parsed in place) against a real
Mosquitto: packets of every length class, cut anywhere by the reads, in order; QoS 1 and 2 and retained
messages; MQTT 5 (paho's path) delivering the same."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.connectors.base import Reading
from edge_agent.connectors.mqtt import MqttSourceConfig, create
from tests.mqtt_broker import MosquittoBroker, mosquitto_broker_fixture  # noqa: F401

#: Remaining-length classes: 1, 2, 3 bytes of length; 70,000 and 200,000 exceed one 64 KiB read.
SIZES = [0, 1, 100, 120, 121, 122, 16_380, 16_381, 70_000, 200_000]


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: bytes) -> bytes:
    return struct.pack(">H", len(text)) + text


def publish_raw(port: int, messages: Sequence[tuple[str, bytes]]) -> None:
    """QoS 0 PUBLISH packets written to the broker in one go (MQTT 3.1.1), then a clean DISCONNECT."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack(">H", 60) + _string(b"raw-publisher")
        sock.sendall(b"\x10" + _length(len(body)) + body)
        assert sock.recv(4)[:2] == b"\x20\x02"
        packets = []
        for topic, payload in messages:
            rest = _string(topic.encode()) + payload
            packets.append(b"\x30" + _length(len(rest)) + rest)
        sock.sendall(b"".join(packets) + b"\xe0\x00")
        time.sleep(0.2)


def payload(size: int, tag: str) -> bytes:
    return (f"{tag}:" + "0123456789abcdef" * (size // 16 + 1)).encode()[:size]


async def run_connector(broker: MosquittoBroker, protocol: str, qos: int, send: Any, until: Any,
                        topics: list[dict[str, Any]]) -> list[Reading]:
    cfg = MqttSourceConfig.model_validate({"type": "mqtt", "name": "src", "host": broker.host, "port": broker.port,
                                           "protocol": protocol, "qos": qos, "topics": topics})
    connector = create(cfg, {})
    readings: list[Reading] = []

    async def emit(batch: Sequence[Reading]) -> None:
        readings.extend(batch)

    task = asyncio.create_task(connector.run(emit))
    try:
        deadline = time.monotonic() + 15
        while not connector.subscribed:
            assert time.monotonic() < deadline, "no subscription"
            await asyncio.sleep(0.01)
        await asyncio.to_thread(send)
        while not until(readings):
            assert time.monotonic() < deadline, f"only {len(readings)} readings"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert connector.stats.errors == 0 and connector.unmatched == 0
    return readings


TEXT = [{"filter": "fp/#", "payload": "text", "signal": "fp.{1}"}]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_every_packet_length_and_read_boundary_arrives_whole_and_in_order(
        mosquitto_broker: MosquittoBroker, protocol: str) -> None:
    big = [(f"fp/s{size}", payload(size, f"s{size}")) for size in SIZES]
    small = [("fp/n", str(i).encode()) for i in range(3000)]  # many packets per read, cut at every offset
    messages = big + small + big

    readings = asyncio.run(run_connector(mosquitto_broker, protocol, 0,
                                         lambda: publish_raw(mosquitto_broker.port, messages),
                                         lambda got: len(got) >= len(messages), TEXT))
    assert [(r.signal, r.value) for r in readings] == [
        (topic.replace("/", ".", 1), data.decode()) for topic, data in messages]


def test_qos_1_and_2_and_retained_messages(mosquitto_broker: MosquittoBroker) -> None:
    topics = [{"filter": "qp/+/v", "payload": "number", "signal": "{1}"}]
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qos-publisher")
    publisher.connect(mosquitto_broker.host, mosquitto_broker.port)
    publisher.loop_start()
    try:
        publisher.publish("qp/kept/v", "7", qos=1, retain=True).wait_for_publish(5)

        def send() -> None:
            for i in range(200):
                publisher.publish(f"qp/q{i % 3}/v", str(i), qos=i % 3).wait_for_publish(5)

        readings = asyncio.run(run_connector(mosquitto_broker, "3.1.1", 2, send, lambda got: len(got) >= 201,
                                             topics))
    finally:
        publisher.publish("qp/kept/v", b"", qos=1, retain=True).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()
    assert readings[0].signal == "kept" and readings[0].value == 7
    for q in range(3):  # each QoS in order (QoS 2 may overtake the others: it waits for PUBREL)
        assert [r.value for r in readings if r.signal == f"q{q}"] == list(range(q, 200, 3))
