"""Embedded time-series store: one SQLite file (WAL), samples clustered by (series, time).

The samples table is WITHOUT ROWID with primary key (series, t): a range read is one index walk,
and INSERT OR REPLACE makes re-sent samples idempotent. Times are integer microseconds (UTC).
The agent writes and the server reads the same file, from different processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path

from aas_models.timeseries.base import (
    MAX_POINTS,
    Point,
    Quality,
    Sample,
    SeriesKey,
    StoreError,
    TimeSeriesStore,
    Value,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    submodel_id TEXT NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (submodel_id, path)
);
CREATE TABLE IF NOT EXISTS samples (
    series INTEGER NOT NULL,
    t INTEGER NOT NULL,
    num REAL,
    text TEXT,
    quality INTEGER NOT NULL,
    received INTEGER,
    PRIMARY KEY (series, t)
) WITHOUT ROWID;
"""
QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
QUALITY_OF_CODE = {v: k for k, v in QUALITY_CODE.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SERIES_TIME = itemgetter(0, 1)


def micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def encode_value(value: Value) -> tuple[float | None, str | None]:
    """Numbers (and booleans) go to `num`, text to `text`; booleans are tagged to read back as bool."""
    if isinstance(value, bool):
        return float(value), "bool"
    if isinstance(value, int | float):
        return float(value), "int" if isinstance(value, int) else None
    if value is None:
        return None, None
    return None, "s:" + value


def decode_value(num: float | None, text: str | None) -> Value:
    if text is None:
        return num
    if text == "bool":
        return bool(num)
    if text == "int":
        return int(num) if num is not None else None
    return text[2:]


class SqliteTimeSeries(TimeSeriesStore):
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        self._ids: dict[SeriesKey, int] = {}
        #: Series id by id() of a key object written before (writers pass the same key objects again):
        #: spares hashing the dataclass per sample. Holds the key, so the id() cannot be reused.
        self._by_object: dict[int, tuple[SeriesKey, int]] = {}

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("time-series store is not open")
        return self._db

    def _series_id(self, key: SeriesKey, create: bool) -> int | None:
        known = self._ids.get(key)
        if known is not None:
            return known
        row = self.db.execute("SELECT id FROM series WHERE submodel_id = ? AND path = ?",
                              (key.submodel_id, key.path)).fetchone()
        if row is None:
            if not create:
                return None
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            row = (cur.lastrowid,)
        self._ids[key] = int(row[0])
        return int(row[0])

    async def write(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = []
                by_object, codes = self._by_object, QUALITY_CODE
                # Samples of one poll share their datetime objects: convert each object once.
                last_time: datetime | None = None
                last_received: datetime | None = None
                t = r = 0
                for s in samples:
                    value = s.value
                    num, text = (value, None) if type(value) is float else encode_value(value)
                    key = s.key
                    known = by_object.get(id(key))
                    if known is not None and known[0] is key:
                        series = known[1]
                    else:
                        series = self._series_id(key, create=True)  # type: ignore[assignment]
                        if len(by_object) > 1_000_000:
                            by_object.clear()
                        by_object[id(key)] = (key, series)
                    if s.time is not last_time:
                        last_time, t = s.time, micros(s.time)
                    received = s.received
                    if received is not None and received is not last_received:
                        last_received, r = received, micros(received)
                    rows.append((series, t, num, text, codes[s.quality], r if received is not None else None))
                # In (series, t) order the inserts walk the clustered table once instead of jumping around;
                # the sort is stable, so of two samples with one (series, t) the later still wins.
                rows.sort(key=_SERIES_TIME)
                db.executemany("INSERT OR REPLACE INTO samples (series, t, num, text, quality, received) "
                               "VALUES (?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._ids.clear()  # ids created in the rolled-back transaction are gone
                self._by_object.clear()
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"time-series store {self._path}: {exc}") from exc

    async def read(self, key: SeriesKey, start: datetime | None = None, end: datetime | None = None,
                   limit: int = 10_000, every: timedelta | None = None) -> list[Point]:
        limit = max(1, min(limit, MAX_POINTS))
        series = self._series_id(key, create=False)
        if series is None:
            return []
        lo = micros(start) if start else -(2**62)
        hi = micros(end) if end else 2**62
        if every is None:
            rows = self.db.execute(
                "SELECT t, num, text, quality FROM samples WHERE series = ? AND t >= ? AND t < ? "
                "ORDER BY t DESC LIMIT ?", (series, lo, hi, limit)).fetchall()
            return [Point(from_micros(t), decode_value(num, text), QUALITY_OF_CODE[q])
                    for t, num, text, q in reversed(rows)]
        width = max(1, every // timedelta(microseconds=1))
        rows = self.db.execute(
            "SELECT (t / ?) * ? AS bucket, AVG(CASE WHEN quality = 0 THEN num END), "
            "MIN(CASE WHEN quality = 0 THEN num END), MAX(CASE WHEN quality = 0 THEN num END), "
            "COUNT(*), MAX(quality) FROM samples WHERE series = ? AND t >= ? AND t < ? "
            "GROUP BY bucket ORDER BY bucket DESC LIMIT ?", (width, width, series, lo, hi, limit)).fetchall()
        return [Point(from_micros(b), mean, QUALITY_OF_CODE[q], lo_v, hi_v, n)
                for b, mean, lo_v, hi_v, n, q in reversed(rows)]

    async def series(self) -> list[SeriesKey]:
        rows = self.db.execute("SELECT submodel_id, path FROM series ORDER BY id").fetchall()
        return [SeriesKey(s, p) for s, p in rows]

    async def delete_before(self, cutoff: datetime) -> int:
        cur = self.db.execute("DELETE FROM samples WHERE t < ?", (micros(cutoff),))
        return cur.rowcount
