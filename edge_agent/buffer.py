"""Durable store-and-forward queue (SQLite, WAL): samples wait here until every sink has them.

One row per `append` (a batch): the samples' columns packed into blobs, so an append costs one
insert and one commit whatever its size. Samples are numbered in append order; a batch's `seq` is
the number of its last sample, and each sink's position is the number of the last sample it has.
`read` gives a sink whole batches after its position, up to a sample limit (at least one batch), and
`ack` moves the position to the read's `last_seq`, so a sink that is down keeps its backlog while the
others go on (at least once per sink). `append` commits before it returns, so a SIGKILL loses nothing
that was appended. The size is bounded in samples: past `max_samples` the oldest batches are dropped
(first those every sink has), and every sample dropped before some sink had it is counted (`dropped`),
never silent.

File format 4 (`PRAGMA user_version`): as 2, but a batch whose samples share one time (a Modbus block)
keeps that time once, one whose samples come in runs of one time (a poll of several blocks, as the mapper
makes it) keeps each run's time and count (format 3 had only the first), and a receive time equal to the
source time is not kept at all (SQLite's cost of an append grows with its bytes: 29 -> 13 per sample). A
format-2 or -3 file is read as it is; a format-1 file (one row per sample, from earlier versions) is
converted in place on open, positions and counters kept; a file of a newer format is refused.
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import Sample, SeriesKey
from aas_models.timeseries.sqlite import NO_TIME, Array, SampleColumns, SampleLists

FORMAT = 4
_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, submodel_id TEXT NOT NULL, path TEXT NOT NULL,
                                   UNIQUE (submodel_id, path));
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, count INTEGER NOT NULL, series BLOB NOT NULL,
                                    t BLOB NOT NULL, num BLOB NOT NULL, text TEXT, quality BLOB NOT NULL,
                                    received BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS positions (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_INSERT = "INSERT INTO batches (seq, count, series, t, num, text, quality, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SWAP = sys.byteorder != "little"  # blobs are little-endian on every machine
_I4, _I8, _F8 = np.dtype("<i4"), np.dtype("<i8"), np.dtype("<f8")
#: Starts a `t` blob of time runs (format 4); no source time is this one (NO_TIME, year -290,000). Receive
#: times are never stored as runs: for them this is "none received".
_RUNS = struct.pack("<q", NO_TIME)
_NAN = float("nan")


class BufferFileError(Exception):
    """The buffer file cannot be used as it is (e.g. written by a newer version)."""


_DTYPE: dict[str, np.dtype[Any]] = {"i": _I4, "q": _I8, "d": _F8}


def _pack(typecode: str, values: Sequence[Any] | Array) -> bytes:
    if isinstance(values, np.ndarray):  # columns read back from this buffer
        return values.astype(_DTYPE[typecode], copy=False).tobytes()
    packed = array(typecode, values)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _pack_times(values: list[int] | Array, runs: list[tuple[int, int]] | None = None) -> bytes:
    """Times: the one time they all share (a block), their runs of one time each (a poll of several blocks:
    `_RUNS`, the times, then the counts as int32), or one per sample."""
    if runs is not None and len(runs) > 1:
        times, counts = zip(*runs, strict=True)
        return _RUNS + _pack("q", times) + _pack("i", counts)
    if isinstance(values, np.ndarray):
        shared = bool(values.size) and bool((values == values[0]).all())
    else:
        shared = values[-1] == values[0] and values.count(values[0]) == len(values)
    return _pack("q", values[:1] if shared else values)


def _times_array(blob: bytes, count: int, t: Array | None = None) -> Array:
    """Times as packed by `_pack_times`: source times (`t` None), which may come as runs, or receive times,
    which never do (one NO_TIME is "none received" there); an empty blob of those means they are `t`."""
    if not blob and t is not None:
        return t
    if t is None and blob[:8] == _RUNS:
        runs = (len(blob) - 8) // 12
        return np.repeat(np.frombuffer(blob, _I8, runs, 8), np.frombuffer(blob, _I4, runs, 8 + 8 * runs))
    values = np.frombuffer(blob, _I8)
    return np.full(count, values[0], _I8) if values.size == 1 else values


def _encode(columns: SampleColumns) -> tuple[bytes, bytes, bytes, str | None, bytes, bytes]:
    text = orjson.dumps(columns.text, option=orjson.OPT_NON_STR_KEYS).decode() if columns.text else None
    return (_pack("i", columns.series), _pack_times(columns.t, columns.t_runs), _pack("d", columns.num), text,
            columns.quality,
            b"" if columns.same_received() else _pack_times(columns.received))


class BufferConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Path("twinedge-data/agent-buffer.db")
    #: Bound on queued samples (13-30 bytes each on disk: 13 when a batch shares one time).
    max_samples: int = Field(default=5_000_000, ge=1000)
    #: What goes when full: the oldest samples (the newest data matters most for live twins).
    overflow: Literal["drop-oldest"] = "drop-oldest"


@dataclass(frozen=True)
class Batch:
    #: Whole appended batches, oldest first (a SampleColumns: sinks that take columns skip the objects).
    samples: Sequence[Sample]
    #: The number of the last sample: what `ack` takes.
    last_seq: int


class Buffer:
    def __init__(self, config: BufferConfig) -> None:
        self.config = config
        self._db: sqlite3.Connection | None = None
        self._series: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        #: Series id by id() of a key object seen before (the mapper hands out the same key objects):
        #: spares hashing the dataclass per sample. `_held` keeps those keys alive, so no id() is reused.
        self._by_object: dict[int, int] = {}
        self._held: dict[int, SeriesKey] = {}
        #: Number of the last sample appended, and of the last one no longer queued (queued: floor < n <= last).
        self._last = 0
        self._floor = 0

    def open(self, sinks: Sequence[str]) -> None:
        path = str(self.config.path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._prepare(db, path)
        except BaseException:
            db.close()
            raise
        db.execute("BEGIN IMMEDIATE")
        for sink in sinks:
            db.execute("INSERT OR IGNORE INTO positions (sink, seq) VALUES (?, 0)", (sink,))
        # A sink removed from the config would otherwise hold every sample forever.
        marks = ",".join("?" * len(sinks))
        db.execute(f"DELETE FROM positions WHERE sink NOT IN ({marks})", tuple(sinks))
        db.execute("COMMIT")
        self._db = db
        self._load_series()
        (last_batch,) = db.execute("SELECT MAX(seq) FROM batches").fetchone()
        (last_position,) = db.execute("SELECT MAX(seq) FROM positions").fetchone()
        self._last = max(last_batch or 0, last_position or 0)
        self._floor = self._oldest_floor()

    @staticmethod
    def _prepare(db: sqlite3.Connection, path: str) -> None:
        """Create the schema, or convert a format-1 file; refuse a newer format."""
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > FORMAT:
            raise BufferFileError(
                f"buffer {path} has format {version}, newer than this agent's ({FORMAT}): run the newer agent "
                "until its sinks have everything (depth 0), or move the file away to start an empty buffer "
                "(the samples still in it are then lost)")
        if version == FORMAT:
            return
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if "queue" in tables:
                _convert_format_1(db)
            db.execute(f"PRAGMA user_version = {FORMAT}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _load_series(self) -> None:
        self._series, self._keys = {}, {}
        self._by_object.clear()
        self._held.clear()
        for ident, submodel_id, p in self.db.execute("SELECT id, submodel_id, path FROM series"):
            key = SeriesKey(submodel_id, p)
            self._series[key], self._keys[ident] = ident, key

    def _oldest_floor(self) -> int:
        row = self.db.execute("SELECT seq - count FROM batches ORDER BY seq LIMIT 1").fetchone()
        return self._last if row is None else int(row[0])

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
        """Id of a key object, creating the series if new (inside the append's transaction)."""
        ident = self._series.get(key)
        if ident is None:
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            assert cur.lastrowid is not None
            ident = cur.lastrowid
            self._series[key], self._keys[ident] = ident, key
        if len(self._by_object) > 1_000_000:
            self._by_object.clear()
            self._held.clear()
        self._by_object[id(key)] = ident
        self._held[id(key)] = key
        return ident

    def append(self, samples: Sequence[Sample]) -> None:
        """Queue `samples` as one batch, committed before this returns."""
        if not samples:
            return
        if len(samples) > self.config.max_samples:  # the bound holds even for one huge batch
            excess = len(samples) - self.config.max_samples
            samples = samples[excess:]
        else:
            excess = 0
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            by_object = self._by_object
            try:
                columns = SampleColumns.of(samples, by_object, self._keys)
            except KeyError:  # a key object not seen before
                keys = samples.keys if isinstance(samples, SampleLists) else list(map(_key, samples))
                for key in {id(k): k for k in keys if id(k) not in by_object}.values():
                    self._series_id(key)
                columns = SampleColumns.of(samples, by_object, self._keys)
            last = self._last + excess + len(samples)
            db.execute(_INSERT, (last, len(samples), *_encode(columns)))
            floor = self._floor
            if excess:
                floor = self._drop_before(last - len(samples), excess)
            if last - floor > self.config.max_samples:
                floor = self._enforce_bound(last, floor)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._load_series()  # ids created in the rolled-back transaction are gone
            raise
        self._last, self._floor = last, floor

    def _drop_before(self, cutoff: int, uncounted: int = 0) -> int:
        """Drop every batch up to sample `cutoff`; count what some sink did not have yet, plus `uncounted`
        samples that never got a number queued. Returns the new floor."""
        db = self.db
        (lowest,) = db.execute("SELECT MIN(seq) FROM positions").fetchone()
        (lost,) = db.execute("SELECT COALESCE(SUM(count), 0) FROM batches WHERE seq <= ? AND seq > ?",
                             (cutoff, lowest if lowest is not None else cutoff)).fetchone()
        db.execute("DELETE FROM batches WHERE seq <= ?", (cutoff,))
        if lost + uncounted:
            db.execute("INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (lost + uncounted,))
        db.execute("UPDATE positions SET seq = ? WHERE seq < ?", (cutoff, cutoff))
        return cutoff

    def _enforce_bound(self, last: int, floor: int) -> int:
        """Drops the oldest batches until at most `max_samples` are queued; returns the new floor."""
        excess = last - floor - self.config.max_samples
        cutoff = floor
        rows = self.db.execute("SELECT seq, count FROM batches ORDER BY seq")
        for seq, count in rows:
            if excess <= 0:
                break
            cutoff, excess = seq, excess - count
        rows.close()
        return self._drop_before(cutoff)

    def read(self, sink: str, limit: int) -> Batch | None:
        """Whole batches after the sink's position: as many as fit in `limit` samples, at least one. The
        columns are numpy arrays over the blobs, not lists: the store writes them as they are."""
        position = self.position(sink)
        series: list[Array] = []
        t: list[Array] = []
        num: list[Array] = []
        text: dict[int, str] = {}
        quality = bytearray()
        received: list[Array] = []
        same_received = True
        count_read = 0
        last_seq = position
        rows = self.db.execute("SELECT seq, count, series, t, num, text, quality, received FROM batches "
                               "WHERE seq > ? ORDER BY seq", (position,))
        for seq, count, b_series, b_t, b_num, b_text, b_quality, b_received in rows:
            if count_read and count_read + count > limit:
                break
            if b_text is not None:
                text.update((int(i) + count_read, tag) for i, tag in orjson.loads(b_text).items())
            series.append(np.frombuffer(b_series, _I4))
            times = _times_array(b_t, count)
            t.append(times)
            num.append(np.frombuffer(b_num, _F8))
            quality += b_quality
            same_received = same_received and not b_received
            received.append(_times_array(b_received, count, times))
            count_read += count
            last_seq = seq
        rows.close()
        if not count_read:
            return None
        t_all = np.concatenate(t)
        return Batch(SampleColumns(np.concatenate(series), self._keys, t_all, np.concatenate(num), text,
                                   bytes(quality), t_all if same_received else np.concatenate(received)), last_seq)

    def position(self, sink: str) -> int:
        row = self.db.execute("SELECT seq FROM positions WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise KeyError(f"unknown sink {sink!r}")
        return int(row[0])

    def ack(self, sink: str, seq: int) -> None:
        self.db.execute("UPDATE positions SET seq = MAX(seq, ?) WHERE sink = ?", (seq, sink))

    def compact(self) -> int:
        """Delete what every sink has; returns how many samples went."""
        db = self.db
        (lowest,) = db.execute("SELECT MIN(seq) FROM positions").fetchone()
        if lowest is None or lowest <= self._floor:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            (count,) = db.execute("SELECT COALESCE(SUM(count), 0) FROM batches WHERE seq <= ?", (lowest,)).fetchone()
            db.execute("DELETE FROM batches WHERE seq <= ?", (lowest,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._floor = self._oldest_floor()
        return int(count)

    def depth(self, sink: str) -> int:
        """Samples queued that `sink` does not have yet."""
        return self._last - max(self.position(sink), self._floor)

    def dropped(self) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0


def _key(sample: Sample) -> SeriesKey:
    return sample.key


def _convert_format_1(db: sqlite3.Connection, size: int = 1000) -> None:
    """Format 1 kept one row per sample in `queue`, its seq numbering samples as format 2 does: the rows
    become batches of at most `size` that end at every sink's position, so positions carry over as they are."""
    cuts = {seq for (seq,) in db.execute("SELECT seq FROM positions")}
    rows = db.execute("SELECT seq, series, t, num, text, quality, received FROM queue ORDER BY seq")
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:
        seqs, series, t, num, text, quality, received = zip(*chunk, strict=True)
        columns = SampleColumns(list(series), {}, list(t), [_NAN if n is None else n for n in num],
                                {i: tag for i, tag in enumerate(text) if tag is not None}, bytes(quality),
                                [NO_TIME if r is None else r for r in received])
        db.execute(_INSERT, (seqs[-1], len(chunk), *_encode(columns)))
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= size or row[0] in cuts:
            flush()
    if chunk:
        flush()
    db.execute("DROP TABLE queue")
