"""Optimistic concurrency for the simulation's store: read a snapshot, check at commit.

A transaction given a :func:`take`-n snapshot loads from, and writes to, a copy
of the tables as they were when its operation *read* the store; other actors
may commit in between. At commit, :func:`first_conflict` compares every row
the transaction wrote with the live row: a record with a ``version`` must
still be at the version it read, any other row must be the very row it read
(first committer wins, as row versions and ``FOR UPDATE`` locks make it in a
database). A conflict rolls the transaction back with the kernel's
:class:`~kernel.errors.StaleVersionError`, and the kernel loads and decides
again on the live tables. Without a conflict, :func:`publish` copies the rows
it wrote into the live tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from adapters.memory import _Tables
from adapters.memory_signals import MISSING

Undo = Sequence[tuple[dict[Any, Any], Any, Any]]
"""A transaction's undo log: ``(table, key, value before the write)``, oldest first."""


@attrs.frozen
class Written:
    """One row a transaction wrote: the live table it belongs in, and the row it read."""

    name: str
    live: dict[Any, Any] | None
    """The live table (``None``: it is gone, e.g. the stages of a purged run)."""
    mine: dict[Any, Any]
    key: Any
    read: Any
    """The row as the transaction read it (``MISSING``: there was none)."""


def take(tables: _Tables) -> _Tables:
    """A copy of the tables to read from later (rows are immutable records: shallow)."""
    copies: dict[str, Any] = {}
    for field in attrs.fields(type(tables)):
        value = getattr(tables, field.name)
        if field.name == "stages":
            copies[field.name] = {run_id: dict(rows) for run_id, rows in value.items()}
        elif isinstance(value, dict):
            copies[field.name] = dict(value)
        else:
            copies[field.name] = list(value)
    return type(tables)(**copies)


def written(snapshot: _Tables, live: _Tables, undo: Undo) -> list[Written]:
    """Every row the transaction wrote into ``snapshot``, once, in the order of the writes."""
    tables: dict[int, tuple[str, dict[Any, Any] | None]] = {}
    for field in attrs.fields(type(snapshot)):
        mine = getattr(snapshot, field.name)
        if isinstance(mine, dict):
            tables[id(mine)] = (field.name, getattr(live, field.name))
    for run_id, rows in snapshot.stages.items():
        tables[id(rows)] = (f"stages of {run_id}", live.stages.get(run_id))
    seen: set[tuple[int, Any]] = set()
    rows_written: list[Written] = []
    for table, key, old in undo:
        if (id(table), key) in seen:
            continue
        seen.add((id(table), key))
        name, live_table = tables.get(id(table), ("an unknown table", None))
        rows_written.append(Written(name, live_table, table, key, old))
    return rows_written


def first_conflict(rows: Sequence[Written]) -> str | None:
    """Why the transaction may not commit: a row it wrote changed since it read it."""
    for row in rows:
        if row.live is None:
            if row.name.startswith("stages of ") and row.read is MISSING:
                continue  # the run's stage table is new: published with the run's entry
            return f"{row.name} {row.key!r} is gone"
        now = row.live.get(row.key, MISSING)
        if now is row.read:
            continue
        version = getattr(row.read, "version", None)
        same_record = getattr(now, "id", None) == getattr(row.read, "id", None)
        if version is not None and same_record and getattr(now, "version", None) == version:
            continue  # the same record at the same version, as far as a database can tell
        if not attrs.has(type(now)) and now is not MISSING and now == row.read:
            continue  # a plain value (a sequence number, a claim time) that is equal
        return f"{row.name} {row.key!r} changed since it was read"
    return None


def publish(rows: Sequence[Written], snapshot: _Tables, live: _Tables, logs_from: int) -> None:
    """Copy what the transaction wrote into the live tables."""
    for row in rows:
        table = row.live
        if table is None:  # a run's new stage table: its entry in ``stages`` came first
            table = live.stages[row.name.removeprefix("stages of ")]
        value = row.mine.get(row.key, MISSING)
        if value is MISSING:
            table.pop(row.key, None)
        else:
            table[row.key] = value
    live.logs.extend(snapshot.logs[logs_from:])
