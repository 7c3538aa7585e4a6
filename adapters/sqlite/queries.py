"""The named statements of ``queries.sql``, read once at import.

Each ``-- name: xyz`` block becomes the attribute ``QUERIES.xyz``, so a
misspelt name fails mypy and a block missing from (or extra in) the file
fails at import. The text is never formatted: values are bound as named
parameters, and because every call passes the very same string, the
``sqlite3`` connection's statement cache prepares each statement once.
"""

from __future__ import annotations

import re
from importlib.resources import files

from attrs import fields, frozen

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@frozen
class Queries:
    """One attribute per ``-- name:`` block of ``queries.sql``."""

    insert_run: str
    update_run: str
    get_run: str
    pending_runs: str
    list_runs: str
    insert_stage: str
    update_stage: str
    delete_stage: str
    get_stages: str
    due_suspended_stages: str
    insert_job: str
    update_job: str
    get_job: str
    get_jobs: str
    lease_next_job: str
    renew_lease: str
    stale_jobs: str
    append_outbox: str
    update_outbox: str
    claim_outbox: str
    dead_letters: str
    get_outbox: str
    get_run_outbox: str
    get_idempotency: str
    acquire_idempotency: str
    complete_idempotency: str
    release_idempotency: str
    get_blob: str
    put_blob: str
    delete_blob: str
    insert_log: str
    get_logs: str
    schema_version: str
    check_writable: str


def parse_queries(text: str) -> dict[str, str]:
    """Split SQL text into ``{name: statement}`` at each ``-- name: xyz`` line.

    Comment lines trailing a block (section headings) are dropped.

    >>> parse_queries("-- name: one\\nSELECT 1;\\n-- heading\\n-- name: two\\nSELECT 2;\\n")
    {'one': 'SELECT 1;', 'two': 'SELECT 2;'}
    """
    parts = _NAME.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"queries.sql: block {name!r} appears twice")
        lines = body.strip().splitlines()
        while lines and lines[-1].lstrip().startswith("--"):
            lines.pop()
        blocks[name] = "\n".join(lines).strip()
    return blocks


def load_queries() -> Queries:
    """Read ``queries.sql`` next to this module into a :class:`Queries`."""
    text = files("adapters.sqlite").joinpath("queries.sql").read_text(encoding="utf-8")
    blocks = parse_queries(text)
    expected = {field.name for field in fields(Queries)}
    if blocks.keys() != expected:
        missing = sorted(expected - blocks.keys())
        extra = sorted(blocks.keys() - expected)
        raise ValueError(f"queries.sql: missing blocks {missing}, unknown blocks {extra}")
    return Queries(**blocks)


QUERIES = load_queries()
