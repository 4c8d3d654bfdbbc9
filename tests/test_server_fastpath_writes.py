"""The write path behind the fast lane: Property values spliced into the stored bytes (twin_server/value_splice.py)
give the very bytes and errors of the full parse-change-serialise path, and the SQLite store's group commit
(twin_server/storage/sqlite.py) keeps every call atomic: a failing write in a shared transaction changes
nothing, the others are committed before they return."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.server import REPRESENTATIVE
from twin_server import values
from twin_server.errors import ApiError
from twin_server.idshort_path import locate, walk
from twin_server.repository import Repository, dumps, index_of
from twin_server.storage.base import Index, Kind, NotFound, StorageError
from twin_server.storage.sqlite import SqliteStorage
from twin_server.value_splice import Splicer

SUBMODELS = orjson.loads(REPRESENTATIVE.read_bytes())["submodels"]
ALL_KINDS = next(s for s in SUBMODELS if s["id"] == "urn:example:sm:press-01:AllKinds")


def full_path(old: bytes, tokens: list[Any], where: str, value: Any) -> bytes:
    doc = orjson.loads(old)
    values.apply_element_value(locate(doc, tokens, where).element, value, where)
    return dumps(doc)


def splicer(bytes_per_value: int = 0) -> Splicer:
    """A splicer that splices whatever the size (the server's leaves small documents to the full path)."""
    return Splicer(lambda doc: index_of(Kind.SUBMODEL, doc), bytes_per_value)


def property_paths(doc: dict[str, Any]) -> list[tuple[list[Any], str, dict[str, Any]]]:
    out = []
    for tokens, element in walk(doc, []):
        if element.get("modelType") == "Property":
            where = "".join(f"[{t}]" if isinstance(t, int) else (f".{t}" if i else t) for i, t in enumerate(tokens))
            out.append((tokens, where, element))
    return out


SAMPLES: dict[str, list[Any]] = {
    "xs:double": [2.5, "3.25", {"_": 1}], "xs:long": [7, "8", 1.5], "xs:boolean": [False, "true", 3],
    "xs:string": ["text", 'with "quotes"', None], "xs:int": [5, "x", 2**40],
}


@pytest.mark.parametrize("doc", SUBMODELS, ids=[s["id"] for s in SUBMODELS])
def test_spliced_bytes_and_errors_are_the_full_paths(doc: dict[str, Any]) -> None:
    """For every Property of the representative submodels and values that fit, do not fit or need escapes:
    the splicer gives the full path's bytes, or its error, or leaves it to the full path."""
    body = dumps(doc)
    sp = splicer()
    spliced_any = False
    for tokens, where, element in property_paths(doc):
        for value in SAMPLES.get(element.get("valueType", "xs:string"), [1, "1"]):
            sample = {element["idShort"]: value} if value == "text" else value  # the wrapped form too
            try:
                expected: bytes | str = full_path(body, tokens, where, sample)
            except ApiError as exc:
                expected = exc.text
            try:
                done = sp.splice(doc["id"], body, [(tuple(tokens), where, sample)], element_form=True)
            except ApiError as exc:
                assert exc.text == expected
                continue
            if done is None:
                continue
            spliced_any = True
            assert done == (expected, index_of(Kind.SUBMODEL, orjson.loads(body)))
            body = done[0]  # the next write starts from this version
    assert spliced_any or not property_paths(doc)


def test_submodel_value_patch_is_spliced_alike() -> None:
    body = dumps(ALL_KINDS)
    update = {"Temperature": 50.5, "CycleCount": 9, "Running": False}
    doc = orjson.loads(body)
    values.apply_submodel_value(doc, update)
    done = splicer().splice(ALL_KINDS["id"], body, [((k,), k, v) for k, v in update.items()], element_form=False)
    assert done is not None and done[0] == dumps(doc)
    # The element form ({idShort: value}) is not a member's value: the same error as the full path.
    with pytest.raises(ApiError) as refused:
        splicer().splice(ALL_KINDS["id"], body, [(("Temperature",), "Temperature", {"Temperature": 1.5})],
                         element_form=False)
    with pytest.raises(ApiError) as expected:
        values.apply_submodel_value(orjson.loads(body), {"Temperature": {"Temperature": 1.5}})
    assert refused.value.text == expected.value.text
    # A collection in the update: the full path does it.
    assert splicer().splice(ALL_KINDS["id"], body, [(("Hydraulics",), "Hydraulics", {})], element_form=False) is None


def test_many_values_in_a_small_submodel_take_the_full_path() -> None:
    body = dumps(ALL_KINDS)
    update = [(("Temperature",), "Temperature", 1.5), (("CycleCount",), "CycleCount", 2)]
    assert Splicer(lambda doc: index_of(Kind.SUBMODEL, doc)).splice(ALL_KINDS["id"], body, update[:1],
                                                                     element_form=False) is not None
    assert Splicer(lambda doc: index_of(Kind.SUBMODEL, doc), len(body)).splice(ALL_KINDS["id"], body, update,
                                                                               element_form=False) is None


def test_stored_bytes_not_canonical_take_the_full_path() -> None:
    body = orjson.dumps(ALL_KINDS, option=orjson.OPT_INDENT_2)
    sp = splicer()
    assert sp.splice(ALL_KINDS["id"], body, [(("Temperature",), "Temperature", 1.5)], element_form=True) is None
    assert sp.splice(ALL_KINDS["id"], body, [(("Temperature",), "Temperature", 1.5)], element_form=True) is None


# Group commit ------------------------------------------------------------------------------------------


def change_temperature(value: Any) -> Callable[[bytes], tuple[bytes, Index]]:
    def change(old: bytes) -> tuple[bytes, Index]:
        doc = orjson.loads(old)
        values.apply_element_value(locate(doc, ["Temperature"], "Temperature").element, value, "Temperature")
        return dumps(doc), index_of(Kind.SUBMODEL, doc)

    return change


def stored_temperature(path: Path) -> str:
    with sqlite3.connect(path) as db:
        (body,) = db.execute("SELECT body FROM docs WHERE id = ?", (ALL_KINDS["id"],)).fetchone()
    value: str = next(e for e in orjson.loads(body)["submodelElements"] if e["idShort"] == "Temperature")["value"]
    return value


@pytest.mark.parametrize("durability", ["normal", "fsync"])
def test_group_commit_keeps_each_write_atomic(tmp_path: Path, durability: str) -> None:
    """Writes started together share transactions; the failing ones (a refused value, a missing id) change
    nothing, and each successful one is in the file when its call returns."""
    path = tmp_path / "twins.db"

    async def main() -> None:
        storage = SqliteStorage(path, durability=durability)  # type: ignore[arg-type]
        await storage.open()
        try:
            await storage.create(Kind.SUBMODEL, ALL_KINDS["id"], dumps(ALL_KINDS), index_of(Kind.SUBMODEL, ALL_KINDS))
            calls = []
            for i in range(40):
                if i % 3 == 1:
                    calls.append(storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature("hot")))
                elif i % 7 == 3:
                    calls.append(storage.update(Kind.SUBMODEL, "urn:no:such", change_temperature(1.0)))
                else:
                    calls.append(storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature(float(i))))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i, result in enumerate(results):
                if i % 3 == 1:
                    assert isinstance(result, ApiError) and result.status == 400
                elif i % 7 == 3:
                    assert isinstance(result, NotFound)
                else:
                    assert isinstance(result, bytes)
            last_ok = max(i for i in range(40) if i % 3 != 1 and i % 7 != 3)
            assert stored_temperature(path) == str(float(last_ok))
            # Each call returns after its commit: another connection sees it at once.
            await storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature(77.5))
            assert stored_temperature(path) == "77.5"
            with pytest.raises(ApiError):
                await storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature("hot"))
            assert stored_temperature(path) == "77.5"
        finally:
            await storage.close()

    asyncio.run(main())


def test_fsync_writes_that_arrive_during_a_commit_form_the_next_transaction(tmp_path: Path) -> None:
    """With durability fsync the COMMIT runs on a thread: writes submitted while it is in flight wait and are
    committed next, each still atomic; one whose caller gave up before it ran is not made; close() commits
    what is still waiting."""
    path = tmp_path / "twins.db"

    async def main() -> None:
        storage = SqliteStorage(path, durability="fsync")
        await storage.open()
        try:
            sid = ALL_KINDS["id"]
            await storage.create(Kind.SUBMODEL, sid, dumps(ALL_KINDS), index_of(Kind.SUBMODEL, ALL_KINDS))
            writer = storage._writer
            assert writer is not None
            first = asyncio.ensure_future(storage.update(Kind.SUBMODEL, sid, change_temperature(1.5)))
            await asyncio.sleep(0)  # first's write runs and opens the transaction
            await asyncio.sleep(0)  # its commit goes to the thread; done is only seen on a later loop turn
            assert writer._inflight is not None
            later = [asyncio.ensure_future(storage.update(Kind.SUBMODEL, sid, change_temperature(v)))
                     for v in (2.5, "hot", 3.5)]
            given_up = asyncio.ensure_future(storage.update(Kind.SUBMODEL, sid, change_temperature(9.5)))
            await asyncio.sleep(0)
            assert len(writer._queued) == 4
            given_up.cancel()
            assert isinstance(await first, bytes)
            results = await asyncio.gather(*later, return_exceptions=True)
            assert isinstance(results[0], bytes) and isinstance(results[2], bytes)
            assert isinstance(results[1], ApiError) and results[1].status == 400
            with pytest.raises(asyncio.CancelledError):
                await given_up
            assert stored_temperature(path) == "3.5"
            # queued at close: committed before close returns
            await storage.update(Kind.SUBMODEL, sid, change_temperature(4.5))
            pending = asyncio.ensure_future(storage.update(Kind.SUBMODEL, sid, change_temperature(5.5)))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            queued = asyncio.ensure_future(storage.update(Kind.SUBMODEL, sid, change_temperature(6.5)))
            await asyncio.sleep(0)
            assert writer._queued
        finally:
            await storage.close()
        assert isinstance(pending.result(), bytes) and isinstance(queued.result(), bytes)
        assert stored_temperature(path) == "6.5"

    asyncio.run(main())


@pytest.mark.parametrize("durability", ["normal", "fsync"])
def test_a_locked_database_fails_the_write_and_stores_nothing(tmp_path: Path, durability: str) -> None:
    """Another connection holds the write lock past the busy timeout: the write reports the error, nothing
    is stored, and the next write goes through."""
    path = tmp_path / "twins.db"

    async def main() -> None:
        storage = SqliteStorage(path, durability=durability)  # type: ignore[arg-type]
        await storage.open()
        try:
            await storage.create(Kind.SUBMODEL, ALL_KINDS["id"], dumps(ALL_KINDS), index_of(Kind.SUBMODEL, ALL_KINDS))
            assert storage._write_db is not None
            storage._write_db.execute("PRAGMA busy_timeout=50")
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StorageError):
                    await storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature(5.5))
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert stored_temperature(path) == "41.5"
            await storage.update(Kind.SUBMODEL, ALL_KINDS["id"], change_temperature(6.5))
            assert stored_temperature(path) == "6.5"
        finally:
            await storage.close()

    asyncio.run(main())


def test_repository_value_writes_store_what_the_full_path_stores(tmp_path: Path) -> None:
    """Through the repository (spliced where it can) and through a plain change on a copy: the same bytes."""

    async def main() -> None:
        storage = SqliteStorage(tmp_path / "twins.db")
        await storage.open()
        try:
            repo = Repository(storage)
            await repo.create(Kind.SUBMODEL, dumps(ALL_KINDS))
            expected = orjson.loads(await repo.get_bytes(Kind.SUBMODEL, ALL_KINDS["id"]))
            writes: list[tuple[list[str | int], str, Any]] = [
                (["Temperature"], "Temperature", 1.25), (["Hydraulics", "Pressure"], "Hydraulics.Pressure", 180),
                (["Hydraulics", "Pump", "Speed"], "Hydraulics.Pump.Speed", 1500), (["CycleCount"], "CycleCount",
                {"CycleCount": 3}), (["Temperature"], "Temperature", 2.5), (["Readings", 0], "Readings[0]", 4.5)]
            for tokens, path, value in writes:
                reference = copy.deepcopy(expected)
                values.apply_element_value(locate(reference, tokens, path).element, value, path)
                await repo.patch_element_value(ALL_KINDS["id"], tokens, path, value)
                assert await repo.get_bytes(Kind.SUBMODEL, ALL_KINDS["id"]) == dumps(reference)
                expected = reference
            await repo.patch_submodel_value(ALL_KINDS["id"], {"Temperature": 3.5, "Running": True})
            values.apply_submodel_value(expected, {"Temperature": 3.5, "Running": True})
            assert await repo.get_bytes(Kind.SUBMODEL, ALL_KINDS["id"]) == dumps(expected)
        finally:
            await storage.close()

    asyncio.run(main())


def test_double_values_skip_the_regex_but_not_its_verdict() -> None:
    """A JSON float for an xs:double is written as repr() without the XSD regex: always a valid lexical form."""
    import random

    from aas_core3 import types as aas
    from aas_core3 import verification

    rng = random.Random(0)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(5000)]
    floats += [rng.random() * 10.0 ** rng.randint(-320, 300) for _ in range(5000)]
    floats += [0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    for x in floats:
        text = values._lexical(x, "xs:double", "P")
        assert text == repr(x)
        assert verification.value_consistent_with_xsd_type(text, aas.DataTypeDefXSD.DOUBLE), text
    with pytest.raises(ApiError):  # other types keep the check
        values._lexical(1e10, "xs:int", "P")
    with pytest.raises(ApiError):
        values._lexical(float("inf"), "xs:double", "P")
