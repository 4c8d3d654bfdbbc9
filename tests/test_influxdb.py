"""InfluxDB sinks: the line-protocol encoder (golden lines), the 1.x sink against a real InfluxDB 1.6.7,
and the 2.x/3.x sink (influxdb-client) against a recording HTTP stand-in.

No InfluxDB 2 or 3 server can be installed here (Debian ships 1.6.7, whose server answers 404 on the
``/api/v2/write`` endpoint that ``influxdb-client`` uses), so the 2.x path is checked on what it sends:
the path ``/api/v2/write``, the ``org``/``bucket``/``precision=ns`` query, the ``Authorization: Token ...``
header, the body's line protocol (plain and gzip), the split into ``batch_size`` requests, and how answers
(204, 400, 503, no server) map onto success, SinkRejected and SinkError. The line protocol those requests
carry is the same the 1.x tests write into a real server and read back.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from edge_agent.sinks.base import SinkError, SinkRejected
from edge_agent.sinks.influxdb import InfluxConfigError, InfluxDbSink, InfluxDbSinkConfig
from edge_agent.sinks.influxdb import create as create_v2
from edge_agent.sinks.influxdb_v1 import InfluxDbV1Sink, InfluxDbV1SinkConfig
from edge_agent.sinks.influxdb_v1 import create as create_v1
from edge_agent.sinks.line_protocol import (
    LineProtocolError,
    encode_sample,
    encode_samples,
    escape_measurement,
    escape_string,
    escape_tag,
    timestamp_ns,
)
from tests.influx_peer import (  # noqa: F401
    InfluxDB1,
    RecordingInfluxServer,
    influx_recorder_fixture,
    influxdb1_fixture,
)
from tests.mqtt_broker import free_port

SM = "urn:twinedge:sm:press-01:OperationalData:1.0"
T0 = datetime(2025, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
T0_NS = 1764072000123456000


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def sample(path: str, value: Any, t: datetime = T0, quality: Quality = Quality.GOOD, sm: str = SM) -> Sample:
    return Sample(SeriesKey(sm, path), t, value, quality)


# ---------------------------------------------------------------------------------------------
# line protocol: golden cases
# ---------------------------------------------------------------------------------------------

M = "twinedge"
TAGS = f"path=Hydraulics.OilTemperature,submodel_id={SM}"


@pytest.mark.parametrize(("value", "quality", "fields"), [
    (48.7, Quality.GOOD, 'value=48.7,quality="good"'),
    (7, Quality.GOOD, 'value=7.0,quality="good"'),  # ints are floats: one type per field
    (-0.0, Quality.GOOD, 'value=-0.0,quality="good"'),
    (1e16, Quality.GOOD, 'value=1e+16,quality="good"'),
    (1.5e-7, Quality.UNCERTAIN, 'value=1.5e-07,quality="uncertain"'),
    (True, Quality.GOOD, 'value_bool=true,quality="good"'),
    (False, Quality.GOOD, 'value_bool=false,quality="good"'),
    ("running", Quality.GOOD, 'value_str="running",quality="good"'),
    ('say "hi" \\ now', Quality.GOOD, 'value_str="say \\"hi\\" \\\\ now",quality="good"'),
    ("two\nlines, a=b", Quality.GOOD, 'value_str="two\nlines, a=b",quality="good"'),
    ("", Quality.GOOD, 'value_str="",quality="good"'),
    (None, Quality.BAD, 'quality="bad"'),
    (math.nan, Quality.GOOD, 'quality="good"'),
    (math.inf, Quality.UNCERTAIN, 'quality="uncertain"'),
])
def test_encode_value_types(value: Any, quality: Quality, fields: str) -> None:
    line = encode_sample(sample("Hydraulics.OilTemperature", value, quality=quality), M)
    assert line == f"{M},{TAGS} {fields} {T0_NS}"


def test_encode_escapes_tags_and_measurement() -> None:
    s = sample("Motor Data,Main=1.Speed", 1.0, sm="urn:x:sm=a b,c")
    assert encode_sample(s, escape_measurement("my data,v1")) == (
        "my\\ data\\,v1,path=Motor\\ Data\\,Main\\=1.Speed,submodel_id=urn:x:sm\\=a\\ b\\,c "
        f'value=1.0,quality="good" {T0_NS}')
    assert escape_tag('q"uote') == 'q"uote'  # quotes need no escaping in tags
    assert escape_tag("a\\b") == "a\\b"  # a lone backslash is literal in 1.x and 2.x
    assert escape_string('a"b\\c') == '"a\\"b\\\\c"'
    assert encode_sample(sample("Markings[0].Name", "x"), M).startswith(f"{M},path=Markings[0].Name,")


def test_encode_timestamps() -> None:
    assert timestamp_ns(T0) == T0_NS
    assert timestamp_ns(datetime(2025, 11, 25, 13, 0, 0, 500000, tzinfo=timezone(timedelta(hours=1)))) == \
        1764072000500000000
    assert timestamp_ns(datetime(2025, 11, 25, 12, 0, 0, 123456)) == T0_NS  # naive = UTC
    assert timestamp_ns(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1000
    assert timestamp_ns(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    # exact: no float rounding even far from the epoch
    assert timestamp_ns(datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)) == 9223372036854775000
    with pytest.raises(LineProtocolError, match="outside InfluxDB's range"):
        timestamp_ns(datetime(2300, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("path", "sm", "value", "message"), [
    ("a\nb", SM, 1.0, "line break"),
    ("a\rb", SM, 1.0, "line break"),
    ("", SM, 1.0, "empty"),
    ("ends\\", SM, 1.0, "backslash"),
    ("a\\,b", SM, 1.0, "backslash"),
    ("a\\\\b", SM, 1.0, "backslash"),
    ("ok", "", 1.0, "empty"),
    ("ok", SM, 10**400, "too large"),
    ("ok", SM, b"bytes", "not a number"),
])
def test_encode_refuses_what_line_protocol_cannot_carry(path: str, sm: str, value: Any, message: str) -> None:
    with pytest.raises(LineProtocolError, match=message):
        encode_sample(sample(path, value, sm=sm), M)


def test_encode_samples_skips_bad_ones() -> None:
    out = encode_samples([sample("a", 1.0), sample("bad\n", 2.0), sample("b", "x")], "m x")
    assert out.points == 2
    assert out.body == (f'm\\ x,path=a,submodel_id={SM} value=1.0,quality="good" {T0_NS}\n'
                        f'm\\ x,path=b,submodel_id={SM} value_str="x",quality="good" {T0_NS}').encode()
    assert len(out.skipped) == 1 and "line break" in out.skipped[0][1]
    with pytest.raises(LineProtocolError, match="comment"):
        encode_samples([], "#m")


def test_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="http"):
        InfluxDbSinkConfig(type="influxdb", name="h", url="localhost:8086", bucket="b")
    with pytest.raises(ValidationError, match="line break"):
        InfluxDbSinkConfig(type="influxdb", name="h", url="http://x", bucket="b", measurement="a\nb")
    with pytest.raises(ValidationError, match="extra"):
        InfluxDbSinkConfig.model_validate({"type": "influxdb", "name": "h", "url": "http://x", "bucket": "b", "db": 1})
    with pytest.raises(ValidationError, match="not both"):
        InfluxDbV1SinkConfig(type="influxdb_v1", name="h", url="http://x", database="d", token_env="T", username="u")
    with pytest.raises(ValidationError, match="needs username"):
        InfluxDbV1SinkConfig(type="influxdb_v1", name="h", url="http://x", database="d", password_env="P")
    with pytest.raises(InfluxConfigError, match="INFLUX_TOKEN_MISSING"):
        create_v2(InfluxDbSinkConfig(type="influxdb", name="h", url="http://x", bucket="b",
                                 token_env="INFLUX_TOKEN_MISSING"), {})
    with pytest.raises(InfluxConfigError, match="PW_MISSING"):
        create_v1(InfluxDbV1SinkConfig(type="influxdb_v1", name="h", url="http://x", database="d", username="u",
                                  password_env="PW_MISSING"), {})


# ---------------------------------------------------------------------------------------------
# 1.x against a real InfluxDB 1.6.7
# ---------------------------------------------------------------------------------------------

def v1_sink(server: InfluxDB1, db: str, **kw: Any) -> InfluxDbV1Sink:
    cfg = InfluxDbV1SinkConfig.model_validate({"type": "influxdb_v1", "name": "hist", "url": server.url,
                                               "database": db, "create_database": True, "timeout": 3, **kw})
    return create_v1(cfg, {})


MIXED = [
    sample("Hydraulics.OilTemperature", 48.7),
    sample("Hydraulics.OilTemperature", 48.9, T0 + timedelta(seconds=1)),
    sample("Counters.Cycles", 1234),
    sample("State.Running", True),
    sample("State.Text", 'say "hi", a=b \\ ok\nnext line'),
    sample("Hydraulics.Pressure", None, quality=Quality.BAD),
    sample("Motor Data,Main=1.Speed", 1500.5, quality=Quality.UNCERTAIN),
    sample("Hydraulics.OilTemperature", 50.0, sm="urn:x:sm=a b,c"),
]


def test_v1_write_query_and_idempotent_rewrite(influxdb1: InfluxDB1) -> None:
    async def main() -> None:
        sink = v1_sink(influxdb1, "t_write")
        await sink.open()  # creates the database
        await sink.write(MIXED)
        assert sink.stats.written == len(MIXED) and sink.stats.batches == 1
        rows = influxdb1.rows('SELECT * FROM "twinedge" GROUP BY *', "t_write")
        got = {(r["submodel_id"], r["path"], r["time"]): r for r in rows}
        assert len(got) == len(MIXED)
        for s in MIXED:
            r = got[(s.key.submodel_id, s.key.path, timestamp_ns(s.time))]
            assert r["quality"] == s.quality.value
            v = s.value
            if isinstance(v, bool):
                assert r["value_bool"] is v and r["value"] is None and r["value_str"] is None
            elif isinstance(v, int | float):
                assert r["value"] == float(v) and r["value_bool"] is None
            elif isinstance(v, str):
                assert r["value_str"] == v
            else:
                assert r["value"] is None and r["value_bool"] is None and r["value_str"] is None
        # the same batch again (a retry after a lost ack): no new points, values overwritten in place
        await sink.write(MIXED)
        count = influxdb1.rows('SELECT count("quality") FROM "twinedge"', "t_write")
        assert count[0]["count"] == len(MIXED)
        changed = [Sample(MIXED[0].key, MIXED[0].time, 47.0)]
        await sink.write(changed)
        rows = influxdb1.rows(f"SELECT value FROM twinedge WHERE time = {T0_NS} "
                              "AND path = 'Hydraulics.OilTemperature' AND submodel_id = '" + SM + "'", "t_write")
        assert [r["value"] for r in rows] == [47.0]
        await sink.close()

    run(main())


def test_v1_batches_and_skips(influxdb1: InfluxDB1) -> None:
    async def main() -> None:
        sink = v1_sink(influxdb1, "t_batches", batch_size=3, gzip=True)
        samples = [sample("S.V", float(i), T0 + timedelta(milliseconds=i)) for i in range(10)]
        await sink.write([*samples, sample("bad\npath", 1.0)])
        assert sink.stats.written == 10 and sink.skipped == 1 and "line break" in sink.stats.last_error
        count = influxdb1.rows('SELECT count("value") FROM "twinedge"', "t_batches")
        assert count[0]["count"] == 10

    run(main())


def test_v1_type_conflict_is_rejected(influxdb1: InfluxDB1) -> None:
    """A 400 from the server (here: someone else wrote a string ``value``) -> SinkRejected, not a retry loop."""
    async def main() -> None:
        sink = v1_sink(influxdb1, "t_conflict")
        await sink.open()
        status, _ = influxdb1.write_raw("t_conflict", f'twinedge,path=X,submodel_id=Y value="text" {T0_NS}'.encode())
        assert status == 204
        with pytest.raises(SinkRejected, match=r"400.*field type conflict"):
            await sink.write([sample("Hydraulics.OilTemperature", 1.0)])
        assert sink.stats.rejected == 1 and sink.stats.errors == 1

    run(main())


def test_v1_missing_database_is_an_error_not_a_rejection(influxdb1: InfluxDB1) -> None:
    async def main() -> None:
        sink = v1_sink(influxdb1, "t_nodb", create_database=False)
        with pytest.raises(SinkError, match="create_database") as info:
            await sink.write([sample("a", 1.0)])
        assert not isinstance(info.value, SinkRejected)

    run(main())


def test_v1_server_down_then_up(influxdb1: InfluxDB1) -> None:
    async def main() -> None:
        sink = v1_sink(influxdb1, "t_down")
        await sink.write([sample("a", 1.0)])
        influxdb1.stop()
        try:
            with pytest.raises(SinkError, match="cannot reach InfluxDB"):
                await sink.write([sample("a", 2.0, T0 + timedelta(seconds=1))])
            assert sink.stats.errors == 1
        finally:
            influxdb1.start()
        await sink.write([sample("a", 2.0, T0 + timedelta(seconds=1))])  # same sink, new connection
        count = influxdb1.rows('SELECT count("value") FROM "twinedge"', "t_down")
        assert count[0]["count"] == 2

    run(main())


def test_v1_creates_database_once_server_is_up(tmp_path: Any) -> None:
    """The server is down when the sink opens: the CREATE DATABASE happens before the first write."""
    from tests.influx_peer import influxd_binary

    if influxd_binary() is None:
        pytest.skip("the influxd binary is absent: install Debian's InfluxDB 1.x with `apt-get install influxdb`")
    server = InfluxDB1(tmp_path / "late")

    async def main() -> None:
        sink = v1_sink(server, "t_late")
        await sink.open()  # server down: no error
        with pytest.raises(SinkError, match="cannot reach"):
            await sink.write([sample("a", 1.0)])
        server.start()
        await sink.write([sample("a", 1.0)])
        assert server.rows('SELECT count("value") FROM "twinedge"', "t_late")[0]["count"] == 1

    try:
        run(main())
    finally:
        server.close()


def test_v1_request_details(influx_recorder: RecordingInfluxServer) -> None:
    """What the 1.x sink sends: path, query, basic auth or token, gzip."""
    async def main() -> None:
        cfg = InfluxDbV1SinkConfig(type="influxdb_v1", name="h", url=influx_recorder.url + "/influx/",
                                   database="plant db", retention_policy="one_week", username="agent",
                                   password_env="PW", gzip=True)
        sink = create_v1(cfg, {"PW": "s3cret"})
        await sink.write([sample("a", 1.0)])
        (req,) = influx_recorder.writes()
        assert req.path == "/influx/write"
        assert req.q("db") == "plant db" and req.q("rp") == "one_week" and req.q("precision") == "ns"
        assert req.headers["authorization"] == "Basic YWdlbnQ6czNjcmV0"  # agent:s3cret
        assert req.headers["content-encoding"] == "gzip" and req.raw != req.body
        assert req.lines == [f'twinedge,path=a,submodel_id={SM} value=1.0,quality="good" {T0_NS}']
        cfg2 = InfluxDbV1SinkConfig(type="influxdb_v1", name="h", url=influx_recorder.url, database="d",
                                    token_env="TOK")
        await create_v1(cfg2, {"TOK": "abc"}).write([sample("a", 1.0)])
        assert influx_recorder.writes()[-1].headers["authorization"] == "Token abc"
        influx_recorder.status = 503
        with pytest.raises(SinkError, match="503") as info:
            await sink.write([sample("a", 1.0)])
        assert not isinstance(info.value, SinkRejected)

    run(main())


# ---------------------------------------------------------------------------------------------
# 2.x / 3.x (influxdb-client) against the recording stand-in
# ---------------------------------------------------------------------------------------------

def v2_sink(url: str, **kw: Any) -> InfluxDbSink:
    cfg = InfluxDbSinkConfig.model_validate({"type": "influxdb", "name": "hist", "url": url, "org": "acme",
                                         "bucket": "plant", "token_env": "INFLUX_TOKEN", "timeout": 2, **kw})
    return create_v2(cfg, {"INFLUX_TOKEN": "tok-123"})


def test_v2_request(influx_recorder: RecordingInfluxServer) -> None:
    async def main() -> None:
        sink = v2_sink(influx_recorder.url)
        await sink.write(MIXED)
        (req,) = influx_recorder.writes()
        assert req.method == "POST" and req.path == "/api/v2/write"
        assert req.q("org") == "acme" and req.q("bucket") == "plant" and req.q("precision") == "ns"
        assert req.headers["authorization"] == "Token tok-123"
        assert req.headers["content-type"].startswith("text/plain")
        assert "content-encoding" not in req.headers
        assert req.body.decode() == encode_samples(MIXED, "twinedge").body.decode()
        assert sink.stats.written == len(MIXED) and sink.stats.batches == 1
        await sink.close()

    run(main())


def test_v2_gzip_and_batching(influx_recorder: RecordingInfluxServer) -> None:
    async def main() -> None:
        sink = v2_sink(influx_recorder.url, gzip=True, batch_size=4, measurement="press data")
        samples = [sample("S.V", float(i), T0 + timedelta(milliseconds=i)) for i in range(10)]
        await sink.write(samples)
        writes = influx_recorder.writes()
        assert [len(r.lines) for r in writes] == [4, 4, 2]
        assert all(r.headers.get("content-encoding") == "gzip" and r.raw != r.body for r in writes)
        lines = [line for r in writes for line in r.lines]
        assert lines[0] == f'press\\ data,path=S.V,submodel_id={SM} value=0.0,quality="good" {T0_NS}'
        assert lines[9].endswith(f" {T0_NS + 9_000_000}")
        await sink.close()

    run(main())


def test_v2_errors(influx_recorder: RecordingInfluxServer) -> None:
    async def main() -> None:
        sink = v2_sink(influx_recorder.url)
        influx_recorder.status = 503
        influx_recorder.response_body = b'{"code":"unavailable","message":"too busy"}'
        with pytest.raises(SinkError, match="503") as info:
            await sink.write([sample("a", 1.0)])
        assert not isinstance(info.value, SinkRejected) and "too busy" in str(info.value)
        influx_recorder.status = 400
        influx_recorder.response_body = b'{"code":"invalid","message":"unable to parse"}'
        with pytest.raises(SinkRejected, match="unable to parse"):
            await sink.write([sample("a", 1.0)])
        influx_recorder.status = 401
        with pytest.raises(SinkError) as info:
            await sink.write([sample("a", 1.0)])
        assert not isinstance(info.value, SinkRejected)
        influx_recorder.status = 204
        influx_recorder.response_body = b""
        await sink.write([sample("a", 1.0)])  # same sink works again
        assert (sink.stats.errors, sink.stats.rejected, sink.stats.written) == (3, 1, 1)
        await sink.close()
        down = v2_sink(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(SinkError, match="cannot reach"):
            await down.write([sample("a", 1.0)])
        await down.close()

    run(main())
