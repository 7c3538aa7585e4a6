"""The named queries of ``queries.sql`` and the migration scripts, loaded once.

SQL lives in files, not in Python strings: ``queries.sql`` holds one
``-- name: xyz`` block per store operation, and ``migrations/NNNN_what.sql``
one script per schema version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_\w+\.sql$")


def parse_queries(text: str) -> dict[str, bytes]:
    """Split ``-- name: xyz`` blocks into ``{name: statement}``.

    Text before the first block is a file comment and is dropped.

    >>> parse_queries("-- intro\\n-- name: one\\nSELECT 1;\\n-- name: two\\nSELECT 2;\\n")
    {'one': b'SELECT 1;', 'two': b'SELECT 2;'}
    """
    parts = _NAME.split(text)
    queries: dict[str, bytes] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"queries.sql: query {name!r} is defined twice")
        queries[name] = body.strip().encode()
    return queries


def load_migrations() -> list[tuple[int, bytes]]:
    """The migration scripts as ``(version, script)``, in version order.

    Versions must run 1, 2, 3, ... without gaps, so a schema's version says
    exactly which scripts it has seen.
    """
    folder = resources.files(__package__).joinpath("migrations")
    found: list[tuple[int, bytes]] = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_bytes()))
    found.sort()
    versions = [version for version, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"postgres migrations must be numbered 1..n, found {versions}")
    return found


QUERIES: Mapping[str, bytes] = parse_queries(
    resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
)
"""Every named query, by name."""

MIGRATIONS: list[tuple[int, bytes]] = load_migrations()
"""Every migration script, by version."""

LATEST_VERSION: int = MIGRATIONS[-1][0]
"""The schema version this code creates and understands."""
