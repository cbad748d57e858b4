"""The store extension point as a contract: a store written from the documentation of
:mod:`shuffle_kit.stores.base` alone (SQLite, its data shared by every handle on the file)
passes the store suite, and the suite catches a store that cannot be sent to a worker."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Sequence

import pytest
from hypothesis import settings

import shuffle_kit as sk
from shuffle_kit.stores import ReentrantLock, Store
from shuffle_kit.stores.base import Record
from shuffle_kit.testing import StoreTests


class SQLiteStore(Store):
    """Records in a table; iset keys and batch ids in tables of their own, so every handle on
    the file (or a pickled copy in another process) sees them."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._open()

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kb BLOB, value BLOB);"
            "CREATE INDEX IF NOT EXISTS by_key ON records (kb, seq);"
            "CREATE TABLE IF NOT EXISTS isets (kb BLOB PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS batches (id BLOB PRIMARY KEY);"
        )

    def _transaction(self, statements: Sequence[tuple[str, Sequence]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                db.executemany(sql, rows)
        except BaseException:
            db.execute("ROLLBACK")  # all or nothing
            raise
        db.execute("COMMIT")

    def _append(self, kbs: Sequence[bytes], values: Sequence[Record], batch_id: bytes | None) -> None:
        if batch_id is not None:
            if self._db.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone():
                return
        statements = [("INSERT INTO records (kb, value) VALUES (?, ?)", [(kb, bytes(v)) for kb, v in zip(kbs, values)])]
        if batch_id is not None:
            statements.append(("INSERT INTO batches VALUES (?)", [(batch_id,)]))
        self._transaction(statements)

    def _records(self, kbs: Sequence[bytes]) -> list[list[Record]]:
        query = "SELECT value FROM records WHERE kb = ? ORDER BY seq"
        return [[row[0] for row in self._db.execute(query, (kb,))] for kb in kbs]

    def _iset(self, kb: bytes, value: Record) -> None:
        if self._db.execute("SELECT 1 FROM isets WHERE kb = ?", (kb,)).fetchone():
            return
        self._transaction([
            ("DELETE FROM records WHERE kb = ?", [(kb,)]),
            ("INSERT INTO records (kb, value) VALUES (?, ?)", [(kb, bytes(value))]),
            ("INSERT INTO isets VALUES (?)", [(kb,)]),
        ])

    def _delete(self, kbs: Sequence[bytes]) -> None:
        rows = [(kb,) for kb in kbs]
        self._transaction([("DELETE FROM records WHERE kb = ?", rows), ("DELETE FROM isets WHERE kb = ?", rows)])

    def _drop(self) -> None:
        self._transaction([(f"DELETE FROM {table}", [()]) for table in ("records", "isets", "batches")])

    def close(self) -> None:
        self._db.close()

    # an open connection does not pickle: the copy opens the same file
    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


@pytest.fixture(autouse=True, scope="module")
def _directory(tmp_path_factory):
    TestSQLiteStore.directory = str(tmp_path_factory.mktemp("sqlite"))


class TestSQLiteStore(StoreTests):
    directory = ""
    made = 0

    def make_store(self):
        TestSQLiteStore.made += 1
        return SQLiteStore(f"{self.directory}/{self.made}.db")

    def reopen(self, store):
        return SQLiteStore(store.path)


class UnpicklableSQLiteStore(SQLiteStore):
    """The same store without the pickling hooks: the connection goes into the pickle."""

    __getstate__ = Store.__getstate__
    __setstate__ = Store.__setstate__


def test_the_suite_refuses_a_store_that_cannot_be_pickled(tmp_path):
    class Suite(StoreTests):
        settings = settings(max_examples=20, stateful_step_count=10, deadline=None, database=None)

        def make_store(self):
            return UnpicklableSQLiteStore(str(tmp_path / "u.db"))

    with pytest.raises(AssertionError, match="does not pickle"):
        Suite().test_store_matches_the_model()


def test_the_base_class_makes_the_lock_and_a_copy_gets_its_own():
    store = sk.Dict()
    assert isinstance(store.lock, ReentrantLock)
    store.append({"a": b"1"})
    copy = pickle.loads(pickle.dumps(store))
    assert isinstance(copy.lock, ReentrantLock) and copy.lock is not store.lock
    with store.lock:  # held here; the copy's lock is free for another thread
        import threading

        t = threading.Thread(target=lambda: copy.append({"a": b"2"}))
        t.start()
        t.join(30)
        assert not t.is_alive()
    assert (store.get("a"), copy.get("a")) == (b"1", b"12")
