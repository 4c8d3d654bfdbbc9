"""Embedded time-series store: one SQLite file (WAL), samples clustered by (series, time).

The samples table is WITHOUT ROWID with primary key (series, t): a range read is one index walk,
and INSERT OR REPLACE makes re-sent samples idempotent. Times are integer microseconds (UTC).
The agent writes and the server reads the same file, from different processes.

Writes first go to `recent`, a plain table in arrival order, and are folded into `samples` in bulk
(sorted, in one SQL statement) once `recent` holds some dozens of rows per series, after
`FOLD_SECONDS`, when writes pause, and on close. Writing straight into the clustered table costs a page write per series
per batch when many series arrive interleaved (10,000 series: ~15 us per sample and growing with the
table); the fold writes each series' rows together. Reads see both tables; of a (series, t) in both,
or twice in `recent`, the latest write wins, as with INSERT OR REPLACE.

Folds run in the store's own thread (one statement, during which SQLite releases the GIL); writes run
on the caller's event loop in slices of a few milliseconds, so neither stalls the loop. `SampleColumns`
is the agent buffer's read-back form: the store writes it from its columns, with no object per sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from operator import attrgetter
from pathlib import Path
from typing import Any, overload

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
CREATE TABLE IF NOT EXISTS recent (
    series INTEGER NOT NULL,
    t INTEGER NOT NULL,
    num REAL,
    text TEXT,
    quality INTEGER NOT NULL,
    received INTEGER
);
"""
#: Fold `recent` into `samples` at this many rows per series (within the bounds below) ...
FOLD_ROWS_PER_SERIES = 32
FOLD_MIN_ROWS, FOLD_MAX_ROWS = 20_000, 500_000
#: ... or when its oldest row is this old (keeps reads of `recent`, a scan, short at low rates), or once
#: no write came for FOLD_IDLE seconds (a stream that stopped leaves nothing behind in `recent`).
FOLD_SECONDS = 10.0
FOLD_IDLE = 1.0
#: Rows inserted between two chances for other tasks to run (a few ms).
WRITE_SLICE = 2000
_FOLD = ("INSERT OR REPLACE INTO samples (series, t, num, text, quality, received) "
         "SELECT series, t, num, text, quality, received FROM recent ORDER BY series, t, rowid")
#: Rows of `recent` as bound per sample: the values of a row are ?1, ?2, ... of its template.
_ROW = "(?1, ?2, ?3, ?4, ?5, ?6)"
_ROW_PLAIN = "(?1, ?2, ?3, NULL, 0, ?4)"
#: A plain row received at its source time (a device without timestamps): 3 values bound, not 4.
_ROW_PLAIN_SAME = "(?1, ?2, ?3, NULL, 0, ?2)"
#: A good integer (all of a batch, e.g. JSON counters): as plain, with the tag that reads it back as int.
_ROW_INT = "(?1, ?2, ?3, 'int', 0, ?4)"
#: Rows per INSERT statement: one statement of many rows costs half as much per row as one per row.
ROWS_PER_INSERT = 100
#: The rows of `recent` for one series and time range, the latest of each time only.
_RECENT = ("SELECT t, num, text, quality FROM recent WHERE rowid IN (SELECT MAX(rowid) FROM recent "
           "WHERE series = :series AND t >= :lo AND t < :hi GROUP BY t)")
QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
QUALITY_OF_CODE = {v: k for k, v in QUALITY_CODE.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.cache
def _insert(row: str, rows: int) -> str:
    """INSERT of `rows` rows of the `row` template, its parameters numbered on from row to row."""
    width = max(map(int, re.findall(r"\?(\d)", row)))

    def shifted(k: int) -> str:
        return re.sub(r"\?(\d)", lambda m: f"?{width * k + int(m.group(1))}", row)

    values = ",".join(map(shifted, range(rows)))
    return f"INSERT INTO recent (series, t, num, text, quality, received) VALUES {values}"


def _insert_rows(db: sqlite3.Connection, row: str, rows: list[tuple[Any, ...]]) -> None:
    """`rows` into `recent`, in their order (a later row of the same series and time wins at the fold)."""
    full = len(rows) - len(rows) % ROWS_PER_INSERT
    if full:
        flat = list(chain.from_iterable(rows[:full]))
        step = len(flat) // (full // ROWS_PER_INSERT)
        db.executemany(_insert(row, ROWS_PER_INSERT), [flat[i:i + step] for i in range(0, len(flat), step)])
    if full < len(rows):
        db.executemany(_insert(row, 1), rows[full:])


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

    __slots__ = ("keys", "qualities", "received", "times", "values")

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[SeriesKey] = []
        self.times: list[datetime] = []
        self.values: list[Value] = []
        self.qualities: list[Quality] = []
        self.received: list[datetime | None] = []

    def __len__(self) -> int:
        return len(self.keys)

    def _build(self) -> list[Sample]:
        return list(map(Sample, self.keys, self.times, self.values, self.qualities, self.received))


class SampleColumns(LazySamples):
    """Samples as columns in the store's encoding: what the agent's buffer reads back. The store writes
    them without building objects.

    `series` holds ids that `keys` resolves; `num` is NaN where a sample has no number; `text` holds,
    by position, the tags `encode_value` gives to values that are not floats; `quality` holds codes."""

    __slots__ = ("keys", "num", "quality", "received", "series", "t", "text")

    def __init__(self, series: list[int], keys: Mapping[int, SeriesKey], t: list[int], num: list[float],
                 text: Mapping[int, str], quality: bytes, received: list[int]) -> None:
        super().__init__()
        self.series, self.keys, self.t, self.num, self.text = series, keys, t, num, text
        self.quality, self.received = quality, received

    @classmethod
    def of(cls, samples: Sequence[Sample], series_id: Mapping[int, int],
           keys: Mapping[int, SeriesKey]) -> SampleColumns:
        """Columns of `samples`; `series_id` gives the id of each key object by id() (KeyError if one is not
        there, raised before any other work)."""
        if isinstance(samples, SampleColumns):
            return samples
        if isinstance(samples, SampleLists):
            objects, times, values = samples.keys, samples.times, samples.values
            qualities, received = samples.qualities, samples.received
        else:
            objects, times, values = list(map(_KEY, samples)), list(map(_TIME, samples)), list(map(_VALUE, samples))
            qualities, received = list(map(_QUALITY, samples)), list(map(_RECEIVED, samples))
        series = list(map(series_id.__getitem__, map(id, objects)))
        num, text = encode_values(values)
        t = micros_column(times)
        # Devices without timestamps: received is the source time (the same objects, so this is quick).
        r = t if received == times else micros_column(received)
        # All good (most batches): no enum hashing per sample.
        quality = (bytes(len(qualities)) if qualities.count(Quality.GOOD) == len(qualities)
                   else bytes(map(QUALITY_CODE.__getitem__, qualities)))
        return cls(series, keys, t, num, text, quality, r)

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
            for i, (series, t, num, q, r) in enumerate(zip(self.series, self.t, self.num, self.quality,
                                                          self.received, strict=True))]

    def plain(self) -> bool:
        """All values are floats (or none) and all good: what most batches are."""
        return not self.text and not any(self.quality)

    def integers(self) -> bool:
        """All values are integers and all good (rows as `plain`, each with the text tag "int")."""
        text = self.text
        return len(text) == len(self) and set(text.values()) == {"int"} and not any(self.quality)

    def _received(self) -> Sequence[int | None]:
        received = self.received
        return [None if r == NO_TIME else r for r in received] if NO_TIME in received else received

    def same_received(self) -> bool:
        """Every sample was received at its source time (devices without timestamps, e.g. Modbus)."""
        return self.received is self.t or self.received == self.t

    def rows(self, ids: Mapping[int, int] | None, plain: bool = False,
             same_received: bool = False) -> Iterator[tuple[Any, ...]]:
        """(store series id, t, num, text, quality, received) per sample; `ids` maps `series` to the store's
        (None: they are the store's). `plain` (no text, all good: see `plain()`; or all
        integers, see `integers()`) leaves out text and quality,
        and then `same_received` (see `same_received()`) leaves out received too."""
        series: Iterator[int] | list[int] = self.series if ids is None else map(ids.__getitem__, self.series)
        if plain and same_received:
            return zip(series, self.t, self.num, strict=True)
        if plain:
            return zip(series, self.t, self.num, self._received(), strict=True)
        text = self.text
        texts = [text.get(i) for i in range(len(self))] if text else [None] * len(self)
        return zip(series, self.t, self.num, texts, self.quality, self._received(), strict=True)


def stored_count(path: Path | str) -> int:
    """How many samples a store file holds (folded or not); 0 if there is no store there yet."""
    if not Path(path).exists():
        return 0
    db = sqlite3.connect(path)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return sum(int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                   for table in ("samples", "recent") if table in tables)
    finally:
        db.close()


class SqliteTimeSeries(TimeSeriesStore):
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        #: Folds run in this thread: one SQL statement, during which SQLite does not hold the GIL, so the
        #: event loop goes on meanwhile. (Writes stay on the loop, in slices: a thread that binds rows holds
        #: the GIL so often that the loop waits for it at every socket call.)
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
        #: Rows in `recent`, and the monotonic time of the oldest.
        self._unfolded = 0
        self._since = 0.0
        #: Only a writer folds on close (a reader, e.g. the twin server, never writes the file).
        self._wrote = False
        self._idle: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db
        (self._unfolded,) = db.execute("SELECT COUNT(*) FROM recent").fetchone()
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
            pass  # folded by the next writer to open the file; readers see `recent` meanwhile
        finally:
            db.close()

    def _fold(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_FOLD)
            db.execute("DELETE FROM recent")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._unfolded = 0

    async def _settle(self) -> None:
        """Wait for a fold in progress; its failure becomes this call's StoreError (the rows stay in `recent`)."""
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
            cur = self.db.execute("INSERT INTO series (submodel_id, path) VALUES (?, ?)", (key.submodel_id, key.path))
            row = (cur.lastrowid,)
        self._ids[key] = int(row[0])
        return int(row[0])

    def _id_of(self, key: SeriesKey) -> int:
        """The series id of a key object, creating the series if new (inside the write transaction)."""
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
                db.execute("BEGIN IMMEDIATE")
                try:
                    columns, ids = self._columns(samples)
                    integers = columns.integers()
                    plain = integers or columns.plain()  # binds 4 values a row instead of 6: a third less time
                    same = plain and not integers and columns.same_received()  # and 3 instead of 4
                    rows = columns.rows(ids, plain, same)
                    row = _ROW_INT if integers else _ROW_PLAIN_SAME if same else _ROW_PLAIN if plain else _ROW
                    while chunk := list(islice(rows, WRITE_SLICE)):
                        _insert_rows(db, row, chunk)
                        if len(chunk) == WRITE_SLICE:
                            await asyncio.sleep(0)  # sources run between slices
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    self._ids.clear()  # ids created in the rolled-back transaction are gone
                    self._by_object.clear()
                    self._held.clear()
                    self._foreign = None
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
                folding.exception()  # a failed fold left its rows in `recent`: this one retries them
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
            new = set(samples.series) - ids.keys()
            for series in new:
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

    def _read(self, key: SeriesKey, start: datetime | None, end: datetime | None, limit: int,
              every: timedelta | None) -> list[Point]:
        limit = max(1, min(limit, MAX_POINTS))
        series = self._series_id(key, create=False)
        if series is None:
            return []
        lo = micros(start) if start else -(2**62)
        hi = micros(end) if end else 2**62
        where = {"series": series, "lo": lo, "hi": hi, "limit": limit}
        if every is None:
            newest = {row[0]: row for row in self.db.execute(
                "SELECT t, num, text, quality FROM samples WHERE series = :series AND t >= :lo AND t < :hi "
                "ORDER BY t DESC LIMIT :limit", where)}
            newest.update((row[0], row) for row in self.db.execute(_RECENT, where))  # recent wins
            rows = sorted(newest.values())[-limit:]
            return [Point(from_micros(t), decode_value(num, text), QUALITY_OF_CODE[q]) for t, num, text, q in rows]
        width = max(1, every // timedelta(microseconds=1))
        rows = self.db.execute(
            "SELECT (t / :width) * :width AS bucket, AVG(CASE WHEN quality = 0 THEN num END), "
            "MIN(CASE WHEN quality = 0 THEN num END), MAX(CASE WHEN quality = 0 THEN num END), "
            "COUNT(*), MAX(quality) FROM ("
            "SELECT t, num, quality FROM samples WHERE series = :series AND t >= :lo AND t < :hi "
            "AND t NOT IN (SELECT t FROM recent WHERE series = :series AND t >= :lo AND t < :hi) "
            f"UNION ALL SELECT t, num, quality FROM ({_RECENT})) "
            "GROUP BY bucket ORDER BY bucket DESC LIMIT :limit", where | {"width": width}).fetchall()
        return [Point(from_micros(b), mean, QUALITY_OF_CODE[q], lo_v, hi_v, n)
                for b, mean, lo_v, hi_v, n, q in reversed(rows)]

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
            try:  # in the thread: one range delete per series (an index walk each), the loop goes on
                count: int = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._delete_before, self.db, moment)
            except sqlite3.Error as exc:
                raise StoreError(f"time-series store {self._path}: {exc}") from exc
            return count

    @staticmethod
    def _delete_before(db: sqlite3.Connection, moment: int) -> int:
        db.execute("BEGIN IMMEDIATE")
        try:
            count = db.execute("DELETE FROM samples WHERE series IN (SELECT id FROM series) AND t < ?",
                               (moment,)).rowcount
            count += db.execute("DELETE FROM recent WHERE t < ?", (moment,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(count)
