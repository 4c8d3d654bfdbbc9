"""PostgreSQL backend, for several server replicas sharing one database.

Every call goes to the database (no caching), so a write by one replica is seen by the next read of
any other. `update` reads the row with `SELECT ... FOR UPDATE` inside a transaction, so concurrent
read-modify-writes from different replicas are serialised on the row and none is lost. The schema
mirrors the SQLite backend's: one row per identifiable with an increasing `seq` for pagination
(an identity column), a key table for the asset-id and reference filters, and a files table.

Note on pagination under concurrent writes: sequence numbers are handed out at insert time but
become visible at commit, so an item inserted while a walk is under way may be skipped by that walk;
items present for the whole walk still appear exactly once, as the interface promises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import LiteralString

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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

#: Key of the advisory lock taken while creating the schema, so replicas starting together do not
#: race on `CREATE ... IF NOT EXISTS` (which is not safe against concurrent creators on its own).
_SCHEMA_LOCK = 0x7477696E_65646765  # "twinedge"

_SCHEMA: tuple[LiteralString, ...] = (
    """
    CREATE TABLE IF NOT EXISTS twin_docs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        id_short TEXT,
        semantic_id TEXT,
        body BYTEA NOT NULL,
        UNIQUE (kind, id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS twin_docs_by_kind ON twin_docs (kind, seq)",
    "CREATE INDEX IF NOT EXISTS twin_docs_by_id_short ON twin_docs (kind, id_short, seq)",
    "CREATE INDEX IF NOT EXISTS twin_docs_by_semantic_id ON twin_docs (kind, semantic_id, seq)",
    """
    CREATE TABLE IF NOT EXISTS twin_doc_keys (
        seq BIGINT NOT NULL REFERENCES twin_docs (seq) ON DELETE CASCADE,
        category TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS twin_doc_keys_by_value ON twin_doc_keys (category, name, value, seq)",
    "CREATE INDEX IF NOT EXISTS twin_doc_keys_by_seq ON twin_doc_keys (seq, category, name, value)",
    """
    CREATE TABLE IF NOT EXISTS twin_files (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        file_name TEXT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (kind, id, name)
    )
    """,
)

#: The tables this backend owns, for tests and tooling that reset them.
TABLES: tuple[LiteralString, ...] = ("twin_files", "twin_doc_keys", "twin_docs")

Conn = AsyncConnection[TupleRow]


async def _put_file(conn: Conn, kind: Kind, ident: str, name: str, file: StoredFile) -> None:
    await conn.execute(
        "INSERT INTO twin_files (kind, id, name, content_type, file_name, data) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (kind, id, name) DO UPDATE SET content_type = EXCLUDED.content_type,"
        " file_name = EXCLUDED.file_name, data = EXCLUDED.data",
        (str(kind), ident, name, file.content_type, file.file_name, file.data),
    )


async def _delete_file(conn: Conn, kind: Kind, ident: str, name: str) -> bool:
    cur = await conn.execute("DELETE FROM twin_files WHERE kind = %s AND id = %s AND name = %s",
                             (str(kind), ident, name))
    return cur.rowcount > 0


def _refuse_nul_file(names: str, file: StoredFile) -> None:
    if _has_nul(names, file.content_type, file.file_name):
        raise StorageError("PostgreSQL text cannot hold U+0000; the caller must refuse such names")


def _has_nul(*texts: str | None) -> bool:
    """PostgreSQL text cannot hold U+0000 (psycopg refuses to send it). No stored id, name or index value
    holds one, so a lookup for such text finds nothing, as on SQLite."""
    return any(text is not None and "\x00" in text for text in texts)


def _refuse_nul(ident: str, index: Index) -> None:
    values = [index.id_short, index.semantic_id, *(t for pair in index.asset_ids + index.refs for t in pair)]
    if _has_nul(ident, *values):
        raise StorageError("PostgreSQL text cannot hold U+0000; the caller must refuse such ids and index values")


class PostgresStorage(Storage):
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 30.0) -> None:
        """`dsn` is a libpq connection string or URI. `min_size`/`max_size` bound the connection pool
        of this process; `timeout` is how long a call waits for a free connection before it fails."""
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            kwargs={"autocommit": True},
            open=False,
            name="twin-storage",
        )
        try:
            await pool.open(wait=True, timeout=self._timeout)
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    await conn.execute(statement)
        except (psycopg.Error, PoolTimeout) as exc:
            await pool.close()
            raise StorageError(f"cannot open the PostgreSQL storage: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        """A pooled connection in autocommit mode; database faults become `StorageError`."""
        if self._pool is None:
            raise RuntimeError("storage is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"PostgreSQL storage failed: {exc}") from exc

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        """A connection inside a transaction: committed on success, rolled back on any exception."""
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def get(self, kind: Kind, ident: str) -> bytes | None:
        if _has_nul(ident):
            return None
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT body FROM twin_docs WHERE kind = %s AND id = %s", (str(kind), ident), binary=True
            )
            row = await cur.fetchone()
        return None if row is None else bytes(row[0])

    async def page(self, kind: Kind, flt: Filter, limit: int, cursor: str | None) -> Page:
        after = cursors.decode(cursor) if cursor else 0
        if limit < 0:
            raise ValueError("limit must not be negative")
        if _has_nul(flt.id_short, flt.semantic_id, *(t for pair in flt.asset_ids + flt.refs for t in pair)):
            return Page([])
        sql: list[LiteralString] = ["SELECT d.seq, d.body FROM twin_docs d WHERE d.kind = %s AND d.seq > %s"]
        args: list[object] = [str(kind), after]
        if flt.id_short is not None:
            sql.append("AND d.id_short = %s")
            args.append(flt.id_short)
        if flt.semantic_id is not None:
            sql.append("AND d.semantic_id = %s")
            args.append(flt.semantic_id)
        for category, pairs in (("asset", flt.asset_ids), ("ref", flt.refs)):
            for name, value in pairs:
                sql.append(
                    "AND EXISTS (SELECT 1 FROM twin_doc_keys k"
                    " WHERE k.seq = d.seq AND k.category = %s AND k.name = %s AND k.value = %s)"
                )
                args.extend((category, name, value))
        sql.append("ORDER BY d.seq LIMIT %s")
        args.append(limit + 1)
        async with self._conn() as conn:
            cur = await conn.execute(" ".join(sql), args, binary=True)
            rows = await cur.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([bytes(body) for _, body in rows], cursors.encode(rows[-1][0]) if more and rows else None)

    async def create(self, kind: Kind, ident: str, body: bytes, index: Index) -> None:
        _refuse_nul(ident, index)
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO twin_docs (kind, id, id_short, semantic_id, body) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (kind, id) DO NOTHING RETURNING seq",
                (str(kind), ident, index.id_short, index.semantic_id, body),
            )
            row = await cur.fetchone()
            if row is None:
                raise Conflict(ident)
            await self._write_keys(conn, row[0], index)

    @staticmethod
    async def _write_keys(conn: Conn, seq: int, index: Index) -> None:
        rows = [(seq, "asset", n, v) for n, v in index.asset_ids] + [(seq, "ref", n, v) for n, v in index.refs]
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO twin_doc_keys (seq, category, name, value) VALUES (%s, %s, %s, %s)", rows
                )

    async def update(self, kind: Kind, ident: str, change: Change, file: FileChange | None = None) -> bytes:
        if _has_nul(ident):
            raise NotFound(ident)
        if file is not None and file.file is not None:
            _refuse_nul_file(file.name, file.file)
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT seq, body FROM twin_docs WHERE kind = %s AND id = %s FOR UPDATE",
                (str(kind), ident),
                binary=True,
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(ident)
            if file is not None and file.file is None and not await _delete_file(conn, kind, ident, file.name):
                raise NoFile(file.name)
            seq, old = row
            body, index = change(bytes(old))
            _refuse_nul(ident, index)
            await conn.execute(
                "UPDATE twin_docs SET id_short = %s, semantic_id = %s, body = %s WHERE seq = %s",
                (index.id_short, index.semantic_id, body, seq),
            )
            if file is not None and file.file is not None:
                await _put_file(conn, kind, ident, file.name, file.file)
            await conn.execute("DELETE FROM twin_doc_keys WHERE seq = %s", (seq,))
            await self._write_keys(conn, seq, index)
        return body

    async def delete(self, kind: Kind, ident: str) -> None:
        if _has_nul(ident):
            raise NotFound(ident)
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM twin_docs WHERE kind = %s AND id = %s RETURNING seq", (str(kind), ident)
            )
            if await cur.fetchone() is None:
                raise NotFound(ident)
            await conn.execute("DELETE FROM twin_files WHERE kind = %s AND id = %s", (str(kind), ident))

    async def count(self, kind: Kind) -> int:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT count(*) FROM twin_docs WHERE kind = %s", (str(kind),))
            row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    async def get_file(self, kind: Kind, ident: str, name: str) -> StoredFile | None:
        if _has_nul(ident, name):
            return None
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT content_type, file_name, data FROM twin_files WHERE kind = %s AND id = %s AND name = %s",
                (str(kind), ident, name),
                binary=True,
            )
            row = await cur.fetchone()
        return None if row is None else StoredFile(row[0], row[1], bytes(row[2]))

    async def put_file(self, kind: Kind, ident: str, name: str, file: StoredFile) -> None:
        _refuse_nul_file(ident + name, file)
        async with self._conn() as conn:
            await _put_file(conn, kind, ident, name, file)

    async def delete_file(self, kind: Kind, ident: str, name: str) -> bool:
        if _has_nul(ident, name):
            return False
        async with self._conn() as conn:
            return await _delete_file(conn, kind, ident, name)
