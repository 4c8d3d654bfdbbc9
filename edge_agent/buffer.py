"""Durable store-and-forward queue (SQLite, WAL): samples wait here until every sink has them.

Each sink has its own position; `read` gives a sink the samples after its position and `ack`
moves it, so a sink that is down keeps its backlog while the others go on (at least once per
sink). Commits happen before the agent acknowledges anything upstream, so a SIGKILL loses
nothing that was appended. The size is bounded: past `max_samples` the oldest samples are dropped
and counted (`dropped`), never silently.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
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
        ident = self._series.get(key)
        if ident is None:
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            assert cur.lastrowid is not None
            ident = cur.lastrowid
            self._series[key], self._keys[ident] = ident, key
        return ident

    def append(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = []
            for s in samples:
                num, text = encode_value(s.value)
                rows.append((self._series_id(s.key), micros(s.time), num, text, QUALITY_CODE[s.quality],
                             micros(s.received) if s.received else None))
            db.executemany("INSERT INTO queue (series, t, num, text, quality, received) VALUES (?, ?, ?, ?, ?, ?)",
                           rows)
            self._enforce_bound()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._series.clear()
            self._keys.clear()
            for ident, submodel_id, p in db.execute("SELECT id, submodel_id, path FROM series"):
                key = SeriesKey(submodel_id, p)
                self._series[key], self._keys[ident] = ident, key
            raise

    def _enforce_bound(self) -> None:
        db = self.db
        first, last = db.execute("SELECT MIN(seq), MAX(seq) FROM queue").fetchone()
        if first is None or last - first + 1 <= self.config.max_samples:
            return
        cutoff = last - self.config.max_samples
        dropped = db.execute("DELETE FROM queue WHERE seq <= ?", (cutoff,)).rowcount
        db.execute("INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                   "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (dropped,))
        db.execute("UPDATE positions SET seq = ? WHERE seq < ?", (cutoff, cutoff))

    def read(self, sink: str, limit: int) -> Batch | None:
        position = self.position(sink)
        rows = self.db.execute(
            "SELECT seq, series, t, num, text, quality, received FROM queue WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, limit)).fetchall()
        if not rows:
            return None
        samples = [Sample(self._keys[series], from_micros(t), decode_value(num, text), QUALITY_OF_CODE[q],
                          from_micros(received) if received is not None else None)
                   for _seq, series, t, num, text, q, received in rows]
        return Batch(samples, rows[-1][0])

    def position(self, sink: str) -> int:
        row = self.db.execute("SELECT seq FROM positions WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise KeyError(f"unknown sink {sink!r}")
        return int(row[0])

    def ack(self, sink: str, seq: int) -> None:
        self.db.execute("UPDATE positions SET seq = MAX(seq, ?) WHERE sink = ?", (seq, sink))

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
