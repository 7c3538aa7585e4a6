"""The server's system catalogs: how many dead rows they hold, and a ``VACUUM`` of them.

Every PostgreSQL test and benchmark works in a schema of its own and drops it
afterwards: each one leaves a few hundred dead rows in ``pg_attribute``,
``pg_depend``, ``pg_class`` and the other catalogs. Autovacuum clears them;
on a server that runs with autovacuum off (this project's development server
does), they pile up, a few million after some runs of the test suite, and
every later measure on that server runs slower: one worker draining a backlog
took a quarter less wall time and server CPU once they were vacuumed
(``docs/performance.md``). ``bench/end_to_end_postgres.py`` prints the count
before it measures and, with ``--vacuum-catalogs`` (what ``make bench``
passes), vacuums them first, as autovacuum would have.
"""

from __future__ import annotations

import psycopg

CATALOGS = (
    "pg_attribute",
    "pg_depend",
    "pg_class",
    "pg_index",
    "pg_type",
    "pg_constraint",
    "pg_attrdef",
    "pg_namespace",
)
"""The catalogs a schema's creation and drop write to."""


def dead_catalog_rows(dsn: str) -> int:
    """Dead rows in :data:`CATALOGS` of the database at ``dsn``, by the statistics."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_sys_tables "
            "WHERE schemaname = 'pg_catalog' AND relname = ANY (%s)",
            (list(CATALOGS),),
        ).fetchone()
    return int(row[0]) if row else 0


def vacuum_catalogs(dsn: str) -> str | None:
    """``VACUUM`` :data:`CATALOGS`; ``None`` if done, else why not (the role may lack
    the right: a benchmark goes on without it)."""
    names = ", ".join(f"pg_catalog.{name}" for name in CATALOGS)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM {names}")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None
