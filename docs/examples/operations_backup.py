"""Backups: a consistent copy of a live SQLite file, and of a PostgreSQL schema."""

import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import attrs
import psycopg

from adapters import create_kernel
from adapters.postgres import PostgresStore
from adapters.sqlite import SqliteStore
from kernel import RunCreate, StageContext, Status, WorkflowBuilder, define_stage


@attrs.frozen
class Invoice:
    number: int


@attrs.frozen
class NoConfig:
    pass


def send(ctx: StageContext[Invoice, NoConfig]) -> Invoice:
    return ctx.input


invoices = (
    WorkflowBuilder("invoices", "Invoices", input=Invoice, output=Invoice)
    .pipe(
        define_stage(
            id="send", name="Send", input=Invoice, output=Invoice, config=NoConfig, execute=send
        )
    )
    .build()
)


# --8<-- [start:sqlite]
def backup_sqlite(database: Path, target: Path) -> None:
    """A consistent copy of a live database file, taken while workers write to it.

    ``VACUUM INTO`` reads one snapshot (a read transaction: writers carry on
    in WAL mode) and writes a compact, self-contained file: no ``-wal`` or
    ``-shm`` file to copy beside it. The target must not exist yet.
    """
    conn = sqlite3.connect(database)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


# --8<-- [end:sqlite]


def test_a_sqlite_backup_opens_as_a_store_with_every_run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database, copy = Path(tmp) / "app.db", Path(tmp) / "backup-2025-01-01.db"
        store = SqliteStore(database)
        kernel = create_kernel(invoices, store=store)
        run_id = kernel.dispatch(RunCreate(workflow_id="invoices", input={"number": 7}))
        backup_sqlite(database, copy)  # the store is still open, the run still pending
        store.close()

        # --8<-- [start:restore]
        # Restore: stop the workers, put the copy in place of the file, start them again.
        restored = Path(tmp) / "restored.db"
        shutil.copyfile(copy, restored)
        store = SqliteStore(restored)  # an older file is migrated on first use
        run = store.get_run(run_id.workflow_run_id)
        assert run is not None and run.status == Status.PENDING
        # --8<-- [end:restore]
        store.close()


# --8<-- [start:postgres]
def backup_postgres(dsn: str, schema: str, target: Path) -> None:
    """``pg_dump`` of the store's schema: one snapshot, taken while workers run."""
    subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={schema}", f"--file={target}", dsn],
        check=True,
    )


def restore_postgres(dsn: str, source: Path) -> None:
    """Into an empty database (or one without the schema); the workers are stopped."""
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={dsn}", str(source)], check=True)


# --8<-- [end:postgres]


def test_a_postgres_backup_brings_back_a_lost_schema() -> None:
    dsn = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error:
        if os.environ.get("CI"):
            raise
        return  # no server here: the SQLite part still ran
    schema = f"docs_backup_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(dsn, schema=schema, pool_size=2)
    try:
        run_id = (
            create_kernel(invoices, store=store)
            .dispatch(RunCreate(workflow_id="invoices", input={"number": 7}))
            .workflow_run_id
        )
        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "workflows.dump"
            backup_postgres(dsn, schema, dump)
            store.drop_schema()  # the disaster
            restore_postgres(dsn, dump)
        run = store.get_run(run_id)
        assert run is not None and run.status == Status.PENDING
    finally:
        store.drop_schema()
        store.close()
