"""Embedded default backend: one SQLite file in WAL mode.

Reads run on the event loop's thread (lookups by key take microseconds) on their own connection, which
sees committed data only. Writes run on a second connection, one at a time, with group commit: the
writes waiting together share one transaction, each in a savepoint (one that fails is rolled back
alone, so a failing call changes nothing), and each call returns only after that commit, so
durability is that of a single commit. The writes run on the event loop, and the commit is the loop's
next callback: with durability "normal" it runs there too (it appends to the WAL, no fsync); with
"fsync" it runs on a thread, so the disk's wait never stalls the loop, and the writes that arrive
meanwhile form the next transaction. One writer per file keeps
read-change-write atomic. One server process per file; use the PostgreSQL backend for several
replicas. ":memory:" has one connection and commits each write at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from twin_server.storage import cursor as cursors
from twin_server.storage.base import (
    Change,
    Conflict,
    FileChange,
    Filter,
    Index,
    Kind,
    NoFile,
    NotFound,
    Page,
    Storage,
    StorageError,
    StoredFile,
)

T = TypeVar("T")
#: A write: runs inside the writer's transaction, raises to leave everything unchanged.
Job = Callable[[sqlite3.Connection], Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    id_short TEXT,
    semantic_id TEXT,
    body BLOB NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_by_kind ON docs (kind, seq);
CREATE INDEX IF NOT EXISTS docs_by_id_short ON docs (kind, id_short, seq);
CREATE INDEX IF NOT EXISTS docs_by_semantic_id ON docs (kind, semantic_id, seq);
CREATE TABLE IF NOT EXISTS doc_keys (
    seq INTEGER NOT NULL REFERENCES docs (seq) ON DELETE CASCADE,
    category TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_keys_by_value ON doc_keys (category, name, value, seq);
CREATE INDEX IF NOT EXISTS doc_keys_by_seq ON doc_keys (seq);
CREATE TABLE IF NOT EXISTS files (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    file_name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (kind, id, name)
);
"""

Durability = Literal["normal", "fsync"]


class _Checkpointer(threading.Thread):
    """Moves the WAL into the database file from its own connection (PASSIVE: never waits for, nor
    blocks, the server's reads and writes), every `interval` seconds while there is something to move."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self._path = path
        self._interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self._interval):
                with contextlib.suppress(sqlite3.Error):  # busy now: the next round catches up
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


def _failed(exc: BaseException) -> StorageError:
    """The storage error a caller sees when SQLite itself failed (locked, disk full, ...)."""
    return StorageError(f"SQLite storage failed: {exc}")


def _run_alone(db: sqlite3.Connection, job: Callable[[sqlite3.Connection], T]) -> T:
    """Run `job` in a transaction of its own and commit it (":memory:", whose reads share the connection)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise _failed(exc) from exc
    try:
        result = job(db)
    except Exception:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise _failed(exc) from exc
    return result


class _LoopWriter:
    """Group commit on the event loop: the first write opens a transaction and schedules its commit as a
    callback of the loop; writes that run before that callback join the transaction, each in a savepoint.
    With synchronous=NORMAL a commit only appends to the WAL (tens of microseconds), cheaper here than
    handing writes to a thread and back.

    With a `committer` thread (durability "fsync") only the COMMIT, which waits for the disk, runs there;
    writes submitted meanwhile wait and then form the next transaction. The writes' Python work stays on
    the loop, so the loop and a writer thread no longer take turns at the GIL (a thread waiting for it may
    wait up to the switch interval, 5 ms); under CPU load this cut the p99 of fsync writes at 16 connections."""

    def __init__(self, db: sqlite3.Connection, loop: asyncio.AbstractEventLoop,
                 committer: concurrent.futures.Executor | None = None) -> None:
        self._db = db
        self._loop = loop
        self._committer = committer
        self._waiting: list[tuple[asyncio.Future[Any], Any]] = []
        self._open = False
        self._scheduled = False
        self._inflight: asyncio.Future[StorageError | None] | None = None
        self._queued: list[tuple[Job, asyncio.Future[Any]]] = []

    def submit(self, job: Job) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._inflight is not None:  # the connection is committing in the thread
            self._queued.append((job, future))
        else:
            self._run(job, future)
        return future

    def _run(self, job: Job, future: asyncio.Future[Any]) -> None:
        db = self._db
        first = not self._open
        if first:  # the transaction's first write needs no savepoint: its failure rolls back the transaction
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:  # locked by another process past the busy timeout
                future.set_exception(_failed(exc))
                return
            self._open = True
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._commit)
        else:
            db.execute("SAVEPOINT job")
        try:
            result = job(db)
        except Exception as exc:
            if first:
                db.execute("ROLLBACK")
                self._open = False
            else:
                db.execute("ROLLBACK TO job")
                db.execute("RELEASE job")
            future.set_exception(exc)
            return
        if not first:
            db.execute("RELEASE job")
        self._waiting.append((future, result))

    def _commit(self) -> None:
        self._scheduled = False
        if not self._open:
            return
        waiting, self._waiting = self._waiting, []
        self._open = False
        if self._committer is None:
            self._deliver(waiting, self._commit_now())
            return
        self._inflight = inflight = self._loop.run_in_executor(self._committer, self._commit_now)
        inflight.add_done_callback(lambda done: self._committed(waiting, done))

    def _commit_now(self) -> StorageError | None:
        try:
            self._db.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            return _failed(exc)
        return None

    def _committed(self, waiting: list[tuple[asyncio.Future[Any], Any]],
                   done: asyncio.Future[StorageError | None]) -> None:
        self._inflight = None
        self._deliver(waiting, done.result())
        queued, self._queued = self._queued, []
        for job, future in queued:
            if future.cancelled():  # a caller that gave up before its write ran: the write is not made
                continue
            try:
                self._run(job, future)
            except Exception as exc:  # a savepoint statement failed: this caller hears it, the rest go on
                if not future.done():
                    future.set_exception(_failed(exc))

    @staticmethod
    def _deliver(waiting: list[tuple[asyncio.Future[Any], Any]], error: StorageError | None) -> None:
        for future, result in waiting:
            if not future.cancelled():
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)

    async def stop(self) -> None:
        """Commit everything submitted so far."""
        while True:
            if self._inflight is not None:
                await asyncio.wait({self._inflight})  # its callback has run when this returns
            elif self._open:
                self._commit()
            else:
                return


class SqliteStorage(Storage):
    def __init__(self, path: Path | str, durability: Durability = "normal") -> None:
        """`path` may be ":memory:". `normal` survives a crash of the server; `fsync` also a power cut."""
        self._path = str(path)
        self._durability = durability
        self._db: sqlite3.Connection | None = None
        self._write_db: sqlite3.Connection | None = None
        self._writer: _LoopWriter | None = None
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._checkpointer: _Checkpointer | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'fsync' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._db = db
        if self._path != ":memory:":
            # Checkpoints copy the WAL into the database file (and fsync it): tens of milliseconds every few
            # hundred writes when a committing request does it. A thread does it instead, beside the writes.
            self._write_db = self._connect()
            self._write_db.execute("PRAGMA wal_autocheckpoint=0")
            loop = asyncio.get_running_loop()
            if self._durability == "fsync":  # a commit waits for the disk: not on the event loop
                self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-commit")
            self._writer = _LoopWriter(self._write_db, loop, self._committer)
            self._checkpointer = _Checkpointer(self._path)
            self._checkpointer.start()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._write_db is not None:
            self._write_db.close()
            self._write_db = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection for reads (committed data only)."""
        if self._db is None:
            raise RuntimeError("storage is not open")
        return self._db

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in a transaction of the writer (group commit); its result once it is committed."""
        writer = self._writer
        if writer is None:
            return _run_alone(self.db, job)
        return await writer.submit(job)  # type: ignore[no-any-return]

    async def get(self, kind: Kind, ident: str) -> bytes | None:
        return self.get_now(kind, ident)

    def get_now(self, kind: Kind, ident: str) -> bytes | None:
        """:meth:`get` without the coroutine, for callers that answer without an await (the fast lane)."""
        row = self.db.execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, ident)).fetchone()
        return None if row is None else bytes(row[0])

    async def page(self, kind: Kind, flt: Filter, limit: int, cursor: str | None) -> Page:
        after = cursors.decode(cursor) if cursor else 0
        sql = ["SELECT seq, body FROM docs WHERE kind = ? AND seq > ?"]
        args: list[object] = [kind, after]
        if flt.id_short is not None:
            sql.append("AND id_short = ?")
            args.append(flt.id_short)
        if flt.semantic_id is not None:
            sql.append("AND semantic_id = ?")
            args.append(flt.semantic_id)
        for category, pairs in (("asset", flt.asset_ids), ("ref", flt.refs)):
            for name, value in pairs:
                sql.append("AND seq IN (SELECT seq FROM doc_keys WHERE category = ? AND name = ? AND value = ?)")
                args.extend((category, name, value))
        sql.append("ORDER BY seq LIMIT ?")
        args.append(limit + 1)
        rows = self.db.execute(" ".join(sql), args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([bytes(body) for _, body in rows], cursors.encode(rows[-1][0]) if more and rows else None)

    async def create(self, kind: Kind, ident: str, body: bytes, index: Index) -> None:
        def job(db: sqlite3.Connection) -> None:
            try:
                cur = db.execute(
                    "INSERT INTO docs (kind, id, id_short, semantic_id, body) VALUES (?, ?, ?, ?, ?)",
                    (kind, ident, index.id_short, index.semantic_id, body),
                )
            except sqlite3.IntegrityError:
                raise Conflict(ident) from None
            _write_keys(db, cur.lastrowid, index)

        await self._write(job)

    async def update(self, kind: Kind, ident: str, change: Change, file: FileChange | None = None) -> bytes:
        def job(db: sqlite3.Connection) -> bytes:
            row = db.execute("SELECT seq, body FROM docs WHERE kind = ? AND id = ?", (kind, ident)).fetchone()
            if row is None:
                raise NotFound(ident)
            if file is not None and file.file is None and not _delete_file(db, kind, ident, file.name):
                raise NoFile(file.name)
            seq, old = row
            body, index = change(bytes(old))
            if file is not None and file.file is not None:
                _put_file(db, kind, ident, file.name, file.file)
            db.execute("UPDATE docs SET id_short = ?, semantic_id = ?, body = ? WHERE seq = ?",
                       (index.id_short, index.semantic_id, body, seq))
            db.execute("DELETE FROM doc_keys WHERE seq = ?", (seq,))
            _write_keys(db, seq, index)
            return body

        return await self._write(job)

    async def delete(self, kind: Kind, ident: str) -> None:
        def job(db: sqlite3.Connection) -> None:
            cur = db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, ident))
            if cur.rowcount == 0:
                raise NotFound(ident)
            db.execute("DELETE FROM files WHERE kind = ? AND id = ?", (kind, ident))

        await self._write(job)

    async def count(self, kind: Kind) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()[0])

    async def get_file(self, kind: Kind, ident: str, name: str) -> StoredFile | None:
        row = self.db.execute(
            "SELECT content_type, file_name, data FROM files WHERE kind = ? AND id = ? AND name = ?",
            (kind, ident, name),
        ).fetchone()
        return None if row is None else StoredFile(row[0], row[1], bytes(row[2]))

    async def put_file(self, kind: Kind, ident: str, name: str, file: StoredFile) -> None:
        await self._write(lambda db: _put_file(db, kind, ident, name, file))

    async def delete_file(self, kind: Kind, ident: str, name: str) -> bool:
        return await self._write(lambda db: _delete_file(db, kind, ident, name))


def _put_file(db: sqlite3.Connection, kind: Kind, ident: str, name: str, file: StoredFile) -> None:
    db.execute("INSERT OR REPLACE INTO files (kind, id, name, content_type, file_name, data) VALUES (?, ?, ?, ?, ?, ?)",
               (kind, ident, name, file.content_type, file.file_name, file.data))


def _delete_file(db: sqlite3.Connection, kind: Kind, ident: str, name: str) -> bool:
    return db.execute("DELETE FROM files WHERE kind = ? AND id = ? AND name = ?", (kind, ident, name)).rowcount > 0


def _write_keys(db: sqlite3.Connection, seq: int | None, index: Index) -> None:
    rows = [(seq, "asset", n, v) for n, v in index.asset_ids] + [(seq, "ref", n, v) for n, v in index.refs]
    if rows:
        db.executemany("INSERT INTO doc_keys (seq, category, name, value) VALUES (?, ?, ?, ?)", rows)
