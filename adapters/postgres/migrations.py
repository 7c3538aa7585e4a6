"""Schema names, and creating or upgrading a schema under an advisory lock."""

from __future__ import annotations

import hashlib
import re

from psycopg import Connection, sql
from psycopg.rows import DictRow

from adapters.postgres.queries import LATEST_VERSION, MIGRATIONS, QUERIES
from kernel.errors import StoreError

# Unquoted-identifier shape, short enough that "<schema>_jobs" (the NOTIFY
# channel) still fits PostgreSQL's 63-byte identifier limit.
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,57}$")


def validate_schema(name: str) -> str:
    """Return ``name`` if it is a plain identifier of at most 58 characters.

    >>> validate_schema("workflow_kernel")
    'workflow_kernel'
    >>> validate_schema("x; DROP TABLE runs")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: schema: expected an identifier (...), got 'x; DROP TABLE runs'
    """
    if not _SCHEMA_NAME.match(name):
        raise ValueError(
            "schema: expected an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 58 characters), "
            f"got {name!r}"
        )
    return name


def lock_key(schema: str) -> int:
    """A stable 64-bit advisory-lock key for migrating ``schema``."""
    digest = hashlib.sha256(f"workflow-kernel migrate {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def migrate(conn: Connection[DictRow], schema: str) -> int:
    """Create ``schema`` or bring it up to :data:`LATEST_VERSION`; return the version.

    Runs in one transaction holding an advisory lock on the schema name, so
    processes that open the same new schema at once do not race: the first
    creates it, the others wait and then find it current.

    Raises:
        StoreError: the schema was written by newer code (a higher version).
    """
    name = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(QUERIES["lock_migrations"], {"key": lock_key(schema)})
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
        conn.execute(QUERIES["create_schema_version"])
        row = conn.execute(QUERIES["schema_version"]).fetchone()
        current = int(row["version"]) if row else 0
        if current > LATEST_VERSION:
            raise StoreError(
                f"schema {schema!r} has version {current}, but this code knows versions up "
                f"to {LATEST_VERSION}: upgrade workflow-kernel before opening it"
            )
        for migration in MIGRATIONS[current:]:
            conn.execute(migration.sql.encode())
            conn.execute(QUERIES["record_version"], {"version": migration.version})
    return max(current, LATEST_VERSION)


def drop(conn: Connection[DictRow], schema: str) -> None:
    """Drop ``schema`` and everything in it (tests)."""
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
