"""What ``SqliteStore`` promises beyond the conformance suite (SPEC §7).

WAL, versioned migrations, clear errors for bad files, and safety when
several connections (or processes) share one file.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlite_utils import Database

from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES
from adapters.sqlite.schema import LATEST_VERSION, MIGRATIONS, migrate
from kernel.effects import EnqueueJob, InsertRun, InsertStage
from kernel.errors import StoreError
from testing.store_cases.base import at, make_job, make_run, make_stage


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the file, to look at it from outside the store."""
    return sqlite3.connect(path, isolation_level=None)


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    """Every table, index and trigger in the file, with its SQL."""
    with closing(raw(path)) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    return [tuple(row) for row in rows]


def versions_of(path: Path) -> list[tuple[int, str]]:
    """The ``schema_version`` rows of the file."""
    with closing(raw(path)) as conn:
        return conn.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()


def store_with_jobs(path: Path, count: int) -> None:
    """Create the file with one run and ``count`` queued jobs."""
    store = SqliteStore(path)
    with store.transaction() as tx:
        tx.apply(
            [InsertRun(make_run())]
            + [EnqueueJob(make_job(f"job-{i:03}", created=i)) for i in range(count)]
        )
    store.close()


def lease_all(path: str, worker: str) -> list[str]:
    """Lease jobs from the file until none is left (run in threads and processes)."""
    store = SqliteStore(path)
    leased: list[str] = []
    try:
        while True:
            with store.transaction() as tx:
                job = tx.lease_next_job(worker, at(100))
            if job is None:
                return leased
            leased.append(job.id)
    finally:
        store.close()


@contextmanager
def unprivileged() -> Iterator[None]:
    """Drop root's file-permission bypass for the block (no-op for other users)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)  # nobody
    try:
        yield
    finally:
        os.seteuid(0)


# -- pragmas and schema ------------------------------------------------------


def test_file_store_uses_wal(path: Path) -> None:
    """A file store turns on write-ahead logging, which persists in the file."""
    SqliteStore(path).close()
    with closing(raw(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_durability_defaults_to_normal_and_full_can_be_chosen(path: Path) -> None:
    """``synchronous="FULL"`` makes every commit survive a power loss (docs/performance.md)."""
    for setting, level in (("NORMAL", 1), ("FULL", 2)):
        store = SqliteStore(path, synchronous=setting)  # type: ignore[arg-type]
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == level
        store.close()


def test_unknown_durability_setting_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous: expected 'NORMAL' or 'FULL', got 'OFF'"):
        SqliteStore(path, synchronous="OFF")  # type: ignore[arg-type]


def test_the_wal_is_checkpointed_every_10000_pages_unless_told_otherwise(path: Path) -> None:
    """Fewer, larger checkpoints (docs/performance.md); ``checkpoint_pages`` sets it."""
    for pages, expected in ((None, 10_000), (1_000, 1_000), (0, 0)):
        store = SqliteStore(path) if pages is None else SqliteStore(path, checkpoint_pages=pages)
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == expected
        store.close()
    with pytest.raises(ValueError, match="checkpoint_pages: expected an int >= 0, got -1"):
        SqliteStore(path, checkpoint_pages=-1)


def test_foreign_keys_are_enforced_at_commit(path: Path) -> None:
    """A stage of a run that does not exist is refused when the transaction commits."""
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="FOREIGN KEY"), store.transaction() as tx:
        tx.apply([InsertStage(make_stage("ghost", "a"))])
    assert store.get_stages("ghost") == []
    store.close()


def test_schema_version_is_recorded(path: Path) -> None:
    """Each applied migration is a row of ``schema_version``."""
    SqliteStore(path).close()
    assert versions_of(path) == [(m.version, m.name) for m in MIGRATIONS]
    assert versions_of(path)[-1][0] == LATEST_VERSION


def test_reopening_a_file_keeps_its_rows(path: Path) -> None:
    """Data written by one store is there for the next store on the file."""
    store = SqliteStore(path)
    with store.transaction() as tx:
        tx.apply([InsertRun(make_run())])
    store.put_blob("k", {"v": 1})
    store.close()
    again = SqliteStore(path)
    assert again.get_run("run-1") == make_run()
    assert again.get_blob("k") == (True, {"v": 1})
    again.close()


def test_reopening_applies_no_migration_twice(path: Path) -> None:
    """Migrating an up-to-date file changes nothing."""
    SqliteStore(path).close()
    schema, versions = schema_of(path), versions_of(path)
    SqliteStore(path).close()
    assert (schema_of(path), versions_of(path)) == (schema, versions)


@pytest.mark.parametrize("start", range(LATEST_VERSION))
def test_migrating_an_older_file_gives_the_fresh_schema(tmp_path: Path, start: int) -> None:
    """A file at any earlier version, once opened, has exactly a new file's schema."""
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    SqliteStore(fresh).close()
    with closing(sqlite3.connect(old, isolation_level=None)) as conn:
        migrate(Database(conn), str(old), target=start)
    SqliteStore(old).close()
    assert schema_of(old) == schema_of(fresh)
    assert versions_of(old) == versions_of(fresh)


def test_newer_schema_version_is_refused(path: Path) -> None:
    """A file migrated by newer code gives a StoreError naming the file and both versions."""
    SqliteStore(path).close()
    with closing(raw(path)) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
    with pytest.raises(StoreError) as raised:
        SqliteStore(path)
    message = str(raised.value)
    assert str(path) in message and "99" in message and f"version {LATEST_VERSION}" in message


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("pending_runs", "runs_pending"),
        ("lease_next_job", "jobs_queued"),
        ("stale_jobs", "jobs_leased"),
        ("due_suspended_stages", "stages_due"),
        ("claim_outbox", "outbox_unpublished"),
    ],
)
def test_claims_and_scans_use_their_partial_indexes(path: Path, query: str, index: str) -> None:
    """The queue, lease and outbox queries read their partial index, not the whole table."""
    SqliteStore(path).close()
    params = {
        "limit": 1, "window": 1, "now": "", "until": "", "worker_id": "", "leased_before": "",
        "now_us": 0,  # limits (SPEC §15)
        "workflow_ids": '["wf"]',  # the worker's workflows: the index still serves the scan
        "versions": '[["wf", "1"]]',  # and the versions it holds: likewise
    }  # fmt: skip
    with closing(raw(path)) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {getattr(QUERIES, query)}", params).fetchall()
    assert any(f"USING INDEX {index}" in row[-1] for row in plan), plan


# -- bad files -----------------------------------------------------------------


def test_corrupt_file_gives_store_error_naming_the_file(path: Path) -> None:
    """Garbage bytes are reported as a corrupt database, never a bare sqlite3 error."""
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(StoreError, match="corrupt") as raised:
        SqliteStore(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)


def test_read_only_file_gives_store_error() -> None:
    """A file the process may not write is reported as read-only."""
    folder = Path(tempfile.mkdtemp(prefix="wfk-readonly-"))
    try:
        folder.chmod(0o777)  # only the file itself is read-only
        path = folder / "store.db"
        SqliteStore(path).close()
        path.chmod(0o444)
        with unprivileged(), pytest.raises(StoreError, match="read-only") as raised:
            SqliteStore(path)
        assert str(path) in str(raised.value)
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def test_missing_directory_gives_store_error(tmp_path: Path) -> None:
    """A path in a directory that does not exist cannot be opened."""
    with pytest.raises(StoreError, match="cannot be opened"):
        SqliteStore(tmp_path / "missing" / "store.db")


def test_closed_store_gives_store_error(path: Path) -> None:
    """Using a closed store raises StoreError, not a driver error."""
    store = SqliteStore(path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_run("run-1")


# -- sharing one file ------------------------------------------------------------


def test_writer_locked_out_too_long_gets_store_error(path: Path) -> None:
    """Another connection holding the write lock past the busy timeout gives StoreError."""
    store = SqliteStore(path, busy_timeout_s=0.1)
    with closing(raw(path)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked") as raised, store.transaction():
            pass
        other.execute("ROLLBACK")
    assert str(path) in str(raised.value)
    with store.transaction() as tx:  # usable again once the lock is gone
        assert tx.get_run("run-1") is None
    store.close()


def test_stores_on_one_file_see_each_others_commits(path: Path) -> None:
    """Two stores (two connections) on one file share committed data."""
    first, second = SqliteStore(path), SqliteStore(path)
    with first.transaction() as tx:
        tx.apply([InsertRun(make_run())])
    assert second.get_run("run-1") == make_run()
    first.close()
    second.close()


def test_connections_on_one_file_lease_each_job_once(path: Path) -> None:
    """Stores on one file, each in its own thread, never lease the same job."""
    store_with_jobs(path, 60)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lease_all, [str(path)] * 4, [f"w{i}" for i in range(4)]))
    leased = [job_id for batch in batches for job_id in batch]
    assert sorted(leased) == [f"job-{i:03}" for i in range(60)]


@pytest.mark.slow
def test_processes_on_one_file_lease_each_job_once(path: Path) -> None:
    """Separate processes on one file never lease the same job."""
    store_with_jobs(path, 60)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        batches = pool.starmap(lease_all, [(str(path), f"p{i}") for i in range(3)])
    leased = [job_id for batch in batches for job_id in batch]
    assert sorted(leased) == [f"job-{i:03}" for i in range(60)]
