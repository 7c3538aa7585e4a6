"""Versioned schema migrations for the SQLite store, applied when a store opens.

Migrations are the files ``migrations/NNNN_what.sql``, numbered from 1
without gaps. The table ``schema_version`` records each one applied. At
open, :func:`migrate` takes the write lock (``BEGIN IMMEDIATE``), so two
processes opening one new file cannot both migrate it; applies every
migration newer than the recorded version in one transaction, so a failed
migration leaves the file as it was; refuses a file whose version is newer
than this code knows; and makes one write, so a read-only file fails here
rather than at the first command. A store opened read-only migrates
nothing: :func:`check_read_only` only checks that the file's version is
this code's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlite_utils import Database

from adapters.sqlfiles import read_migrations
from adapters.sqlite.errors import NoDatabaseError, SchemaVersionError
from adapters.sqlite.queries import QUERIES
from kernel.errors import StoreError

MIGRATIONS = read_migrations("adapters.sqlite")
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(db: Database) -> int:
    """The schema version recorded in ``db`` (0 for a new, empty database)."""
    if not db.table("schema_version").exists():
        return 0
    row = db.execute(QUERIES.schema_version).fetchone()
    return int(row[0])


def require_schema(db: Database, path: str) -> int:
    """The version of ``db``'s schema; a database without one is refused, untouched.

    Raises:
        NoDatabaseError: the file is empty (0 pages) or has no ``schema_version``.
    """
    found = current_version(db)
    if found == 0:
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        raise NoDatabaseError(path, "empty" if pages == 0 else "no schema")
    return found


def check_read_only(db: Database, path: str) -> int:
    """Check that a database opened read-only has this code's schema; returns its version.

    Raises:
        NoDatabaseError: the file is empty or has no schema.
        SchemaVersionError: its schema is older or newer than this code's.
    """
    found = require_schema(db, path)
    if found != LATEST_VERSION:
        raise SchemaVersionError(path, found, LATEST_VERSION)
    return found


def float_text(value: str | int | float | None) -> str | None:
    """SQL ``float_text(x)``, for migrations: a number as the ``str`` of an exact ``Decimal``.

    A float becomes its shortest round-tripping decimal (Python's ``repr``),
    which SQLite's own conversion (15 significant digits) is not; text and
    NULL pass through.

    >>> float_text(0.1 + 0.2), float_text(0.0), float_text(3), float_text(None)
    ('0.30000000000000004', '0.0', '3', None)
    """
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    if isinstance(value, int):
        return str(value)
    return value


def migrate(db: Database, path: str, target: int = LATEST_VERSION) -> int:
    """Bring ``db`` up to schema version ``target``; return the version it had.

    ``db``'s connection must be in autocommit mode (``isolation_level=None``).

    Raises:
        StoreError: the database's schema is newer than this code knows.
    """
    # Functions the migration scripts call (0005 turns REAL money into text).
    db.conn.create_function("float_text", 1, float_text, deterministic=True)
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        db.table("schema_version").create(
            {"version": int, "name": str, "applied_at": str},
            pk="version",
            not_null={"name", "applied_at"},
            if_not_exists=True,
        )
        found = current_version(db)
        if found > LATEST_VERSION:
            raise StoreError(
                f"SQLite database {path!r} has schema version {found}, newer than version "
                f"{LATEST_VERSION}, the newest this workflow-kernel knows: upgrade "
                "workflow-kernel to open it"
            )
        for migration in MIGRATIONS[found:target]:
            # sqlite-utils runs a script statement by statement inside an open
            # transaction (sqlite3's executescript would COMMIT first).
            db.executescript(migration.sql)
            db.table("schema_version").insert(
                {
                    "version": migration.version,
                    "name": migration.name,
                    "applied_at": datetime.now(UTC).isoformat(),
                }
            )
        db.execute(QUERIES.check_writable)
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    return found
