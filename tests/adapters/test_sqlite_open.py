"""Opening a SQLite file: ``create=False`` never makes a database, ``read_only=True`` never writes.

``SqliteStore(path)`` keeps creating and migrating as it always did; the
keyword options are what the command line uses so that a mistyped path, an
empty file or another program's database is refused untouched, and a file
that cannot be written is read without a migration.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from adapters.sqlite import SqliteStore
from adapters.sqlite.errors import NoDatabaseError, SchemaVersionError
from adapters.sqlite.schema import LATEST_VERSION, migrate
from kernel.effects import InsertRun
from kernel.errors import StoreError
from tests.harness import make_run


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture
def database(path: Path) -> Iterator[Path]:
    """A workflow-kernel database with one run, closed, then made read-only (chmod 444)."""
    store = SqliteStore(path)
    with store.transaction() as tx:
        tx.apply([InsertRun(make_run())])  # run-1
    store.close()
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    yield path
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(path: Path, **options: Any) -> NoDatabaseError:
    with pytest.raises(NoDatabaseError) as raised:
        SqliteStore(path, **options)
    return raised.value


def test_the_default_still_creates_and_migrates_even_an_empty_file(path: Path) -> None:
    """Backward compatible: a new path, or a 0-byte file (``mkstemp``), becomes a database."""
    path.touch()
    store = SqliteStore(path)
    assert store.list_runs() == []
    store.close()


@pytest.mark.parametrize("options", [{"create": False}, {"read_only": True}])
def test_a_missing_file_is_refused_and_not_created(path: Path, options: dict[str, Any]) -> None:
    error = refused(path, **options)
    assert error.problem == "missing"
    assert str(error).startswith(f"SQLite database {str(path)!r} does not exist")
    assert not path.exists()


@pytest.mark.parametrize("options", [{"create": False}, {"read_only": True}])
def test_an_empty_file_is_refused_and_left_empty(path: Path, options: dict[str, Any]) -> None:
    path.touch()
    error = refused(path, **options)
    assert error.problem == "empty"
    assert "is empty (0 bytes), not a workflow-kernel database" in str(error)
    assert path.stat().st_size == 0
    assert sorted(os.listdir(path.parent)) == ["app.db"]  # no -wal, no -shm


@pytest.mark.parametrize("options", [{"create": False}, {"read_only": True}])
def test_another_programs_database_is_refused_untouched(
    path: Path, options: dict[str, Any]
) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()
    before = digest(path)
    error = refused(path, **options)
    assert error.problem == "no schema"
    assert "holds no workflow-kernel schema" in str(error)
    assert digest(path) == before


@pytest.mark.parametrize("options", [{"create": False}, {"read_only": True}])
def test_a_file_that_is_no_database_is_a_store_error(path: Path, options: dict[str, Any]) -> None:
    path.write_bytes(b"hello, this is not SQLite " * 100)
    with pytest.raises(StoreError, match="is corrupt or is not an SQLite database"):
        SqliteStore(path, **options)


def test_create_false_opens_an_existing_database_and_upgrades_an_older_schema(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=1)
    store = SqliteStore(path, create=False)
    assert store.list_runs() == []
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == (
            LATEST_VERSION
        )


def test_read_only_reads_a_read_only_file_and_writes_nothing(database: Path) -> None:
    before = digest(database)
    store = SqliteStore(database, read_only=True)
    assert store.read_only
    assert [run.id for run in store.list_runs()] == ["run-1"]
    assert store.get_run("run-1") is not None
    with pytest.raises(StoreError, match="read-only"):
        store.put_blob("key", 1)
    store.close()
    assert digest(database) == before


def test_read_only_refuses_an_older_schema_and_names_both_versions(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=LATEST_VERSION - 1)
    before = digest(path)
    with pytest.raises(SchemaVersionError) as raised:
        SqliteStore(path, read_only=True)
    message = str(raised.value)
    assert f"has schema version {LATEST_VERSION - 1}, older than version {LATEST_VERSION}" in (
        message
    )
    assert "opened read-only" in message
    assert digest(path) == before


def test_read_only_refuses_a_newer_schema(path: Path) -> None:
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
        conn.commit()
    with pytest.raises(SchemaVersionError, match="schema version 99, newer than version"):
        SqliteStore(path, read_only=True)


def test_read_only_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="read_only: a ':memory:' database"):
        SqliteStore(":memory:", read_only=True)


class _NoShm:
    """A connection whose first read fails as SQLite does for a WAL file in a read-only
    directory (it cannot make the -shm file)."""

    def execute(self, *_: object) -> None:
        error = sqlite3.OperationalError("attempt to write a readonly database")
        error.sqlite_errorname = "SQLITE_READONLY_DIRECTORY"
        raise error

    def close(self) -> None:
        pass


def test_read_only_falls_back_to_immutable_when_no_shm_file_can_be_made(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root may write anywhere, so the read-only directory is simulated."""
    real = sqlite3.connect
    targets: list[str] = []

    def connect(target: str, **options: Any) -> Any:
        targets.append(target)
        return _NoShm() if target.endswith("mode=ro") else real(target, **options)

    monkeypatch.setattr(sqlite3, "connect", connect)
    store = SqliteStore(database, read_only=True)
    assert [run.id for run in store.list_runs()] == ["run-1"]
    store.close()
    assert [target.rsplit("?", 1)[1] for target in targets] == ["mode=ro", "mode=ro&immutable=1"]
