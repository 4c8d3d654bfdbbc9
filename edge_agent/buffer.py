"""Durable store-and-forward queue (SQLite, WAL): samples wait here until every sink has them.

Each sink has its own position; `read` gives a sink the samples after its position and `ack`
moves it, so a sink that is down keeps its backlog while the others go on (at least once per
sink). Commits happen before the agent acknowledges anything upstream, so a SIGKILL loses
nothing that was appended. The size is bounded: past `max_samples` the oldest samples are dropped
and counted (`dropped`), never silently.

Speed: the newest appended samples are also kept in memory (`TAIL_SAMPLES` at most, already in the
form a read from disk gives), so a sink that keeps up reads them without decoding rows again; the
file stays the truth, and a sink that falls behind, or a restart, reads from it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import Sample, SeriesKey
from aas_models.timeseries.sqlite import QUALITY_CODE, QUALITY_OF_CODE, decode_value, encode_value, from_micros, micros

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, submodel_id TEXT NOT NULL, path TEXT NOT NULL,
                                   UNIQUE (submodel_id, path));
CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, series INTEGER NOT NULL,
                                  t INTEGER NOT NULL, num REAL, text TEXT, quality INTEGER NOT NULL,
                                  received INTEGER);
CREATE TABLE IF NOT EXISTS positions (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


#: Samples kept in memory after their append (about 200 bytes each).
TAIL_SAMPLES = 200_000


def _as_read(sample: Sample) -> Sample:
    """`sample` as a read from disk returns it: UTC times, NaN as no value (SQLite stores NaN as NULL)."""
    value, time, received = sample.value, sample.time, sample.received
    changed = False
    if type(value) is float and value != value:
        value, changed = None, True
    if time.tzinfo is not UTC:
        time, changed = time.astimezone(UTC), True
    if received is not None and received.tzinfo is not UTC:
        received, changed = received.astimezone(UTC), True
    return Sample(sample.key, time, value, sample.quality, received) if changed else sample


class BufferConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Path("twinedge-data/agent-buffer.db")
    #: Bound on queued samples (about 60 bytes each on disk).
    max_samples: int = Field(default=5_000_000, ge=1000)
    #: What goes when full: the oldest samples (the newest data matters most for live twins).
    overflow: Literal["drop-oldest"] = "drop-oldest"


@dataclass(frozen=True)
class Batch:
    samples: list[Sample]
    last_seq: int


class Buffer:
    def __init__(self, config: BufferConfig) -> None:
        self.config = config
        self._db: sqlite3.Connection | None = None
        self._series: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        #: Series id by id() of a key object seen before (the mapper hands out the same key objects):
        #: spares hashing the dataclass per sample. Holds the key, so the id() cannot be reused.
        self._by_object: dict[int, tuple[SeriesKey, int]] = {}
        #: The newest appended samples, (first seq, samples) per append, oldest first.
        self._tail: deque[tuple[int, list[Sample]]] = deque()
        self._tail_size = 0

    def open(self, sinks: Sequence[str]) -> None:
        path = str(self.config.path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        for sink in sinks:
            db.execute("INSERT OR IGNORE INTO positions (sink, seq) VALUES (?, 0)", (sink,))
        # A sink removed from the config would otherwise hold every sample forever.
        marks = ",".join("?" * len(sinks))
        db.execute(f"DELETE FROM positions WHERE sink NOT IN ({marks})", tuple(sinks))
        for ident, submodel_id, p in db.execute("SELECT id, submodel_id, path FROM series"):
            key = SeriesKey(submodel_id, p)
            self._series[key], self._keys[ident] = ident, key
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("buffer is not open")
        return self._db

    def _series_id(self, key: SeriesKey) -> int:
        known = self._by_object.get(id(key))
        if known is not None and known[0] is key:
            return known[1]
        ident = self._series.get(key)
        if ident is None:
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            assert cur.lastrowid is not None
            ident = cur.lastrowid
            self._series[key], self._keys[ident] = ident, key
        if len(self._by_object) > 4 * TAIL_SAMPLES:
            self._by_object.clear()
        self._by_object[id(key)] = (key, ident)
        return ident

    def append(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = []
            series_id, by_object = self._series_id, self._by_object
            codes = QUALITY_CODE
            # Samples of one poll share their datetime objects: convert each object once.
            last_time: datetime | None = None
            last_received: datetime | None = None
            t = r = 0
            for s in samples:
                value, key = s.value, s.key
                num, text = (value, None) if type(value) is float else encode_value(value)
                known = by_object.get(id(key))
                series = known[1] if known is not None and known[0] is key else series_id(key)
                if s.time is not last_time:
                    last_time, t = s.time, micros(s.time)
                received = s.received
                if received is not None and received is not last_received:
                    last_received, r = received, micros(received)
                rows.append((series, t, num, text, codes[s.quality], r if received is not None else None))
            db.executemany("INSERT INTO queue (series, t, num, text, quality, received) VALUES (?, ?, ?, ?, ?, ?)",
                           rows)
            last = self._enforce_bound()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._series.clear()
            self._keys.clear()
            self._by_object.clear()
            for ident, submodel_id, p in db.execute("SELECT id, submodel_id, path FROM series"):
                key = SeriesKey(submodel_id, p)
                self._series[key], self._keys[ident] = ident, key
            raise
        self._remember(last - len(rows) + 1, [_as_read(s) for s in samples])

    def _remember(self, first: int, samples: list[Sample]) -> None:
        tail = self._tail
        if tail and tail[-1][0] + len(tail[-1][1]) != first:  # not contiguous (cannot happen): start over
            tail.clear()
            self._tail_size = 0
        tail.append((first, samples))
        self._tail_size += len(samples)
        while self._tail_size > TAIL_SAMPLES and len(tail) > 1:
            self._tail_size -= len(tail.popleft()[1])

    def _enforce_bound(self) -> int:
        """Drops the oldest samples past the bound; returns the last seq."""
        db = self.db
        first, last = db.execute("SELECT MIN(seq), MAX(seq) FROM queue").fetchone()
        if first is None or last - first + 1 <= self.config.max_samples:
            return int(last)
        cutoff = last - self.config.max_samples
        dropped = db.execute("DELETE FROM queue WHERE seq <= ?", (cutoff,)).rowcount
        db.execute("INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                   "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (dropped,))
        db.execute("UPDATE positions SET seq = ? WHERE seq < ?", (cutoff, cutoff))
        return int(last)

    def read(self, sink: str, limit: int) -> Batch | None:
        position = self.position(sink)
        batch = self._read_tail(position, limit)
        if batch is not None:
            return batch
        rows = self.db.execute(
            "SELECT seq, series, t, num, text, quality, received FROM queue WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, limit)).fetchall()
        if not rows:
            return None
        times: dict[int, datetime] = {}  # rows of one poll share their times: build each datetime once

        def moment(value: int) -> datetime:
            found = times.get(value)
            if found is None:
                found = times[value] = from_micros(value)
            return found

        keys, qualities = self._keys, QUALITY_OF_CODE
        samples = [Sample(keys[series], moment(t), decode_value(num, text), qualities[q],
                          moment(received) if received is not None else None)
                   for _seq, series, t, num, text, q, received in rows]
        return Batch(samples, rows[-1][0])

    def _read_tail(self, position: int, limit: int) -> Batch | None:
        """The samples after `position` from memory, if memory has the next one."""
        tail = self._tail
        if not tail or not tail[0][0] <= position + 1 < tail[-1][0] + len(tail[-1][1]):
            return None
        out: list[Sample] = []
        seq = position
        for first, samples in tail:
            end = first + len(samples)
            if end <= seq + 1:
                continue
            take = samples[seq + 1 - first:seq + 1 - first + limit - len(out)]
            out.extend(take)
            seq += len(take)
            if len(out) >= limit:
                break
        return Batch(out, seq)

    def position(self, sink: str) -> int:
        row = self.db.execute("SELECT seq FROM positions WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise KeyError(f"unknown sink {sink!r}")
        return int(row[0])

    def ack(self, sink: str, seq: int) -> None:
        self.db.execute("UPDATE positions SET seq = MAX(seq, ?) WHERE sink = ?", (seq, sink))
        tail = self._tail
        if tail and tail[0][0] + len(tail[0][1]) - 1 <= seq:  # memory no longer needed by any sink goes
            (lowest,) = self.db.execute("SELECT MIN(seq) FROM positions").fetchone()
            while tail and lowest is not None and tail[0][0] + len(tail[0][1]) - 1 <= lowest:
                self._tail_size -= len(tail.popleft()[1])

    def compact(self) -> int:
        """Delete what every sink has; returns how many rows went."""
        (lowest,) = self.db.execute("SELECT MIN(seq) FROM positions").fetchone()
        if lowest is None:
            return 0
        return self.db.execute("DELETE FROM queue WHERE seq <= ?", (lowest,)).rowcount

    def depth(self, sink: str) -> int:
        (count,) = self.db.execute("SELECT COUNT(*) FROM queue WHERE seq > ?", (self.position(sink),)).fetchone()
        return int(count)

    def dropped(self) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0
