"""The named queries of ``queries.sql`` and the migration scripts, loaded once.

SQL lives in files, not in Python strings: ``queries.sql`` holds one
``-- name: xyz`` block per store operation, and ``migrations/NNNN_what.sql``
one script per schema version; :mod:`adapters.sqlfiles` reads both.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.sqlfiles import Migration, read_migrations, read_queries

QUERIES: Mapping[str, bytes] = {
    name: statement.encode()
    for filename in ("queries.sql", "batched.sql", "purge.sql")
    for name, statement in read_queries("adapters.postgres", filename=filename).items()
}
"""Every named query (of ``queries.sql``, ``batched.sql`` for multi-row writes and
``purge.sql`` for retention), by name,
encoded once rather than at every execute."""

MIGRATIONS: tuple[Migration, ...] = read_migrations("adapters.postgres")
"""Every migration script, in version order."""

LATEST_VERSION: int = MIGRATIONS[-1].version
"""The schema version this code creates and understands."""
