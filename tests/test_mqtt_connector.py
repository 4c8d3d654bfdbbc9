"""edge_agent.connectors.mqtt against a real Mosquitto: payload kinds, wildcards, MQTT 3.1.1 and 5,
username/password, TLS (and client certificates), bad payloads, broker restarts, and a throughput smoke."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from aas_models.timeseries.base import Quality
from edge_agent.connectors.base import Reading
from edge_agent.connectors.mqtt import (
    MqttConfigError,
    MqttConnector,
    MqttSourceConfig,
    _match,
    compile_json_path,
    create,
    parse_filter,
)
from tests.mqtt_broker import MosquittoBroker, free_port, mosquitto_binary, mosquitto_broker_fixture  # noqa: F401

FAST = {"initial": 0.1, "maximum": 0.5}


def run(coro: Coroutine[Any, Any, None], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class Publisher:
    """A plain paho publisher for the tests (QoS 1, waits for each ack)."""

    def __init__(self, host: str, port: int, **tls: Any) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
        if tls:
            self.client.tls_set(**tls)
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Running:
    connector: MqttConnector
    readings: list[Reading]
    batches: list[int]
    task: asyncio.Task[None]

    def by_signal(self, name: str) -> list[Reading]:
        return [r for r in self.readings if r.signal == name]

    def last(self, name: str) -> Reading:
        found = self.by_signal(name)
        assert found, f"no reading of {name!r}; have {sorted({r.signal for r in self.readings})}"
        return found[-1]

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        await eventually(lambda: len(self.readings) >= n, timeout, f"{n} readings (have {len(self.readings)})")

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def start(config: dict[str, Any], environ: dict[str, str] | None = None, *,
                wait_subscribed: bool = True) -> Running:
    cfg = MqttSourceConfig.model_validate({"type": "mqtt", "name": "src", "backoff": FAST, **config})
    connector = create(cfg, environ or {})
    readings: list[Reading] = []
    batches: list[int] = []

    async def emit(batch: Sequence[Reading]) -> None:
        readings.extend(batch)
        batches.append(len(batch))

    task = asyncio.create_task(connector.run(emit))
    running = Running(connector, readings, batches, task)
    if wait_subscribed:
        await eventually(lambda: connector.subscribed or task.done(), 10, "the subscription")
        if task.done():
            task.result()
    return running


def base(broker: MosquittoBroker, **kw: Any) -> dict[str, Any]:
    return {"host": broker.host, "port": broker.port, **kw}


TOPICS = [
    {"filter": "plant/+/press/+/telemetry", "payload": "json", "time_path": "ts",
     "signals": [{"signal": "{1}.{2}.oil_temp", "path": "data.temp"},
                 {"signal": "{1}.{2}.third", "path": "values[2]"},
                 {"signal": "{1}.{2}.state", "path": 'data["run.state"]'},
                 {"signal": "{1}.{2}.ok", "path": "$.flags[-1]"}]},
    {"filter": "plant/hall1/power", "payload": "number", "signal": "hall1.power"},
    {"filter": "plant/hall1/state", "payload": "text", "signal": "hall1.state"},
    {"filter": "sensors/#", "payload": "json", "signals": [{"signal": "sensor.{1}", "path": "$"}]},
]


# ---------------------------------------------------------------------------------------------
# configuration and helpers (no broker)
# ---------------------------------------------------------------------------------------------

def test_filters_paths_and_matching() -> None:
    assert parse_filter("a/+/c/#") == ("a", "+", "c", "#")
    assert parse_filter("$share/g1/a/+") == ("a", "+")
    for bad in ("a/#/b", "a/b#", "a/b+/c", "", "$share/g", "$share/+/a"):
        with pytest.raises(ValueError):
            parse_filter(bad)
    assert _match(("a", "+", "c", "#"), "a/x/c/d/e") == ("x", "d/e")
    assert _match(("a", "+", "c", "#"), "a/x/c") == ("x", "")  # '#' also matches the parent level
    assert _match(("a", "+"), "a/x/y") is None
    assert _match(("a", "+"), "a") is None
    assert _match(("#",), "$SYS/broker/load") is None  # no wildcard match of $ topics
    assert _match(("a", "b"), "a/b") == ()
    assert compile_json_path("data.temp") == ("data", "temp")
    assert compile_json_path("$.values[2]") == ("values", 2)
    assert compile_json_path("[0].a[-1][3]") == (0, "a", -1, 3)
    assert compile_json_path('a["b.c"].d') == ("a", "b.c", "d")
    assert compile_json_path("$") == ()
    for bad in ("a..b", "a[x]", "a[", "$.", 'a"b'):
        with pytest.raises(ValueError):
            compile_json_path(bad)


@pytest.mark.parametrize(("change", "message"), [
    ({"topics": [{"filter": "a/#/b", "signal": "s", "payload": "number"}]}, "'#' must be a whole level"),
    ({"topics": [{"filter": "a", "payload": "json"}]}, "needs 'signals'"),
    ({"topics": [{"filter": "a", "payload": "number", "signals": [{"signal": "s", "path": "x"}]}]},
     "needs one 'signal'"),
    ({"topics": [{"filter": "a/+", "payload": "text", "signal": "s.{2}"}]}, "has 1 wildcard"),
    ({"topics": [{"filter": "a", "payload": "text", "signal": "s.{1}"}]}, "has no wildcards"),
    ({"topics": [{"filter": "a/+", "payload": "text", "signal": "s.{x}"}]}, "braces"),
    ({"topics": [{"filter": "a", "payload": "number", "signal": "s", "time_path": "t"}]}, "only works with"),
    ({"topics": [{"filter": "a", "signals": [{"signal": "s", "path": "x[y]"}]}]}, "malformed"),
    ({"topics": [{"filter": "a", "payload": "text", "signal": "s"}, {"filter": "b", "payload": "text",
                                                                       "signal": "s"}]}, "must come from one"),
    ({"topics": [{"filter": "a", "payload": "text", "signal": "s"}, {"filter": "a", "payload": "text",
                                                                       "signal": "t"}]}, "appears twice"),
    ({"topics": []}, "at least 1"),
    ({"ca_file": "/x.pem"}, "tls is false"),
    ({"qos": 3}, "qos"),
    ({"color": "red"}, "Extra inputs"),
])
def test_config_errors(change: dict[str, Any], message: str) -> None:
    cfg = {"type": "mqtt", "name": "s", "host": "h", "topics": [{"filter": "a", "payload": "text", "signal": "s"}]}
    with pytest.raises(ValidationError, match=message):
        MqttSourceConfig.model_validate({**cfg, **change})


def test_config_defaults_and_secrets(tmp_path: Path) -> None:
    cfg = MqttSourceConfig.model_validate({"type": "mqtt", "name": "s", "host": "h", "protocol": 5,
                                           "topics": TOPICS})
    assert cfg.protocol == "5" and cfg.broker_port == 1883 and cfg.qos == 1
    tls = cfg.model_copy(update={"tls": True})
    assert tls.broker_port == 8883
    with pytest.raises(MqttConfigError, match="MQTT_PW_UNSET"):
        create(cfg.model_copy(update={"password_env": "MQTT_PW_UNSET"}), {})
    with pytest.raises(MqttConfigError, match="does not exist"):
        create(cfg.model_copy(update={"tls": True, "ca_file": tmp_path / "nope.pem"}), {})
    connector = create(cfg, {})
    assert list(connector.signals()) == ["hall1.power", "hall1.state"]  # templated names appear once seen
    assert connector.client_id.startswith("twinedge-agent-") and "-s-" in connector.client_id
    assert create(cfg, {}).client_id != connector.client_id  # unique per instance: no mutual kick-off
    stable = create(cfg.model_copy(update={"persistent_session": True}), {})
    assert stable.client_id.startswith("twinedge-agent-") and stable.client_id.endswith("-s")


# ---------------------------------------------------------------------------------------------
# against Mosquitto
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_payload_kinds_and_wildcards(mosquitto_broker: MosquittoBroker, protocol: str) -> None:
    async def main() -> None:
        pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        src = await start(base(mosquitto_broker, protocol=protocol, topics=TOPICS))
        try:
            before = datetime.now(UTC)
            pub.send("plant/hall1/press/p07/telemetry",
                     b'{"ts": "2025-11-25T13:00:00.250+01:00", "data": {"temp": 48.7, "run.state": "RUN"},'
                     b' "values": [1, 2, 3.5], "flags": [false, true]}')
            pub.send("plant/hall2/press/p01/telemetry",
                     b'{"ts": 1764072000123, "data": {"temp": 50, "run.state": "IDLE"}, "values": [0, 0, -1],'
                     b' "flags": [true]}')
            pub.send("plant/hall1/power", b" 23.5\n")
            pub.send("plant/hall1/power", b"-7")
            pub.send("plant/hall1/state", "läuft".encode())
            pub.send("sensors/line1/vib", b"0.25")
            await src.wait_for(12)
            r = src.last("hall1.p07.oil_temp")
            assert (r.value, r.quality) == (48.7, Quality.GOOD)
            assert r.source_time == datetime(2025, 11, 25, 12, 0, 0, 250000, tzinfo=UTC)
            assert r.received >= before
            assert src.last("hall1.p07.third").value == 3.5
            assert src.last("hall1.p07.state").value == "RUN"
            assert src.last("hall1.p07.ok").value is True
            r2 = src.last("hall2.p01.oil_temp")
            assert r2.value == 50 and r2.source_time == datetime(2025, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
            assert [r.value for r in src.by_signal("hall1.power")] == [23.5, -7]
            power = src.last("hall1.power")
            assert power.source_time == power.received  # no time in the payload: the receive time
            assert src.last("hall1.state").value == "läuft"
            assert src.last("sensor.line1/vib").value == 0.25  # '#' gives the rest of the topic
            c = src.connector
            assert c.stats.errors == 0 and c.stats.signal_errors == {} and c.stats.connected
            assert c.stats.readings == len(src.readings) == 12
            assert set(c.signals()) >= {"hall1.power", "hall1.p07.oil_temp", "hall2.p01.ok", "sensor.line1/vib"}
        finally:
            await src.stop()
            pub.close()

    run(main())


def test_bad_payloads_are_per_signal_errors(mosquitto_broker: MosquittoBroker) -> None:
    async def main() -> None:
        pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        src = await start(base(mosquitto_broker, topics=TOPICS))
        c = src.connector
        try:
            t = "plant/h/press/p/telemetry"
            pub.send(t, b"not json{")                                       # 4 BAD readings
            pub.send(t, b'{"data": {"temp": 1.5}, "values": [1], "flags": "x", "ts": "yesterday"}')
            pub.send("plant/hall1/power", b"twelve")                         # BAD
            pub.send("plant/hall1/power", b"nan")                            # BAD: not a finite number literal
            pub.send("plant/hall1/state", b"\xff\xfe")                        # BAD: not UTF-8
            pub.send("plant/hall1/state", b"ok")                             # good
            await src.wait_for(4 + 4 + 2 + 2)
            bad = [r for r in src.readings[:4]]
            assert {r.signal for r in bad} == {"h.p.oil_temp", "h.p.third", "h.p.state", "h.p.ok"}
            assert all(r.quality is Quality.BAD and r.value is None for r in bad)
            # second message: temp is fine but the time is not -> UNCERTAIN with the receive time
            temp = src.by_signal("h.p.oil_temp")[1]
            assert (temp.value, temp.quality) == (1.5, Quality.UNCERTAIN) and temp.source_time == temp.received
            assert src.by_signal("h.p.third")[1].quality is Quality.BAD       # values[2]: no such index
            assert src.by_signal("h.p.state")[1].quality is Quality.BAD       # no key
            assert src.by_signal("h.p.ok")[1].quality is Quality.BAD          # a string, not an array
            errs = c.stats.signal_errors
            assert errs["h.p.third"].startswith(f"topic {t}: ") and "no index [2]" in errs["h.p.third"]
            assert "no key 'run.state'" in errs["h.p.state"]
            assert "a string at flags where the path expects an array" in errs["h.p.ok"]
            assert "time_path ts" in errs["h.p.oil_temp"] and "ISO 8601" in errs["h.p.oil_temp"]
            assert "not a number: b'nan'" in errs["hall1.power"]
            assert "hall1.state" not in errs  # the good text came after the bad one
            assert [r.quality for r in src.by_signal("hall1.state")] == [Quality.BAD, Quality.GOOD]
            # 4 (not JSON) + 1 (time) + 3 (paths) + 2 (numbers) + 1 (UTF-8)
            assert c.stats.errors == 11
            # everything keeps running: a good message clears the signal's error
            pub.send(t, b'{"data": {"temp": 2.0, "run.state": "RUN"}, "values": [1, 2, 3], "flags": [true],'
                        b' "ts": 1764072000000}')
            pub.send("plant/hall1/power", b"12")
            await src.wait_for(12 + 5)
            assert src.last("h.p.third").value == 3 and src.last("hall1.power").value == 12
            assert set(errs) == set()
            assert c.stats.connected
        finally:
            await src.stop()
            pub.close()

    run(main())


def test_json_value_that_is_an_object_or_null(mosquitto_broker: MosquittoBroker) -> None:
    async def main() -> None:
        pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        src = await start(base(mosquitto_broker, topics=[
            {"filter": "x", "signals": [{"signal": "a", "path": "a"}, {"signal": "b", "path": "b"}]}]))
        try:
            pub.send("x", b'{"a": {"nested": 1}, "b": null}')
            await src.wait_for(2)
            errs = src.connector.stats.signal_errors
            assert "holds an object" in errs["a"] and "holds null" in errs["b"]
            assert all(r.quality is Quality.BAD for r in src.readings)
        finally:
            await src.stop()
            pub.close()

    run(main())


# ---------------------------------------------------------------------------------------------
# brokers with authentication and TLS
# ---------------------------------------------------------------------------------------------

class ConfiguredBroker(MosquittoBroker):
    """The shared fixture's broker plus extra config lines (listeners, password file, limits)."""

    def __init__(self, workdir: Path, extra: list[str]) -> None:
        self.extra = extra
        super().__init__(workdir)

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_file.open("a") as f:
            f.write("\n".join(self.extra) + "\n")


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is absent: install Debian's broker with `apt-get install mosquitto`")
    passwd = tmp_path / "passwd"
    exe = "mosquitto_passwd"
    subprocess.run([exe, "-b", "-c", str(passwd), "agent", "s3cret pass"], check=True, capture_output=True)
    broker = ConfiguredBroker(tmp_path / "broker", ["allow_anonymous false", f"password_file {passwd}"])
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def test_username_password(password_broker: MosquittoBroker) -> None:
    async def main() -> None:
        topics = [{"filter": "t", "payload": "number", "signal": "n"}]
        env = {"AGENT_PW": "s3cret pass", "WRONG_PW": "nope"}
        src = await start(base(password_broker, topics=topics, username="agent", password_env="AGENT_PW"), env)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.username_pw_set("agent", "s3cret pass")
        pub.connect(password_broker.host, password_broker.port)
        pub.loop_start()
        try:
            pub.publish("t", b"1", qos=1).wait_for_publish(5)
            await src.wait_for(1)
            assert src.last("n").value == 1
        finally:
            await src.stop()
            pub.disconnect()
            pub.loop_stop()
        bad = await start(base(password_broker, topics=topics, username="agent", password_env="WRONG_PW"), env,
                          wait_subscribed=False)
        try:
            await bad.wait_for(1)  # one BAD reading per signal while refused
            assert bad.readings[0].signal == "n" and bad.readings[0].quality is Quality.BAD
            await eventually(lambda: bad.connector.stats.errors >= 3, 10, "retries with backoff")
            assert not bad.connector.stats.connected
            assert "refused the connection" in bad.connector.stats.last_error
            assert "authori" in bad.connector.stats.last_error.lower()
            assert len(bad.readings) == 1  # not repeated per retry
        finally:
            await bad.stop()

    run(main())


def _pem_cert(subject: str, issuer_key: Any, issuer_name: Any, key: Any, *, ca: bool, server: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    elif server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an unrelated CA."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def key_pem(key: Any) -> bytes:
        return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))

    def cert_pem(cert: Any) -> bytes:
        return bytes(cert.public_bytes(serialization.Encoding.PEM))

    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _pem_cert("TwinEdge Test CA", None, None, ca_key, ca=True, server=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _pem_cert("Unrelated CA", None, None, other_key, ca=True, server=False)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _pem_cert("localhost", ca_key, ca.subject, srv_key, ca=False, server=True)
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _pem_cert("agent", ca_key, ca.subject, cli_key, ca=False, server=False)
    pki = Pki(folder / "ca.pem", folder / "other-ca.pem", folder / "server.pem", folder / "server.key",
              folder / "client.pem", folder / "client.key")
    pki.ca.write_bytes(cert_pem(ca))
    pki.other_ca.write_bytes(cert_pem(other))
    pki.server_cert.write_bytes(cert_pem(srv))
    pki.server_key.write_bytes(key_pem(srv_key))
    pki.client_cert.write_bytes(cert_pem(cli))
    pki.client_key.write_bytes(key_pem(cli_key))
    return pki


def test_tls_and_client_certificates(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is absent: install Debian's broker with `apt-get install mosquitto`")
    pki = make_pki(tmp_path / "pki")
    tls_port, mtls_port = free_port(), free_port()
    broker = ConfiguredBroker(tmp_path / "broker", [
        f"listener {tls_port} 127.0.0.1", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
        f"listener {mtls_port} 127.0.0.1", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
        f"cafile {pki.ca}", "require_certificate true",
    ])
    broker.start()
    topics = [{"filter": "secure/#", "payload": "text", "signal": "s.{1}"}]

    async def main() -> None:
        pub = Publisher(broker.host, broker.port)  # the plain listener, for publishing
        # distinct names: the default client id is per host and name, and a broker lets one id connect once
        ok = await start({"name": "tls", "host": "localhost", "port": tls_port, "tls": True, "ca_file": str(pki.ca),
                          "topics": topics})
        mtls = await start({"name": "mtls", "host": "127.0.0.1", "port": mtls_port, "tls": True,
                            "ca_file": str(pki.ca),
                            "cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
                            "protocol": "5", "topics": topics})
        try:
            pub.send("secure/a", b"hello")
            await ok.wait_for(1)
            await mtls.wait_for(1)
            assert ok.last("s.a").value == "hello" and mtls.last("s.a").value == "hello"
        finally:
            await ok.stop()
            await mtls.stop()
        # a broker certificate from another CA, or no client certificate where one is required: refused
        static = [{"filter": "secure/x", "payload": "text", "signal": "x"}]
        for cfg, reason in (({"ca_file": str(pki.other_ca), "port": tls_port}, "certificate verify failed"),
                            ({"ca_file": str(pki.ca), "port": mtls_port}, "")):
            bad = await start({"host": "127.0.0.1", "tls": True, "topics": static, **cfg}, wait_subscribed=False)
            try:
                await bad.wait_for(1)
                stats = bad.connector.stats
                await eventually(lambda s=stats: s.errors >= 2, 10, "a retry")  # type: ignore[misc]
                assert [(r.signal, r.quality) for r in bad.readings] == [("x", Quality.BAD)]
                assert not stats.connected and reason in stats.last_error, stats.last_error
            finally:
                await bad.stop()
        pub.close()

    try:
        run(main())
    finally:
        broker.close()


# ---------------------------------------------------------------------------------------------
# reconnects
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_broker_restart_reconnects_and_resubscribes(mosquitto_broker: MosquittoBroker, protocol: str) -> None:
    """A clean session: after the restart the broker knows no subscription, so the data flowing again proves
    the connector subscribed by itself."""
    async def main() -> None:
        topics = [{"filter": "line/+/count", "payload": "number", "signal": "{1}.count"},
                  {"filter": "line/speed", "payload": "number", "signal": "speed"}]
        src = await start(base(mosquitto_broker, protocol=protocol, topics=topics))
        c = src.connector
        try:
            pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
            pub.send("line/l1/count", b"1")
            pub.send("line/speed", b"10.5")
            await src.wait_for(2)
            pub.close()
            mosquitto_broker.stop()
            # every known signal once BAD (the templated one it has seen included), then quiet while down
            await src.wait_for(4)
            await asyncio.sleep(0.6)
            bad = src.readings[2:]
            assert {r.signal for r in bad} == {"l1.count", "speed"} and len(bad) == 2
            assert all(r.quality is Quality.BAD and r.value is None for r in bad)
            assert not c.stats.connected and c.stats.last_error
            mosquitto_broker.start()
            await eventually(lambda: c.subscribed, 10, "the new subscription")
            assert c.stats.reconnects == 1 and c.stats.connected
            pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
            pub.send("line/l1/count", b"2")
            pub.send("line/speed", b"11")
            await src.wait_for(6)
            assert src.last("l1.count").value == 2 and src.last("speed").value == 11
            pub.close()
        finally:
            await src.stop()

    run(main())


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_persistent_session_keeps_messages_while_away(mosquitto_broker: MosquittoBroker, protocol: str) -> None:
    """With persistent_session the broker queues QoS 1 messages while the agent is away (and the agent's
    clean stop sends DISCONNECT, so the session is kept, not dropped as after a lost connection)."""
    async def main() -> None:
        cfg = base(mosquitto_broker, protocol=protocol, persistent_session=True,
                   topics=[{"filter": "away/n", "payload": "number", "signal": "n"}])
        first = await start(cfg)
        await first.stop()
        pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        for i in range(3):
            pub.send("away/n", str(i))
        pub.close()
        again = await start(cfg)
        try:
            await again.wait_for(3)
            assert [r.value for r in again.readings] == [0, 1, 2]
            assert again.connector.client_id == first.connector.client_id
        finally:
            await again.stop()

    run(main())


def test_read_once(mosquitto_broker: MosquittoBroker) -> None:
    async def main() -> None:
        pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        pub.send("cfg/a", b"1", retain=True)
        pub.send("cfg/b", b"two", retain=True)
        cfg = MqttSourceConfig.model_validate(base(mosquitto_broker, type="mqtt", name="chk", topics=[
            {"filter": "cfg/a", "payload": "number", "signal": "a"},
            {"filter": "cfg/b", "payload": "text", "signal": "b"}]))
        got = await create(cfg, {}).read_once(timeout=5)
        assert {r.signal: r.value for r in got} == {"a": 1, "b": "two"}
        pub.close()

    run(main())


# ---------------------------------------------------------------------------------------------
# throughput
# ---------------------------------------------------------------------------------------------

#: A minimal MQTT 3.1.1 QoS 1 publisher in a separate process (so it does not share our GIL): it writes
#: bursts of PUBLISH packets and reads the broker's PUBACKs, keeping at most WINDOW messages unacked.
RAW_PUBLISHER = r"""
import socket, struct, sys, threading, time
host, port, n, burst, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def rl(x):
    out = bytearray()
    while True:
        b = x % 128; x //= 128
        out.append(b | (128 if x else 0))
        if not x: return bytes(out)
def s(t):
    b = t.encode(); return struct.pack("!H", len(b)) + b
sock = socket.create_connection((host, port)); sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
var = s("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + s("raw-publisher")
sock.sendall(bytes([0x10]) + rl(len(var)) + var)
assert sock.recv(4)[3] == 0
acked = 0
def reader():
    global acked
    pending = 0
    while True:
        d = sock.recv(65536)
        if not d: return
        pending += len(d); acked += pending // 4; pending %= 4
threading.Thread(target=reader, daemon=True).start()
mid = 1; sent = 0; t0 = time.perf_counter()
while sent < n:
    out = bytearray()
    for i in range(sent, min(n, sent + burst)):
        payload = b'{"seq": %d, "data": {"temp": %d.5}, "values": [1, 2, 3]}' % (i, i % 100)
        v = s("perf/press%d/data" % (i % 10)) + struct.pack("!H", mid) + payload
        out += bytes([0x32]) + rl(len(v)) + v
        mid = mid % 65535 + 1
    sock.sendall(out); sent = min(n, sent + burst)
    while sent - acked > window: time.sleep(0.0002)
while acked < n: time.sleep(0.001)
print(f"{n / (time.perf_counter() - t0):.0f}")
"""


@pytest.fixture
def roomy_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """Mosquitto queues at most 1,000 QoS 1 messages per slow subscriber by default and drops the rest;
    a burst test needs room (a production broker that takes bursts needs the same setting)."""
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is absent: install Debian's broker with `apt-get install mosquitto`")
    broker = ConfiguredBroker(tmp_path / "broker", ["max_queued_messages 100000", "set_tcp_nodelay true"])
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def test_throughput_no_loss_at_qos1(roomy_broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]) -> None:
    n = 20_000

    async def main() -> None:
        src = await start(base(roomy_broker, qos=1, topics=[
            {"filter": "perf/+/data", "signals": [{"signal": "{1}.seq", "path": "seq"},
                                                  {"signal": "{1}.temp", "path": "data.temp"}]}]))
        c = src.connector
        try:
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", RAW_PUBLISHER, roomy_broker.host, str(roomy_broker.port), str(n), "500",
                "2000", stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            assert proc.returncode == 0
            await eventually(lambda: c.messages >= n, 30, f"{n} messages (have {c.messages})")
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            seqs = sorted(int(r.value) for r in src.readings if r.signal.endswith(".seq") and r.value is not None)
            assert seqs == list(range(n))  # every message exactly once, none lost
            assert c.stats.errors == 0 and c.stats.readings == 2 * n
            first = min(r.received for r in src.readings)
            last = max(r.received for r in src.readings)
            span = max((last - first).total_seconds(), 1e-6)
            with capsys.disabled():
                print(f"\nmqtt connector: {n} QoS 1 messages, first to last {span:.2f} s = {n / span:,.0f} msg/s "
                      f"({n / elapsed:,.0f} msg/s counting the publisher's start; {2 * n} readings in "
                      f"{len(src.batches)} batches; publisher {int(out):,} msg/s; agent CPU {cpu:.2f} s = "
                      f"{cpu / n * 1e6:.0f} us/msg)")
        finally:
            await src.stop()

    run(main())


def test_backpressure_keeps_everything(mosquitto_broker: MosquittoBroker) -> None:
    """A slow emit: the network thread stops reading at max_pending and nothing is lost."""
    async def main() -> None:
        cfg = MqttSourceConfig.model_validate(base(mosquitto_broker, type="mqtt", name="slow", max_pending=100,
                                                   emit_batch=50, topics=[
                                                       {"filter": "bp", "payload": "number", "signal": "n"}]))
        connector = create(cfg, {})
        got: list[Any] = []

        async def slow_emit(batch: Sequence[Reading]) -> None:
            got.extend(r.value for r in batch)
            await asyncio.sleep(0.02)

        task = asyncio.create_task(connector.run(slow_emit))
        await eventually(lambda: connector.subscribed, 10, "the subscription")
        done = threading.Event()

        def publish() -> None:
            pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
            for i in range(600):
                pub.client.publish("bp", str(i), qos=1)
            pub.client.publish("bp", "600", qos=1).wait_for_publish(10)
            pub.close()
            done.set()

        threading.Thread(target=publish, daemon=True).start()
        await eventually(lambda: len(got) >= 601, 20, "all 601 values")
        assert got == list(range(601))
        assert done.is_set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(main())


def test_time_helpers() -> None:
    from edge_agent.connectors.mqtt import _parse_time, _PathError

    assert _parse_time("2025-11-25T12:00:00Z") == datetime(2025, 11, 25, 12, tzinfo=UTC)
    assert _parse_time("2025-11-25T12:00:00") == datetime(2025, 11, 25, 12, tzinfo=UTC)  # naive = UTC
    assert _parse_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert _parse_time(1764072000123.0) == datetime(2025, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
    for bad in (True, None, "noon", 1e30, [1]):
        with pytest.raises(_PathError):
            _parse_time(bad)
