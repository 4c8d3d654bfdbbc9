"""Embedded default backend: one SQLite file in WAL mode.

Calls run on the event loop thread: lookups by key take microseconds, and with no await between a
read and its write, `update` is atomic within the process. One server process per file; use the
PostgreSQL backend for several replicas.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Literal

from twin_server.storage import cursor as cursors
from twin_server.storage.base import (
    Change,
    Conflict,
    Filter,
    Index,
    Kind,
    NotFound,
    Page,
    Storage,
    StoredFile,
)

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


class SqliteStorage(Storage):
    def __init__(self, path: Path | str, durability: Durability = "normal") -> None:
        """`path` may be ":memory:". `normal` survives a crash of the server; `fsync` also a power cut."""
        self._path = str(path)
        self._durability = durability
        self._db: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'fsync' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        self._db = db
        if self._path != ":memory:":
            # Checkpoints copy the WAL into the database file (and fsync it): tens of milliseconds every few
            # hundred writes when a committing request does it. A thread does it instead, beside the writes.
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(self._path)
            self._checkpointer.start()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("storage is not open")
        return self._db

    async def get(self, kind: Kind, ident: str) -> bytes | None:
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
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            try:
                cur = db.execute(
                    "INSERT INTO docs (kind, id, id_short, semantic_id, body) VALUES (?, ?, ?, ?, ?)",
                    (kind, ident, index.id_short, index.semantic_id, body),
                )
            except sqlite3.IntegrityError:
                raise Conflict(ident) from None
            self._write_keys(cur.lastrowid, index)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write_keys(self, seq: int | None, index: Index) -> None:
        rows = [(seq, "asset", n, v) for n, v in index.asset_ids] + [(seq, "ref", n, v) for n, v in index.refs]
        if rows:
            self.db.executemany("INSERT INTO doc_keys (seq, category, name, value) VALUES (?, ?, ?, ?)", rows)

    async def update(self, kind: Kind, ident: str, change: Change) -> bytes:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT seq, body FROM docs WHERE kind = ? AND id = ?", (kind, ident)).fetchone()
            if row is None:
                raise NotFound(ident)
            seq, old = row
            body, index = change(bytes(old))
            db.execute("UPDATE docs SET id_short = ?, semantic_id = ?, body = ? WHERE seq = ?",
                       (index.id_short, index.semantic_id, body, seq))
            db.execute("DELETE FROM doc_keys WHERE seq = ?", (seq,))
            self._write_keys(seq, index)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return body

    async def delete(self, kind: Kind, ident: str) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, ident))
            if cur.rowcount == 0:
                raise NotFound(ident)
            db.execute("DELETE FROM files WHERE kind = ? AND id = ?", (kind, ident))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def count(self, kind: Kind) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()[0])

    async def get_file(self, kind: Kind, ident: str, name: str) -> StoredFile | None:
        row = self.db.execute(
            "SELECT content_type, file_name, data FROM files WHERE kind = ? AND id = ? AND name = ?",
            (kind, ident, name),
        ).fetchone()
        return None if row is None else StoredFile(row[0], row[1], bytes(row[2]))

    async def put_file(self, kind: Kind, ident: str, name: str, file: StoredFile) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files (kind, id, name, content_type, file_name, data) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, ident, name, file.content_type, file.file_name, file.data),
        )

    async def delete_file(self, kind: Kind, ident: str, name: str) -> bool:
        cur = self.db.execute("DELETE FROM files WHERE kind = ? AND id = ? AND name = ?", (kind, ident, name))
        return cur.rowcount > 0
