"""One contract suite for every storage backend (SQLite and PostgreSQL), plus the PostgreSQL
backend's multi-replica guarantees: two instances on one database see each other's writes at once
and concurrent updates lose nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from twin_server.storage import cursor as cursors
from twin_server.storage.base import (
    Conflict,
    Filter,
    Index,
    Kind,
    NotFound,
    Page,
    Storage,
    StorageError,
    StoredFile,
)
from twin_server.storage.sqlite import SqliteStorage

pytest_plugins = ("tests.pg",)

pytestmark = pytest.mark.anyio

Factory = Callable[[], Storage]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _reset_postgres(dsn: str) -> None:
    """A fresh schema for each test: drop the backend's tables (`open()` creates them again)."""
    import psycopg

    from twin_server.storage.postgres import TABLES

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Makes unopened storages that all share one backing store (a file, or a database)."""
    if request.param == "sqlite":
        path = tmp_path / "t.db"
        return lambda: SqliteStorage(path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    from twin_server.storage.postgres import PostgresStorage

    _reset_postgres(dsn)
    return lambda: PostgresStorage(dsn)


@pytest.fixture
async def store(make_storage: Factory, anyio_backend: str) -> AsyncIterator[Storage]:
    storage = make_storage()
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


def doc(ident: str, **fields: object) -> bytes:
    return json.dumps({"id": ident, **fields}, sort_keys=True).encode()


def ids(bodies: list[bytes]) -> list[str]:
    return [json.loads(body)["id"] for body in bodies]


async def walk(store: Storage, kind: Kind, flt: Filter, limit: int) -> list[bytes]:
    """Every item, page by page; checks that only the last page lacks a cursor and pages are full."""
    items: list[bytes] = []
    cursor: str | None = None
    while True:
        page = await store.page(kind, flt, limit, cursor)
        items.extend(page.items)
        if page.cursor is None:
            return items
        assert len(page.items) == limit
        cursor = page.cursor


async def fill(store: Storage, count: int, kind: Kind = Kind.SUBMODEL, prefix: str = "urn:sm:") -> list[str]:
    made = [f"{prefix}{i:03d}" for i in range(count)]
    for ident in made:
        await store.create(kind, ident, doc(ident), Index(id_short=ident.rsplit(":", 1)[-1]))
    return made


# --- create, get, conflict -----------------------------------------------------------------------


async def test_create_get_conflict(store: Storage) -> None:
    await store.create(Kind.SHELL, "urn:a", doc("urn:a", v=1), Index(id_short="a"))
    assert await store.get(Kind.SHELL, "urn:a") == doc("urn:a", v=1)
    assert await store.get(Kind.SHELL, "urn:missing") is None
    # The same id is a different identifiable under another kind.
    assert await store.get(Kind.SUBMODEL, "urn:a") is None
    await store.create(Kind.SUBMODEL, "urn:a", doc("urn:a", v=2), Index(id_short="b"))

    with pytest.raises(Conflict):
        await store.create(Kind.SHELL, "urn:a", doc("urn:a", v=3), Index(id_short="other"))
    # The failed create changed nothing: body, count and index are as before.
    assert await store.get(Kind.SHELL, "urn:a") == doc("urn:a", v=1)
    assert await store.count(Kind.SHELL) == 1
    assert (await store.page(Kind.SHELL, Filter(id_short="other"), 10, None)).items == []
    assert ids((await store.page(Kind.SHELL, Filter(id_short="a"), 10, None)).items) == ["urn:a"]
    assert await store.count(Kind.SUBMODEL) == 1
    assert await store.count(Kind.CONCEPT_DESCRIPTION) == 0


async def test_binary_safe_bodies(store: Storage) -> None:
    body = bytes(range(256)) * 40 + "한국어 ü".encode()
    await store.create(Kind.CONCEPT_DESCRIPTION, "urn:bin", body, Index())
    assert await store.get(Kind.CONCEPT_DESCRIPTION, "urn:bin") == body


# --- update ----------------------------------------------------------------------------------------


async def test_update_applies_change_and_reindexes(store: Storage) -> None:
    await store.create(Kind.SUBMODEL, "urn:s", doc("urn:s", n=1), Index(id_short="old", semantic_id="urn:sem:1"))
    seen: list[bytes] = []

    def change(old: bytes) -> tuple[bytes, Index]:
        seen.append(old)
        return doc("urn:s", n=json.loads(old)["n"] + 1), Index(id_short="new", semantic_id="urn:sem:2")

    assert await store.update(Kind.SUBMODEL, "urn:s", change) == doc("urn:s", n=2)
    assert seen == [doc("urn:s", n=1)]
    assert await store.get(Kind.SUBMODEL, "urn:s") == doc("urn:s", n=2)
    assert (await store.page(Kind.SUBMODEL, Filter(id_short="old"), 10, None)).items == []
    assert (await store.page(Kind.SUBMODEL, Filter(semantic_id="urn:sem:1"), 10, None)).items == []
    assert ids((await store.page(Kind.SUBMODEL, Filter(id_short="new"), 10, None)).items) == ["urn:s"]
    assert ids((await store.page(Kind.SUBMODEL, Filter(semantic_id="urn:sem:2"), 10, None)).items) == ["urn:s"]


async def test_update_that_raises_changes_nothing(store: Storage) -> None:
    index = Index(id_short="a", asset_ids=(("globalAssetId", "urn:asset:1"),), refs=(("isCaseOf", "urn:x"),))
    await store.create(Kind.SHELL, "urn:a", doc("urn:a", n=1), index)

    class Rejected(Exception):
        pass

    def change(old: bytes) -> tuple[bytes, Index]:
        raise Rejected("invalid")

    with pytest.raises(Rejected):
        await store.update(Kind.SHELL, "urn:a", change)
    assert await store.get(Kind.SHELL, "urn:a") == doc("urn:a", n=1)
    for flt in (
        Filter(id_short="a"),
        Filter(asset_ids=(("globalAssetId", "urn:asset:1"),)),
        Filter(refs=(("isCaseOf", "urn:x"),)),
    ):
        assert ids((await store.page(Kind.SHELL, flt, 10, None)).items) == ["urn:a"], flt
    # The storage is still usable after the rolled-back update.
    await store.update(Kind.SHELL, "urn:a", lambda old: (doc("urn:a", n=2), index))
    assert await store.get(Kind.SHELL, "urn:a") == doc("urn:a", n=2)


async def test_update_missing_raises_not_found(store: Storage) -> None:
    called: list[bytes] = []

    def change(old: bytes) -> tuple[bytes, Index]:
        called.append(old)
        return old, Index()

    with pytest.raises(NotFound):
        await store.update(Kind.SUBMODEL, "urn:none", change)
    assert called == []
    assert await store.count(Kind.SUBMODEL) == 0


async def test_update_keeps_position(store: Storage) -> None:
    made = await fill(store, 5)
    await store.update(Kind.SUBMODEL, made[0], lambda old: (doc(made[0], changed=True), Index()))
    assert ids(await walk(store, Kind.SUBMODEL, Filter(), 2)) == made


# --- delete ----------------------------------------------------------------------------------------


async def test_delete_and_not_found(store: Storage) -> None:
    await fill(store, 3)
    await store.create(Kind.SHELL, "urn:sm:001", doc("urn:sm:001"), Index(id_short="001"))
    await store.delete(Kind.SUBMODEL, "urn:sm:001")
    assert await store.get(Kind.SUBMODEL, "urn:sm:001") is None
    assert await store.count(Kind.SUBMODEL) == 2
    assert (await store.page(Kind.SUBMODEL, Filter(id_short="001"), 10, None)).items == []
    # The shell with the same id is untouched.
    assert await store.get(Kind.SHELL, "urn:sm:001") == doc("urn:sm:001")
    with pytest.raises(NotFound):
        await store.delete(Kind.SUBMODEL, "urn:sm:001")
    with pytest.raises(NotFound):
        await store.delete(Kind.CONCEPT_DESCRIPTION, "urn:never")
    assert await store.count(Kind.SUBMODEL) == 2
    # A deleted id can be created again.
    await store.create(Kind.SUBMODEL, "urn:sm:001", doc("urn:sm:001", again=True), Index())
    assert await store.get(Kind.SUBMODEL, "urn:sm:001") == doc("urn:sm:001", again=True)


async def test_delete_removes_index_keys(store: Storage) -> None:
    pair = ("globalAssetId", "urn:asset:1")
    await store.create(Kind.SHELL, "urn:a", doc("urn:a"), Index(asset_ids=(pair,)))
    await store.delete(Kind.SHELL, "urn:a")
    assert (await store.page(Kind.SHELL, Filter(asset_ids=(pair,)), 10, None)).items == []
    await store.create(Kind.SHELL, "urn:b", doc("urn:b"), Index())
    assert (await store.page(Kind.SHELL, Filter(asset_ids=(pair,)), 10, None)).items == []


# --- pagination ------------------------------------------------------------------------------------


async def test_empty_page(store: Storage) -> None:
    assert await store.page(Kind.SHELL, Filter(), 10, None) == Page([], None)


@pytest.mark.parametrize(("count", "limit", "pages"), [(25, 7, 4), (20, 10, 2), (10, 10, 1), (3, 100, 1), (1, 1, 1)])
async def test_pages_in_order_without_gaps(store: Storage, count: int, limit: int, pages: int) -> None:
    made = await fill(store, count)
    await fill(store, 4, kind=Kind.SHELL, prefix="urn:shell:")
    seen: list[bytes] = []
    cursor: str | None = None
    cursors_seen: list[str] = []
    for number in range(1, pages + 1):
        page = await store.page(Kind.SUBMODEL, Filter(), limit, cursor)
        seen.extend(page.items)
        if number < pages:
            assert len(page.items) == limit
            assert page.cursor is not None
            cursors_seen.append(page.cursor)
            cursor = page.cursor
        else:
            assert page.cursor is None, "the last page must not carry a cursor"
    assert ids(seen) == made
    assert len(set(cursors_seen)) == len(cursors_seen)
    # Deterministic: the same cursor gives the same page again.
    if cursors_seen:
        first = await store.page(Kind.SUBMODEL, Filter(), limit, cursors_seen[0])
        again = await store.page(Kind.SUBMODEL, Filter(), limit, cursors_seen[0])
        assert first == again


@pytest.mark.parametrize("bad", ["garbage!", "c2VxOng", "Zm9vOjEy", "", "c2VxOi0x"])
async def test_bad_cursor_raises_value_error(store: Storage, bad: str) -> None:
    await fill(store, 2)
    if bad == "":
        # An empty cursor means "from the start", like None.
        assert len((await store.page(Kind.SUBMODEL, Filter(), 10, bad)).items) == 2
        return
    with pytest.raises(ValueError):
        await store.page(Kind.SUBMODEL, Filter(), 10, bad)


async def test_page_with_deletes_and_inserts_in_between(store: Storage) -> None:
    made = await fill(store, 12)
    first = await store.page(Kind.SUBMODEL, Filter(), 5, None)
    assert ids(first.items) == made[:5]
    assert first.cursor is not None
    await store.delete(Kind.SUBMODEL, made[4])  # the item the cursor points at
    await store.delete(Kind.SUBMODEL, made[2])  # an item already seen
    await store.delete(Kind.SUBMODEL, made[7])  # an item not yet seen
    await store.create(Kind.SUBMODEL, "urn:sm:new", doc("urn:sm:new"), Index())
    rest: list[bytes] = []
    cursor: str | None = first.cursor
    while cursor is not None:
        page = await store.page(Kind.SUBMODEL, Filter(), 5, cursor)
        rest.extend(page.items)
        cursor = page.cursor
    assert ids(rest) == [*made[5:7], *made[8:], "urn:sm:new"]
    # A cursor stays valid after everything up to and including its item is gone.
    for ident in made[:4] + made[5:7]:
        if ident != made[2]:
            await store.delete(Kind.SUBMODEL, ident)
    page = await store.page(Kind.SUBMODEL, Filter(), 100, first.cursor)
    assert ids(page.items) == [*made[8:], "urn:sm:new"]
    assert page.cursor is None


async def test_cursor_past_the_end(store: Storage) -> None:
    await fill(store, 3)
    page = await store.page(Kind.SUBMODEL, Filter(), 10, cursors.encode(10**9))
    assert page == Page([], None)


async def test_deleted_ids_keep_order_after_recreate(store: Storage) -> None:
    made = await fill(store, 3)
    await store.delete(Kind.SUBMODEL, made[0])
    await store.create(Kind.SUBMODEL, made[0], doc(made[0]), Index())
    # A re-created identifiable is a new item: it goes to the end.
    assert ids(await walk(store, Kind.SUBMODEL, Filter(), 2)) == [made[1], made[2], made[0]]


# --- filters ---------------------------------------------------------------------------------------


async def _filter_fixture(store: Storage) -> None:
    gid = "globalAssetId"
    rows = [
        ("urn:s1", Index("press", "urn:sem:np", ((gid, "urn:asset:1"), ("serial", "S1")), (("isCaseOf", "urn:c1"),))),
        ("urn:s2", Index("press", "urn:sem:td", ((gid, "urn:asset:2"), ("serial", "S1")), ())),
        ("urn:s3", Index("line", "urn:sem:np", ((gid, "urn:asset:1"), ("serial", "S3")), (("isCaseOf", "urn:c2"),))),
        ("urn:s4", Index(None, None, (), (("isCaseOf", "urn:c1"), ("dataSpecificationRef", "urn:ds")))),
    ]
    for ident, index in rows:
        await store.create(Kind.SHELL, ident, doc(ident), index)
    # Same index values under another kind must never match a shell query and vice versa.
    await store.create(Kind.SUBMODEL, "urn:other", doc("urn:other"), rows[0][1])


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter(), ["urn:s1", "urn:s2", "urn:s3", "urn:s4"]),
        (Filter(id_short="press"), ["urn:s1", "urn:s2"]),
        (Filter(id_short="nothing"), []),
        (Filter(semantic_id="urn:sem:np"), ["urn:s1", "urn:s3"]),
        (Filter(id_short="press", semantic_id="urn:sem:np"), ["urn:s1"]),
        (Filter(asset_ids=(("globalAssetId", "urn:asset:1"),)), ["urn:s1", "urn:s3"]),
        (Filter(asset_ids=(("serial", "S1"),)), ["urn:s1", "urn:s2"]),
        # Every pair is required.
        (Filter(asset_ids=(("globalAssetId", "urn:asset:1"), ("serial", "S1"))), ["urn:s1"]),
        (Filter(asset_ids=(("globalAssetId", "urn:asset:2"), ("serial", "S3"))), []),
        # Name and value must match as one pair, not separately.
        (Filter(asset_ids=(("serial", "urn:asset:1"),)), []),
        (Filter(refs=(("isCaseOf", "urn:c1"),)), ["urn:s1", "urn:s4"]),
        (Filter(refs=(("isCaseOf", "urn:c1"), ("dataSpecificationRef", "urn:ds"))), ["urn:s4"]),
        # Asset ids and refs are separate categories.
        (Filter(asset_ids=(("isCaseOf", "urn:c1"),)), []),
        (Filter(id_short="press", asset_ids=(("serial", "S1"),), refs=(("isCaseOf", "urn:c1"),)), ["urn:s1"]),
    ],
)
async def test_filters(store: Storage, flt: Filter, expected: list[str]) -> None:
    await _filter_fixture(store)
    assert ids((await store.page(Kind.SHELL, flt, 100, None)).items) == expected
    # The same result, one item per page.
    assert ids(await walk(store, Kind.SHELL, flt, 1)) == expected


# --- files -----------------------------------------------------------------------------------------


async def test_files(store: Storage) -> None:
    await store.create(Kind.SHELL, "urn:a", doc("urn:a"), Index())
    await store.create(Kind.SHELL, "urn:b", doc("urn:b"), Index())
    png = StoredFile("image/png", "thumb.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert await store.get_file(Kind.SHELL, "urn:a", "thumbnail") is None
    await store.put_file(Kind.SHELL, "urn:a", "thumbnail", png)
    assert await store.get_file(Kind.SHELL, "urn:a", "thumbnail") == png
    # Keyed by (kind, id, name).
    assert await store.get_file(Kind.SHELL, "urn:b", "thumbnail") is None
    assert await store.get_file(Kind.SUBMODEL, "urn:a", "thumbnail") is None
    assert await store.get_file(Kind.SHELL, "urn:a", "other") is None
    # Putting again replaces.
    pdf = StoredFile("application/pdf", "manual.pdf", b"%PDF-1.7")
    await store.put_file(Kind.SHELL, "urn:a", "thumbnail", pdf)
    assert await store.get_file(Kind.SHELL, "urn:a", "thumbnail") == pdf
    assert await store.delete_file(Kind.SHELL, "urn:a", "thumbnail") is True
    assert await store.delete_file(Kind.SHELL, "urn:a", "thumbnail") is False
    assert await store.get_file(Kind.SHELL, "urn:a", "thumbnail") is None


async def test_delete_removes_the_identifiables_files(store: Storage) -> None:
    await store.create(Kind.SUBMODEL, "urn:a", doc("urn:a"), Index())
    await store.create(Kind.SUBMODEL, "urn:b", doc("urn:b"), Index())
    await store.create(Kind.SHELL, "urn:a", doc("urn:a"), Index())
    file = StoredFile("text/plain", "a.txt", b"hello")
    await store.put_file(Kind.SUBMODEL, "urn:a", "Docs.File1", file)
    await store.put_file(Kind.SUBMODEL, "urn:a", "Docs.File2", file)
    await store.put_file(Kind.SUBMODEL, "urn:b", "Docs.File1", file)
    await store.put_file(Kind.SHELL, "urn:a", "thumbnail", file)
    await store.delete(Kind.SUBMODEL, "urn:a")
    assert await store.get_file(Kind.SUBMODEL, "urn:a", "Docs.File1") is None
    assert await store.get_file(Kind.SUBMODEL, "urn:a", "Docs.File2") is None
    assert await store.get_file(Kind.SUBMODEL, "urn:b", "Docs.File1") == file
    assert await store.get_file(Kind.SHELL, "urn:a", "thumbnail") == file
    # A re-created identifiable does not inherit the old files.
    await store.create(Kind.SUBMODEL, "urn:a", doc("urn:a"), Index())
    assert await store.get_file(Kind.SUBMODEL, "urn:a", "Docs.File1") is None


# --- persistence -----------------------------------------------------------------------------------


async def test_survives_close_and_reopen(make_storage: Factory, anyio_backend: str) -> None:
    first = make_storage()
    await first.open()
    made = await fill(first, 4)
    await first.update(Kind.SUBMODEL, made[1], lambda old: (doc(made[1], n=7), Index(id_short="seven")))
    await first.delete(Kind.SUBMODEL, made[3])
    await first.put_file(Kind.SUBMODEL, made[0], "f", StoredFile("text/plain", "f.txt", b"kept"))
    await first.close()

    second = make_storage()
    await second.open()  # opening an existing store again keeps its data (schema creation is idempotent)
    try:
        assert await second.get(Kind.SUBMODEL, made[1]) == doc(made[1], n=7)
        assert await second.get(Kind.SUBMODEL, made[3]) is None
        assert await second.count(Kind.SUBMODEL) == 3
        assert ids((await second.page(Kind.SUBMODEL, Filter(id_short="seven"), 10, None)).items) == [made[1]]
        assert await second.get_file(Kind.SUBMODEL, made[0], "f") == StoredFile("text/plain", "f.txt", b"kept")
        # New items go after the old ones.
        await second.create(Kind.SUBMODEL, "urn:sm:late", doc("urn:sm:late"), Index())
        assert ids(await walk(second, Kind.SUBMODEL, Filter(), 2)) == [*made[:3], "urn:sm:late"]
    finally:
        await second.close()


# --- PostgreSQL: several replicas on one database ---------------------------------------------------


@pytest.fixture
def pg_dsn(postgres_dsn: str) -> str:
    _reset_postgres(postgres_dsn)
    return postgres_dsn


@pytest.fixture
async def replicas(pg_dsn: str, anyio_backend: str) -> AsyncIterator[tuple[Storage, Storage]]:
    from twin_server.storage.postgres import PostgresStorage

    one, two = PostgresStorage(pg_dsn, max_size=8), PostgresStorage(pg_dsn, max_size=8)
    # Both start at once on an empty database: schema creation must not race.
    await asyncio.gather(one.open(), two.open())
    try:
        yield one, two
    finally:
        await asyncio.gather(one.close(), two.close())


async def test_replicas_see_each_others_writes(replicas: tuple[Storage, Storage]) -> None:
    one, two = replicas
    await one.create(Kind.SHELL, "urn:a", doc("urn:a", n=1), Index(id_short="a"))
    assert await two.get(Kind.SHELL, "urn:a") == doc("urn:a", n=1)
    await two.update(Kind.SHELL, "urn:a", lambda old: (doc("urn:a", n=2), Index(id_short="b")))
    assert await one.get(Kind.SHELL, "urn:a") == doc("urn:a", n=2)
    assert ids((await one.page(Kind.SHELL, Filter(id_short="b"), 10, None)).items) == ["urn:a"]
    await two.put_file(Kind.SHELL, "urn:a", "thumbnail", StoredFile("image/png", "t.png", b"png"))
    assert await one.get_file(Kind.SHELL, "urn:a", "thumbnail") is not None
    with pytest.raises(Conflict):
        await two.create(Kind.SHELL, "urn:a", doc("urn:a"), Index())
    await one.delete(Kind.SHELL, "urn:a")
    assert await two.get(Kind.SHELL, "urn:a") is None
    assert await two.get_file(Kind.SHELL, "urn:a", "thumbnail") is None
    with pytest.raises(NotFound):
        await two.delete(Kind.SHELL, "urn:a")
    # A cursor issued by one replica works on the other.
    await fill(one, 6)
    page = await one.page(Kind.SUBMODEL, Filter(), 3, None)
    assert page.cursor is not None
    rest = await two.page(Kind.SUBMODEL, Filter(), 3, page.cursor)
    assert len(rest.items) == 3
    assert rest.cursor is None


async def test_concurrent_updates_from_two_replicas_lose_none(replicas: tuple[Storage, Storage]) -> None:
    one, two = replicas
    await one.create(Kind.SUBMODEL, "urn:counter", doc("urn:counter", n=0), Index(id_short="counter"))

    def increment(old: bytes) -> tuple[bytes, Index]:
        value = json.loads(old)
        value["n"] += 1
        return json.dumps(value, sort_keys=True).encode(), Index(id_short="counter")

    async def bump(store: Storage) -> bytes:
        return await store.update(Kind.SUBMODEL, "urn:counter", increment)

    results = await asyncio.gather(*(bump(store) for _ in range(50) for store in (one, two)))
    assert json.loads(await one.get(Kind.SUBMODEL, "urn:counter") or b"{}")["n"] == 100
    # Each update saw a distinct predecessor: the returned values are exactly 1..100.
    assert sorted(json.loads(body)["n"] for body in results) == list(range(1, 101))


async def test_concurrent_creates_of_one_id_admit_one(replicas: tuple[Storage, Storage]) -> None:
    one, two = replicas

    async def create(store: Storage, n: int) -> str:
        try:
            await store.create(Kind.SHELL, "urn:race", doc("urn:race", n=n), Index(id_short=f"r{n}"))
        except Conflict:
            return "conflict"
        return "created"

    outcomes = await asyncio.gather(*(create(store, n) for n in range(10) for store in (one, two)))
    assert sorted(outcomes) == ["conflict"] * 19 + ["created"]
    assert await one.count(Kind.SHELL) == 1
    winner = json.loads(await two.get(Kind.SHELL, "urn:race") or b"{}")["n"]
    # Only the winner's index rows exist.
    assert ids(await walk(two, Kind.SHELL, Filter(id_short=f"r{winner}"), 10)) == ["urn:race"]
    for n in range(10):
        if n != winner:
            assert (await two.page(Kind.SHELL, Filter(id_short=f"r{n}"), 10, None)).items == []


async def test_update_racing_a_delete(replicas: tuple[Storage, Storage]) -> None:
    one, two = replicas
    await one.create(Kind.SUBMODEL, "urn:gone", doc("urn:gone", n=0), Index())

    async def update() -> str:
        try:
            await two.update(Kind.SUBMODEL, "urn:gone", lambda old: (old, Index()))
        except NotFound:
            return "not found"
        return "updated"

    _, *outcomes = await asyncio.gather(one.delete(Kind.SUBMODEL, "urn:gone"), *(update() for _ in range(5)))
    assert set(outcomes) <= {"updated", "not found"}
    assert await two.get(Kind.SUBMODEL, "urn:gone") is None


async def test_unreachable_database_is_a_storage_error(anyio_backend: str) -> None:
    pytest.importorskip("psycopg")
    from tests.pg import free_port
    from twin_server.storage.postgres import PostgresStorage

    storage = PostgresStorage(f"host=127.0.0.1 port={free_port()} user=postgres dbname=none", timeout=1)
    with pytest.raises(StorageError):
        await storage.open()
    with pytest.raises(RuntimeError):
        await storage.get(Kind.SHELL, "urn:a")
