"""Embedded time-series store: one SQLite file (WAL), samples packed per series in time-ordered chunks.

A write appends the batch as it comes, as packed columns (one row of `pending`, a few blobs): no work per sample
beyond packing arrays. Pending batches are folded in bulk into `chunks`, one row per series holding the
fold's samples of that series sorted by time (packed arrays of times, values, qualities, receive times), once
`pending` holds some dozens of samples per series, after `FOLD_SECONDS`, when writes pause, and on close.
One SQLite row per sample, as this store had before, cost 2-3 us per sample in B-tree inserts and page writes
with 10,000 interleaved series; a chunk costs a row per series per fold.

The identity of a sample is (series, time): a rewrite wins over what was stored, folded or not, and a fold that
overlaps a series' stored chunks (re-sent samples after an agent restart) merges them, so every (series,
time) is stored once. Chunks of one series never overlap, so a range read is one index walk. Times are integer
microseconds (UTC). The agent writes and the server reads the same file, from different processes; readers
see pending batches too.

Folds run in the store's own thread (numpy sorts and SQLite inserts, most of it without the GIL), so they do
not stall the writer's event loop. `SampleColumns` is the agent buffer's read-back form: the store writes it
from its columns, with no object per sample. A file of the earlier one-row-per-sample format is converted when
it is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, overload

import numpy as np
import orjson

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

#: The packed columns of a run of samples, in chunks and in pending batches alike.
_PACKED = "t BLOB NOT NULL, num BLOB NOT NULL, quality BLOB, received BLOB, kind BLOB, strings TEXT"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    submodel_id TEXT NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (submodel_id, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, series INTEGER NOT NULL, t0 INTEGER NOT NULL, t1 INTEGER NOT NULL, n INTEGER NOT NULL,
    {_PACKED}
);
CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_series ON chunks (series, t0);
CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY, series BLOB NOT NULL, {_PACKED});
"""
#: `PRAGMA user_version` of this layout (0: the earlier one row per sample in `samples` and `recent`).
FORMAT = 2
#: Fold `pending` into `chunks` at this many samples per series (within the bounds below) ...
FOLD_ROWS_PER_SERIES = 16
FOLD_MIN_ROWS, FOLD_MAX_ROWS = 20_000, 500_000
#: ... or when its oldest batch is this old (readers decode all of `pending`), or once no write came for
#: FOLD_IDLE seconds (a stream that stopped leaves nothing behind in `pending`).
FOLD_SECONDS = 10.0
FOLD_IDLE = 1.0
#: Once a series' chunks written since its last compaction hold this many samples, they are joined into one:
#: with many series a fold writes a few dozen samples per series, and a long read would walk (and page in)
#: thousands of such chunks.
COMPACT_SAMPLES = 4096
#: After a fold, series are compacted (the largest tails first) until they hold twice as many samples as the
#: fold wrote (joining costs about 0.6 us per sample against about 1 us to fold it) ...
COMPACT_BUDGET = 2
#: ... but only while folds and compactions took less than this share of the time since the previous fold:
#: writes wait for both, so under a stream that saturates the store its time goes to the stream, and old chunks
#: are joined once there is slack (skipping up to half of the folds, it still keeps up).
COMPACT_BUSY_SHARE = 0.25
#: Column encodings: little-endian whatever the machine, so a file moves between machines.
_I8, _F8 = np.dtype("<i8"), np.dtype("<f8")
_CHUNK_COLUMNS = "t, num, quality, received, kind, strings"
_INSERT_PENDING = "INSERT INTO pending (series, t, num, quality, received, kind, strings) VALUES (?, ?, ?, ?, ?, ?, ?)"
_PENDING = "SELECT series, t, num, quality, received, kind, strings FROM pending ORDER BY id"
QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
QUALITY_OF_CODE = {v: k for k, v in QUALITY_CODE.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Array = np.ndarray[Any, Any]


def micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds  # a third of // timedelta


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


#: `received` of a sample that has none, in SampleColumns.
NO_TIME = -(2**63)
_NAN = float("nan")
_KEY, _TIME, _VALUE = attrgetter("key"), attrgetter("time"), attrgetter("value")
_QUALITY, _RECEIVED = attrgetter("quality"), attrgetter("received")


def encode_values(values: Sequence[Value]) -> tuple[list[float], dict[int, str]]:
    """Values as numbers (NaN: no number) and, by position, the text tags of those that are not floats."""
    types = set(map(type, values))
    if types <= {float}:  # the common case: C loops only
        return list(values), {}  # type: ignore[arg-type]
    if types == {int}:  # counters, JSON integers: as encode_value does, without a call per value
        return list(map(float, values)), dict.fromkeys(range(len(values)), "int")  # type: ignore[arg-type]
    nums: list[float] = []
    text: dict[int, str] = {}
    for i, value in enumerate(values):
        num, tag = encode_value(value)
        nums.append(_NAN if num is None else num)
        if tag is not None:
            text[i] = tag
    return nums, text


def micros_column(moments: Sequence[datetime | None]) -> list[int]:
    """Microseconds of each moment (None: NO_TIME); samples of one poll share datetime objects, so each
    distinct object is converted once."""
    first = moments[0] if moments else None
    if first is not None and moments[-1] is first and moments.count(first) == len(moments):  # one poll's time
        return [micros(first)] * len(moments)
    idents = list(map(id, moments))
    distinct = dict(zip(idents, moments, strict=True))
    converted = {ident: NO_TIME if moment is None else micros(moment) for ident, moment in distinct.items()}
    return list(map(converted.__getitem__, idents))


class LazySamples(Sequence[Sample]):
    """Samples held in a cheaper form than one frozen Sample object each (building those costs more than
    mapping, buffering or storing a sample); the objects are built once, on first use."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: list[Sample] | None = None

    @abstractmethod
    def _build(self) -> list[Sample]: ...

    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = self._build()
        return self._samples

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        return self.samples()[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self.samples() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class SampleLists(LazySamples):
    """Samples as one list per field, e.g. as the agent's mapper makes them."""

    __slots__ = ("keys", "qualities", "received", "runs", "times", "values")

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[SeriesKey] = []
        self.times: list[datetime] = []
        self.values: list[Value] = []
        self.qualities: list[Quality] = []
        self.received: list[datetime | None] = []
        #: `times` as runs of one time object each (a batch's samples), when whoever fills the lists adds
        #: them too: trusted only while their counts add up to len(times), so a list filled without them
        #: is simply converted sample by sample.
        self.runs: list[tuple[datetime, int]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def _build(self) -> list[Sample]:
        return list(map(Sample, self.keys, self.times, self.values, self.qualities, self.received))


class SampleColumns(LazySamples):
    """Samples as columns in the store's encoding: what the agent's buffer reads back. The store writes
    them without building objects.

    `series` holds ids that `keys` resolves; `num` is NaN where a sample has no number; `text` holds,
    by position, the tags `encode_value` gives to values that are not floats; `quality` holds codes. The
    number columns are lists as a writer makes them, or numpy arrays as the buffer reads its blobs back
    (no Python object per sample on the way from the buffer's file to the store's)."""

    __slots__ = ("keys", "num", "quality", "received", "series", "t", "t_runs", "text")

    def __init__(self, series: list[int] | Array, keys: Mapping[int, SeriesKey], t: list[int] | Array,
                 num: list[float] | Array, text: Mapping[int, str], quality: bytes,
                 received: list[int] | Array, t_runs: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.series, self.keys, self.t, self.num, self.text = series, keys, t, num, text
        self.quality, self.received = quality, received
        #: `t` as (time, count) runs, when known (a mapper's batches): the agent buffer stores those.
        self.t_runs = t_runs

    @classmethod
    def of(cls, samples: Sequence[Sample], series_id: Mapping[int, int],
           keys: Mapping[int, SeriesKey]) -> SampleColumns:
        """Columns of `samples`; `series_id` gives the id of each key object by id() (KeyError if one is not
        there, raised before any other work)."""
        if isinstance(samples, SampleColumns) and samples.keys is keys:  # its ids are this writer's own
            return samples
        runs = None
        if isinstance(samples, SampleLists):
            objects, times, values = samples.keys, samples.times, samples.values
            qualities, received = samples.qualities, samples.received
            if samples.runs and sum(map(itemgetter(1), samples.runs)) == len(times):
                runs = [(micros(moment), count) for moment, count in samples.runs]
        else:
            objects, times, values = list(map(_KEY, samples)), list(map(_TIME, samples)), list(map(_VALUE, samples))
            qualities, received = list(map(_QUALITY, samples)), list(map(_RECEIVED, samples))
        series = list(map(series_id.__getitem__, map(id, objects)))
        num, text = encode_values(values)
        t = micros_column(times) if runs is None else list(chain.from_iterable(repeat(*run) for run in runs))
        # Devices without timestamps: received is the source time (the same objects, so this is quick).
        r = t if received == times else micros_column(received)
        # All good (most batches): no enum hashing per sample.
        quality = (bytes(len(qualities)) if qualities.count(Quality.GOOD) == len(qualities)
                   else bytes(map(QUALITY_CODE.__getitem__, qualities)))
        return cls(series, keys, t, num, text, quality, r, runs)

    def __len__(self) -> int:
        return len(self.t)

    def _build(self) -> list[Sample]:
        """As Sample objects (UTC times; NaN reads back as no value, as from the store)."""
        times: dict[int, datetime] = {}

        def moment(value: int) -> datetime:
            found = times.get(value)
            if found is None:
                found = times[value] = from_micros(value)
            return found

        keys, text, qualities = self.keys, self.text, QUALITY_OF_CODE
        return [
            Sample(keys[series], moment(t),
                   decode_value(None if num != num else num, text.get(i)) if text or num != num else num,
                   qualities[q], None if r == NO_TIME else moment(r))
            for i, (series, t, num, q, r) in enumerate(zip(_listed(self.series), _listed(self.t), _listed(self.num),
                                                          self.quality, _listed(self.received), strict=True))]

    def integers(self) -> bool:
        """All values are integers (each has the text tag "int"): JSON counters, integer registers."""
        text = self.text
        return len(text) == len(self) and set(text.values()) == {"int"}

    def same_received(self) -> bool:
        """Every sample was received at its source time (devices without timestamps, e.g. Modbus)."""
        received, t = self.received, self.t
        if received is t:
            return True
        if isinstance(received, np.ndarray) or isinstance(t, np.ndarray):
            return bool(np.array_equal(received, t))
        return received == t


def _listed(column: Sequence[Any] | Array) -> Sequence[Any]:
    """A column as Python numbers (iterating an array would give numpy scalars)."""
    return column.tolist() if isinstance(column, np.ndarray) else column


#: Value kinds, one byte per sample: a float (or no value), an integer, a boolean (both kept in `num`), a string.
FLOAT, INT, BOOL, STRING = 0, 1, 2, 3
_KIND_OF_TAG = {"int": INT, "bool": BOOL}


@dataclass
class _Cols:
    """Samples as arrays: times (int64 us), values (float64, NaN: no number), quality codes (uint8), receive
    times (int64, NO_TIME: none), value kinds (uint8) and the strings (object array, None where not a string;
    None if there are none)."""

    t: Array
    num: Array
    quality: Array
    received: Array
    kind: Array
    strings: Array | None

    def __len__(self) -> int:
        return int(self.t.size)

    def take(self, index: Array | slice) -> _Cols:
        return _Cols(self.t[index], self.num[index], self.quality[index], self.received[index], self.kind[index],
                     None if self.strings is None else self.strings[index])

    @staticmethod
    def decode(t: bytes, num: bytes, quality: bytes | None, received: bytes | None, kind: bytes | None,
               strings: str | None) -> _Cols:
        times = np.frombuffer(t, _I8)
        n = times.size
        text = None
        if strings:
            text = np.full(n, None, dtype=object)
            for i, value in orjson.loads(strings).items():
                text[int(i)] = value
        return _Cols(times, np.frombuffer(num, _F8),
                     np.zeros(n, np.uint8) if quality is None else np.frombuffer(quality, np.uint8),
                     times if received is None else np.frombuffer(received, _I8),
                     np.zeros(n, np.uint8) if kind is None else np.frombuffer(kind, np.uint8), text)

    @staticmethod
    def of_columns(columns: SampleColumns, series: Sequence[int] | Array) -> tuple[Array, _Cols]:
        """Series ids and samples of a writer's columns (text tags become kinds and strings)."""
        n = len(columns)
        kind = np.zeros(n, np.uint8)
        strings = None
        if columns.integers():
            kind[:] = INT
        elif columns.text:
            for i, tag in columns.text.items():
                if tag in _KIND_OF_TAG:
                    kind[i] = _KIND_OF_TAG[tag]
                else:
                    if strings is None:
                        strings = np.full(n, None, dtype=object)
                    kind[i], strings[i] = STRING, tag[2:]
        t = np.asarray(columns.t, _I8)  # arrays (from the buffer) as they are
        received = t if columns.same_received() else np.asarray(columns.received, _I8)
        return np.asarray(series, _I8), _Cols(t, np.asarray(columns.num, _F8),
                                              np.frombuffer(columns.quality, np.uint8), received, kind, strings)

    def encode(self) -> tuple[bytes, bytes, bytes | None, bytes | None, bytes | None, str | None]:
        """(t, num, quality, received, kind, strings) as stored: quality None if all good, received None if
        it is t, kind None if all floats, strings None if there are none."""
        quality = self.quality.tobytes() if self.quality.any() else None
        received = None if np.array_equal(self.received, self.t) else self.received.astype(_I8).tobytes()
        kind = self.kind.tobytes() if self.kind.any() else None
        strings = None
        if self.strings is not None:
            marked = {str(i): v for i, v in enumerate(self.strings.tolist()) if v is not None}
            strings = orjson.dumps(marked).decode() if marked else None
        return self.t.astype(_I8).tobytes(), self.num.astype(_F8).tobytes(), quality, received, kind, strings

    def values(self) -> list[Value]:
        """The samples' values as written (numbers, integers, booleans, strings; None for none)."""
        out: list[Value] = [None if v != v else v for v in self.num.tolist()]
        if self.kind.any():
            for i in np.flatnonzero(self.kind).tolist():
                k = int(self.kind[i])
                if k == STRING:
                    out[i] = None if self.strings is None else self.strings[i]
                elif out[i] is not None:
                    out[i] = int(out[i]) if k == INT else bool(out[i])  # type: ignore[arg-type]
        return out


def _concat(parts: Sequence[_Cols]) -> _Cols:
    any_strings = any(p.strings is not None for p in parts)
    return _Cols(np.concatenate([p.t for p in parts]), np.concatenate([p.num for p in parts]),
                 np.concatenate([p.quality for p in parts]), np.concatenate([p.received for p in parts]),
                 np.concatenate([p.kind for p in parts]),
                 np.concatenate([p.strings if p.strings is not None else np.full(len(p), None, dtype=object)
                                 for p in parts]) if any_strings else None)


_EMPTY = _Cols(np.zeros(0, _I8), np.zeros(0, _F8), np.zeros(0, np.uint8), np.zeros(0, _I8), np.zeros(0, np.uint8),
               None)


def _merged(parts: Sequence[_Cols]) -> _Cols:
    """One time-ordered run of `parts`; of samples with the same time the one in the latest part wins."""
    if len(parts) == 1 and len(parts[0]) and bool(np.all(np.diff(parts[0].t) > 0)):
        return parts[0]
    cols = _concat(parts)
    order = np.argsort(cols.t, kind="stable")  # arrival order within a time: the last is the latest
    t = cols.t[order]
    last = np.ones(t.size, dtype=bool)
    last[:-1] = t[1:] != t[:-1]
    return cols.take(order[last])


def _pending_cols(rows: Sequence[tuple[Any, ...]]) -> tuple[Array, _Cols]:
    """Series ids and samples of pending batches (rows of series, t, num, quality, received, kind, strings)."""
    if not rows:
        return np.zeros(0, _I8), _EMPTY
    series = np.concatenate([np.frombuffer(row[0], _I8) for row in rows])
    return series, _concat([_Cols.decode(*row[1:]) for row in rows])


#: One chunk per row of the JSON `index` ([series, t0, t1, first sample, samples, any not good, any own receive
#: time, any not a float]), cut out of the fold's packed columns.
_INSERT_CUT = f"""INSERT INTO chunks (series, t0, t1, n, {_CHUNK_COLUMNS})
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[4]'),
       substr(:t, json_extract(value, '$[3]') * 8 + 1, json_extract(value, '$[4]') * 8),
       substr(:num, json_extract(value, '$[3]') * 8 + 1, json_extract(value, '$[4]') * 8),
       CASE WHEN json_extract(value, '$[5]') THEN substr(:q, json_extract(value, '$[3]') + 1,
                                                         json_extract(value, '$[4]')) END,
       CASE WHEN json_extract(value, '$[6]') THEN substr(:r, json_extract(value, '$[3]') * 8 + 1,
                                                         json_extract(value, '$[4]') * 8) END,
       CASE WHEN json_extract(value, '$[7]') THEN substr(:k, json_extract(value, '$[3]') + 1,
                                                         json_extract(value, '$[4]')) END,
       NULL
FROM json_each(:index)"""


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: committed at the end of the block, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _blob(values: Array, dtype: Any) -> memoryview:
    """The array's bytes in the stored encoding, without a copy where it is one already."""
    return np.ascontiguousarray(values, dtype).data.cast("B")


def _chunk_ends(db: sqlite3.Connection, largest: int) -> Array:
    """By series id (up to at least `largest`), the last time in its chunks; NO_TIME for none."""
    rows = db.execute("SELECT series, t1 FROM chunks c WHERE t0 = (SELECT MAX(t0) FROM chunks WHERE series = c.series)"
                      ).fetchall()
    ends = np.full(max([largest, *(s for s, _ in rows)]) + 1024, NO_TIME, dtype=np.int64)
    for series, t1 in rows:
        ends[series] = t1
    return ends


def _insert_chunk(db: sqlite3.Connection, series: int, cols: _Cols) -> None:
    db.execute(f"INSERT INTO chunks (series, t0, t1, n, {_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (series, int(cols.t[0]), int(cols.t[-1]), len(cols), *cols.encode()))


def _insert_joined(db: sqlite3.Connection, series: int, rows: Sequence[tuple[Any, ...]]) -> None:
    """One chunk of consecutive chunks' rows (t0, t, num, quality, received, kind, strings). When all their
    samples are good floats with no receive time of their own (the usual case), their bytes are joined as
    they are."""
    if any(row[3] is not None or row[4] is not None or row[5] is not None or row[6] for row in rows):
        _insert_chunk(db, series, _concat([_Cols.decode(*row[1:]) for row in rows]))
        return
    t = b"".join(row[1] for row in rows)
    db.execute(f"INSERT INTO chunks (series, t0, t1, n, {_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, "
               "NULL)", (series, rows[0][0], int.from_bytes(t[-8:], "little", signed=True), len(t) // 8, t,
                         b"".join(row[2] for row in rows)))


def _chunks_in(db: sqlite3.Connection, series: int, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """Rows (t0, t, num, quality, received, kind, strings) of the series' chunks holding times in [lo, hi), oldest
    first: from the chunk that starts at or before `lo` (chunks of a series do not overlap), one index walk."""
    return db.execute(
        f"SELECT t0, {_CHUNK_COLUMNS} FROM chunks WHERE series = :s AND t0 < :hi AND t0 >= COALESCE("
        "(SELECT MAX(t0) FROM chunks WHERE series = :s AND t0 <= :lo), :lo) ORDER BY t0",
        {"s": series, "lo": lo, "hi": hi}).fetchall()


#: Rows of the earlier format converted at once.
CONVERT_ROWS = 65_536


def _convert_rows(db: sqlite3.Connection) -> None:
    """The earlier format (one row per sample in `samples`, and `recent`) into chunks, in one transaction: a
    series at a time and at most CONVERT_ROWS rows at once (an index walk each), so memory stays small."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("samples", "recent"):
        if table not in tables:
            continue
        order = "t" if table == "samples" else "t, rowid"
        for (series,) in db.execute(f"SELECT DISTINCT series FROM {table}").fetchall():
            rows = db.execute(f"SELECT t, num, text, quality, received FROM {table} WHERE series = ? ORDER BY {order}",
                              (series,))
            while part := rows.fetchmany(CONVERT_ROWS):
                columns = SampleColumns([series] * len(part), {}, [r[0] for r in part],
                                        [_NAN if r[1] is None else r[1] for r in part],
                                        {i: r[2] for i, r in enumerate(part) if r[2] is not None},
                                        bytes(r[3] for r in part), [NO_TIME if r[4] is None else r[4] for r in part])
                merged = _merged([_Cols.of_columns(columns, columns.series)[1]])
                first = int(merged.t[0])
                stored = [row for row in _chunks_in(db, series, first, int(merged.t[-1]) + 1)
                          if int(np.frombuffer(row[1], _I8)[-1]) >= first]  # only those it overlaps
                if stored:  # `recent` after `samples`: its rows are the later writes
                    merged = _merged([*(_Cols.decode(*row[1:]) for row in stored), merged])
                    db.executemany("DELETE FROM chunks WHERE series = ? AND t0 = ?",
                                   [(series, row[0]) for row in stored])
                _insert_chunk(db, series, merged)
        db.execute(f"DROP TABLE {table}")


def stored_count(path: Path | str) -> int:
    """How many samples a store file holds (folded or not); 0 if there is no store there yet."""
    if not Path(path).exists():
        return 0
    db = sqlite3.connect(path)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        count = 0
        if "chunks" in tables:
            count += int(db.execute("SELECT COALESCE(SUM(n), 0) FROM chunks").fetchone()[0])
        if "pending" in tables:  # re-sent samples are counted once they are folded
            count += int(db.execute("SELECT COALESCE(SUM(length(t) / 8), 0) FROM pending").fetchone()[0])
        for table in ("samples", "recent"):  # a file of the earlier format, not opened since
            if table in tables:
                count += int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        return count
    finally:
        db.close()


class SqliteTimeSeries(TimeSeriesStore):
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        #: Folds run in this thread: numpy sorts and SQLite statements, during which the GIL is mostly free, so
        #: the event loop goes on meanwhile.
        self._thread: ThreadPoolExecutor | None = None
        #: The fold in progress: every other use of the connection waits for it.
        self._folding: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._ids: dict[SeriesKey, int] = {}
        #: Series id by id() of a key object written before (writers pass the same key objects again):
        #: spares hashing the dataclass per sample. `_held` keeps those keys alive, so no id() is reused.
        self._by_object: dict[int, int] = {}
        self._held: dict[int, SeriesKey] = {}
        #: Store series id by the series id of the last SampleColumns' `keys` mapping (a writer's own ids,
        #: e.g. the agent buffer's): most batches need no lookup per series at all.
        self._foreign: tuple[Mapping[int, SeriesKey], dict[int, int], list[bool]] | None = None
        #: Samples in `pending`, and the monotonic time of the oldest.
        self._unfolded = 0
        self._since = 0.0
        #: By series id, the last time in its chunks (NO_TIME: none): a fold after it appends a chunk, one
        #: before it merges.
        self._ends: Array | None = None
        #: By series id, the samples in its chunks written since its last compaction, and the first time of
        #: those chunks (kept for this connection's own folds; started afresh when `_ends` is).
        self._tail: Array | None = None
        self._tail_from: Array | None = None
        #: `PRAGMA data_version` at the last fold: it changes when another connection commits.
        self._version: int | None = None
        #: Only a writer folds on close (a reader, e.g. the twin server, never writes the file).
        self._wrote = False
        self._idle: asyncio.TimerHandle | None = None
        #: Monotonic start of the last fold, and the seconds the compaction after it took.
        self._fold_started = 0.0
        self._compacting = 0.0

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if db.execute("PRAGMA user_version").fetchone()[0] < FORMAT:
                _convert_rows(db)
                db.execute(f"PRAGMA user_version = {FORMAT}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            db.close()
            raise
        self._db = db
        (self._unfolded,) = db.execute("SELECT COALESCE(SUM(length(t) / 8), 0) FROM pending").fetchone()
        self._since = time.monotonic()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="timeseries-fold")

    async def close(self) -> None:
        db, thread = self._db, self._thread
        if db is None or thread is None:
            return
        if self._idle is not None:
            self._idle.cancel()
        async with self._lock:
            with contextlib.suppress(StoreError):
                await self._settle()
            self._db = self._thread = None
            try:
                await asyncio.get_running_loop().run_in_executor(thread, self._close, db)
            finally:
                thread.shutdown(wait=False)

    def _close(self, db: sqlite3.Connection) -> None:
        try:
            if self._unfolded and self._wrote:
                self._fold(db)
        except sqlite3.Error:
            pass  # folded by the next writer to open the file; readers see `pending` meanwhile
        finally:
            db.close()

    def _fold(self, db: sqlite3.Connection) -> None:
        """Every pending batch into chunks, in one transaction (in the store's thread), then the compaction
        that is due, in a second one."""
        started = time.monotonic()
        since_last, self._fold_started = started - self._fold_started, started
        try:
            with _transaction(db):
                rows = db.execute(f"SELECT id, {_PENDING.removeprefix('SELECT ')}").fetchall()
                folded = self._fold_rows(db, rows) if rows else 0
        except BaseException:
            self._ends = None  # may hold chunks that were rolled back: read again
            raise
        self._unfolded = 0
        folded_at = time.monotonic()
        busy, self._compacting = folded_at - started + self._compacting, 0.0
        if busy < COMPACT_BUSY_SHARE * since_last:
            with contextlib.suppress(sqlite3.Error):  # the fold is committed; a failed compaction is retried later
                self._compact(db, COMPACT_BUDGET * folded)
            self._compacting = time.monotonic() - folded_at

    def _compact(self, db: sqlite3.Connection, budget: int) -> None:
        """Join the chunks of the series whose tail of folded chunks reached COMPACT_SAMPLES into one chunk
        each, about `budget` samples in all. A series' chunks from its tail's first time on are a run of its
        newest chunks (chunks of a series do not overlap), so the joined chunk overlaps none either."""
        tail, since = self._tail, self._tail_from
        if tail is None or since is None:
            return
        due = np.flatnonzero(tail >= COMPACT_SAMPLES)
        if not due.size or budget <= 0:
            return
        due = due[np.argsort(-tail[due], kind="stable")]
        due = due[:int(np.searchsorted(np.cumsum(tail[due]), budget)) + 1]
        with _transaction(db):
            for series, first in zip(due.tolist(), since[due].tolist(), strict=True):
                rows = db.execute(f"SELECT t0, {_CHUNK_COLUMNS} FROM chunks WHERE series = ? AND t0 >= ? ORDER BY t0",
                                  (series, first)).fetchall()
                if len(rows) > 1:
                    db.execute("DELETE FROM chunks WHERE series = ? AND t0 >= ?", (series, first))
                    _insert_joined(db, series, rows)
        tail[due] = 0

    def _fold_rows(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
        """Pending batches into chunks; the number of samples folded. The common case, samples after all of
        their series' chunks, is a few numpy calls and ONE statement that cuts every series' chunk out of the
        fold's packed columns (Python work per series in this thread would take the GIL from the event loop at
        each of its socket calls)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:  # another connection wrote chunks since this one's last fold
            self._ends, self._version = None, version
        series, cols = _pending_cols([row[1:] for row in rows])
        if self._ends is None:
            self._tail = self._tail_from = None
        if self._ends is None or self._ends.size <= series.max():
            self._ends = _chunk_ends(db, int(series.max()))
        ends = self._ends
        tail, since = self._tail, self._tail_from
        if tail is None or since is None:
            tail, since = np.zeros(ends.size, np.int64), np.zeros(ends.size, np.int64)
        elif tail.size < ends.size:  # more series: the counts so far stay
            tail, since = (np.r_[a, np.zeros(ends.size - a.size, np.int64)] for a in (tail, since))
        self._tail, self._tail_from = tail, since
        order = np.lexsort((np.arange(series.size), cols.t, series))  # by series, time, then arrival
        by_series, by_time = series[order], cols.t[order]
        last = np.ones(series.size, dtype=bool)  # of equal (series, time) the last written wins
        last[:-1] = (by_series[1:] != by_series[:-1]) | (by_time[1:] != by_time[:-1])
        order = order[last]
        series, cols = series[order], cols.take(order)
        starts = np.r_[0, np.flatnonzero(np.diff(series)) + 1]
        stops = np.r_[starts[1:], series.size]
        ids, firsts, lasts = series[starts], cols.t[starts], cols.t[stops - 1]
        before = ends[ids]
        fresh = before < firsts
        kinds = np.maximum.reduceat(cols.kind, starts)
        fresh &= kinds != STRING  # strings: written one series at a time below
        index = np.column_stack([ids, firsts, lasts, starts, stops - starts, np.maximum.reduceat(cols.quality, starts),
                                 np.logical_or.reduceat(cols.received != cols.t, starts), kinds])[fresh]
        db.execute(_INSERT_CUT, {"index": orjson.dumps(index, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                                 "t": _blob(cols.t, _I8), "num": _blob(cols.num, _F8),
                                 "q": _blob(cols.quality, np.uint8), "r": _blob(cols.received, _I8),
                                 "k": _blob(cols.kind, np.uint8)})
        for k in np.flatnonzero(~fresh).tolist():  # re-sent or late samples: merge with the chunks they overlap
            ident, part = int(ids[k]), cols.take(slice(int(starts[k]), int(stops[k])))
            stored = _chunks_in(db, ident, int(firsts[k]), int(lasts[k]) + 1)
            merged = _merged([*(_Cols.decode(*row[1:]) for row in stored), part])
            db.executemany("DELETE FROM chunks WHERE series = ? AND t0 = ?", [(ident, row[0]) for row in stored])
            _insert_chunk(db, ident, merged)
        ends[ids] = np.maximum(before, lasts)
        appended, starting = ids[fresh], tail[ids[fresh]] == 0
        since[appended[starting]] = firsts[fresh][starting]
        tail[appended] += (stops - starts)[fresh]
        db.execute("DELETE FROM pending WHERE id <= ?", (rows[-1][0],))
        return int(series.size)

    async def _settle(self) -> None:
        """Wait for a fold in progress; its failure becomes this call's StoreError (the rows stay in `pending`)."""
        folding = self._folding
        if folding is None:
            return
        try:
            await asyncio.shield(folding)
        except sqlite3.Error as exc:
            raise StoreError(f"time-series store {self._path}: {exc}") from exc
        finally:
            if folding.done():
                self._folding = None

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
            if not self.db.in_transaction:  # the write commits it (all of a batch's new series at once)
                self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            row = (cur.lastrowid,)
        self._ids[key] = int(row[0])
        return int(row[0])

    def _forget_ids(self) -> None:
        self._ids.clear()
        self._by_object.clear()
        self._held.clear()
        self._foreign = None

    def _id_of(self, key: SeriesKey) -> int:
        """The series id of a key object, creating the series if new (in a transaction the write commits)."""
        known = self._by_object.get(id(key))
        if known is None:
            known = self._series_id(key, create=True)
            assert known is not None
            if len(self._by_object) > 1_000_000:
                self._by_object.clear()
                self._held.clear()
            self._by_object[id(key)] = known
            self._held[id(key)] = key
        return known

    async def write(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        async with self._lock:
            await self._settle()
            db = self.db
            try:
                try:
                    columns, ids = self._columns(samples)  # new series: in a transaction of their own
                    if db.in_transaction:
                        db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    self._forget_ids()  # ids created in the rolled-back transaction are gone
                    raise
                series, cols = _Cols.of_columns(
                    columns, columns.series if ids is None else list(map(ids.__getitem__, _listed(columns.series))))
                row = (series.tobytes(), *cols.encode())
                # SQLite's part (the blobs into the WAL, the commit; one statement, so atomic) runs without the
                # GIL in the store's thread, and the event loop goes on meanwhile. A cancelled write still waits
                # for it: the lock keeps the connection to one thread at a time.
                pending = asyncio.get_running_loop().run_in_executor(self._thread, db.execute, _INSERT_PENDING, row)
                try:
                    await asyncio.shield(pending)
                except asyncio.CancelledError:
                    await asyncio.wait([pending])
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"time-series store {self._path}: {exc}") from exc
            if not self._unfolded:
                self._since = time.monotonic()
            self._unfolded += len(columns)
            self._wrote = True
            due = min(max(FOLD_ROWS_PER_SERIES * len(self._ids), FOLD_MIN_ROWS), FOLD_MAX_ROWS)
            if self._unfolded >= due or time.monotonic() - self._since >= FOLD_SECONDS:
                self._start_fold()
            else:
                if self._idle is not None:
                    self._idle.cancel()
                self._idle = asyncio.get_running_loop().call_later(FOLD_IDLE, self._fold_if_idle)

    def _start_fold(self) -> None:
        folding = self._folding
        if folding is not None:
            if not folding.done():
                return
            if not folding.cancelled():
                folding.exception()  # a failed fold left its rows in `pending`: this one retries them
        if self._thread is not None and self._db is not None and self._unfolded:
            self._folding = asyncio.get_running_loop().run_in_executor(self._thread, self._fold, self._db)

    def _fold_if_idle(self) -> None:
        self._idle = None
        if not self._lock.locked():  # else a write or read is under way: the next write decides
            self._start_fold()

    def _columns(self, samples: Sequence[Sample]) -> tuple[SampleColumns, dict[int, int] | None]:
        """`samples` as columns, and the store's series id of each of their series ids (None: the same)."""
        if isinstance(samples, SampleColumns):
            keys = samples.keys
            if self._foreign is None or self._foreign[0] is not keys:
                self._foreign = (keys, {}, [True])  # holds `keys`, so its id() stays its own
            ids, same = self._foreign[1], self._foreign[2]
            # `keys` holds only series the writer has written (the buffer's), so once all are mapped, so is
            # every series of the batch, without a look at each sample.
            for series in (keys.keys() - ids.keys() if len(ids) != len(keys) else ()):
                ids[series] = ident = self._id_of(keys[series])
                same[0] = same[0] and ident == series
            # The writer numbers its series as this store does (the agent's buffer, usually): no mapping.
            return samples, None if same[0] else ids
        objects = list(map(_KEY, samples))
        for key in dict(zip(map(id, objects), objects, strict=True)).values():
            self._id_of(key)
        return SampleColumns.of(samples, self._by_object, {}), None

    async def read(self, key: SeriesKey, start: datetime | None = None, end: datetime | None = None,
                   limit: int = 10_000, every: timedelta | None = None) -> list[Point]:
        async with self._lock:
            await self._settle()
            return self._read(key, start, end, limit, every)

    def _stored(self, series: int, lo: int, hi: int, newest: int | None = None) -> _Cols:
        """The series' samples with lo <= t < hi, chunks and pending batches merged, in time order; with
        `newest`, at least the newest that many of them (fewer chunks read on a long history)."""
        rows = self.db.execute(_PENDING).fetchall()
        recent: list[_Cols] = []
        if rows:
            ids, cols = _pending_cols(rows)
            recent = [cols.take(ids == series)]
        if newest is None:
            chunks = _chunks_in(self.db, series, lo, hi)
        else:  # newest first, until enough (a pending sample may replace one of them, so count those too)
            wanted = newest + sum(map(len, recent))
            chunks, count = [], 0
            for row in self.db.execute(
                    f"SELECT t0, {_CHUNK_COLUMNS} FROM chunks WHERE series = :s AND t0 < :hi AND t0 >= COALESCE("
                    "(SELECT MAX(t0) FROM chunks WHERE series = :s AND t0 <= :lo), :lo) ORDER BY t0 DESC",
                    {"s": series, "lo": lo, "hi": hi}):
                chunks.append(row)
                times = np.frombuffer(row[1], _I8)
                count += int(np.count_nonzero(times < hi)) if times[-1] >= hi else times.size
                if count >= wanted:
                    break
            chunks.reverse()
        parts = [p for p in [*(_Cols.decode(*row[1:]) for row in chunks), *recent] if len(p)]
        if not parts:
            return _EMPTY
        cols = _merged(parts)
        inside = (cols.t >= lo) & (cols.t < hi)
        return cols if bool(inside.all()) else cols.take(inside)

    def _read(self, key: SeriesKey, start: datetime | None, end: datetime | None, limit: int,
              every: timedelta | None) -> list[Point]:
        limit = max(1, min(limit, MAX_POINTS))
        series = self._series_id(key, create=False)
        if series is None:
            return []
        lo = micros(start) if start else -(2**62)
        hi = micros(end) if end else 2**62
        cols = self._stored(series, lo, hi, limit if every is None else None)
        if every is None:
            cols = cols.take(slice(max(0, len(cols) - limit), len(cols)))
            return [Point(from_micros(t), value, QUALITY_OF_CODE[q])
                    for t, value, q in zip(cols.t.tolist(), cols.values(), cols.quality.tolist(), strict=True)]
        if not len(cols):
            return []
        width = max(1, every // timedelta(microseconds=1))
        buckets = (cols.t // width) * width
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        starts = starts[-limit:]
        ends = np.r_[starts[1:], len(cols)]
        numeric = np.isfinite(cols.num) & (cols.quality == 0)
        numeric &= cols.kind != STRING
        out = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            good = cols.num[a:b][numeric[a:b]]
            mean, low, high = ((float(good.mean()), float(good.min()), float(good.max())) if good.size
                               else (None, None, None))
            out.append(Point(from_micros(int(buckets[a])), mean, QUALITY_OF_CODE[int(cols.quality[a:b].max())],
                             low, high, b - a))
        return out

    async def series(self) -> list[SeriesKey]:
        async with self._lock:
            await self._settle()
            rows = self.db.execute("SELECT submodel_id, path FROM series ORDER BY id").fetchall()
        return [SeriesKey(s, p) for s, p in rows]

    async def delete_before(self, cutoff: datetime) -> int:
        moment = micros(cutoff)
        async with self._lock:
            await self._settle()
            if self._thread is None:
                raise StoreError("time-series store is not open")
            try:  # in the thread, after folding what is pending: the loop goes on meanwhile
                count: int = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._delete_before, self.db, moment)
            except sqlite3.Error as exc:
                raise StoreError(f"time-series store {self._path}: {exc}") from exc
            return count

    def _delete_before(self, db: sqlite3.Connection, moment: int) -> int:
        if self._unfolded or db.execute("SELECT 1 FROM pending LIMIT 1").fetchone():
            self._fold(db)
        with _transaction(db):
            # Per series, a range of its index (not a scan of every chunk): the whole chunks before, then the
            # ones that straddle the moment.
            where = "series IN (SELECT id FROM series) AND t0 < :m"
            count = int(db.execute(f"SELECT COALESCE(SUM(n), 0) FROM chunks WHERE {where} AND t1 < :m",
                                   {"m": moment}).fetchone()[0])
            db.execute(f"DELETE FROM chunks WHERE {where} AND t1 < :m", {"m": moment})
            for series, t0, *blobs in db.execute(f"SELECT series, t0, {_CHUNK_COLUMNS} FROM chunks WHERE {where}",
                                                 {"m": moment}).fetchall():
                cols = _Cols.decode(*blobs)
                kept = cols.take(cols.t >= moment)
                count += len(cols) - len(kept)
                db.execute("DELETE FROM chunks WHERE series = ? AND t0 = ?", (series, t0))
                _insert_chunk(db, series, kept)
        return count
