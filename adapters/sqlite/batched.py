"""Several rows in one statement: the multi-row forms of the store's simple writes.

A worker that finishes a group of jobs in one transaction applies their
effects together (``kernel.shell.job_groups``): several stage updates, job
updates, inserted stages and jobs, outbox events. Each kind is written with
one statement for all its rows instead of one per row, built from the
single-row statement of ``queries.sql`` so the two cannot drift apart:

* ``INSERT INTO t (a, b) VALUES (:a, :b) [tail]`` becomes
  ``INSERT INTO t (a, b) VALUES (?, ?), (?, ?) [tail]``;
* ``UPDATE t SET a = :a WHERE k = :k AND version = :expected_version``
  becomes ``UPDATE t SET a = v.column2 FROM (VALUES (?, ?), (?, ?)) AS v
  WHERE t.k = v.column1 AND t.version = v.column3``. Its row count is the
  number of rows whose key and version matched, so a lost version race still
  shows (the caller then writes row by row to name the row).

The statement text for n rows is made once and cached (and the ``sqlite3``
statement cache prepares it once).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

_PARAM = re.compile(r":(\w+)")
_PAIR = re.compile(r"^\s*(\w+)\s*=\s*:(\w+)\s*$")
_INSERT = re.compile(
    r"^\s*INSERT INTO (\w+)\s*\(([^)]*)\)\s*VALUES\s*\(([^()]*)\)(.*?);?\s*$", re.S | re.I
)
_UPDATE = re.compile(r"^\s*UPDATE (\w+) SET (.*?) WHERE (.*?);?\s*$", re.S | re.I)
_COMMENT = re.compile(r"--[^\n]*")


def _clean(query: str) -> str:
    return " ".join(_COMMENT.sub("", query).split())


@frozen
class MultiInsert:
    """The n-row form of a one-row ``INSERT ... VALUES (:a, :b, ...) [tail]``."""

    head: str
    params: tuple[str, ...]
    tail: str

    @classmethod
    def of(cls, query: str) -> MultiInsert:
        """Raises ``ValueError`` unless ``query`` is a one-row INSERT of plain parameters."""
        found = _INSERT.match(_clean(query))
        if found is None:
            raise ValueError(f"not a one-row INSERT ... VALUES (...): {query!r}")
        table, columns, values, tail = found.groups()
        params = tuple(value.strip().lstrip(":") for value in values.split(","))
        if not all(value.strip().startswith(":") for value in values.split(",")):
            raise ValueError(f"VALUES must be plain :parameters: {query!r}")
        return cls(f"INSERT INTO {table} ({columns.strip()}) VALUES ", params, tail.strip())

    @functools.cache  # noqa: B019 - a few instances, made once at import
    def sql(self, rows: int) -> str:
        one = "(" + ", ".join("?" * len(self.params)) + ")"
        return f"{self.head}{', '.join([one] * rows)} {self.tail}".rstrip()

    def args(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        return _values(rows, self.params)


@frozen
class MultiUpdate:
    """The n-row form of ``UPDATE t SET a = :a, ... WHERE k = :k AND ...``."""

    table: str
    sets: tuple[tuple[str, str], ...]
    wheres: tuple[tuple[str, str], ...]
    params: tuple[str, ...]

    @classmethod
    def of(cls, query: str) -> MultiUpdate:
        """Raises ``ValueError`` unless every SET and WHERE term is ``column = :param``."""
        found = _UPDATE.match(_clean(query))
        if found is None:
            raise ValueError(f"not an UPDATE ... SET ... WHERE ...: {query!r}")
        table, set_part, where_part = found.groups()
        sets = tuple(_pair(term, query) for term in set_part.split(","))
        wheres = tuple(_pair(term, query) for term in re.split(r"\bAND\b", where_part))
        params = tuple(dict.fromkeys(param for _, param in (*wheres, *sets)))
        return cls(table, sets, wheres, params)

    @functools.cache  # noqa: B019 - a few instances, made once at import
    def sql(self, rows: int) -> str:
        index = {param: number for number, param in enumerate(self.params, 1)}
        one = "(" + ", ".join("?" * len(self.params)) + ")"
        sets = ", ".join(f"{column} = v.column{index[param]}" for column, param in self.sets)
        wheres = " AND ".join(
            f"{self.table}.{column} = v.column{index[param]}" for column, param in self.wheres
        )
        values = ", ".join([one] * rows)
        return f"UPDATE {self.table} SET {sets} FROM (VALUES {values}) AS v WHERE {wheres}"

    def args(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        return _values(rows, self.params)


def _values(rows: Sequence[Mapping[str, Any]], params: tuple[str, ...]) -> list[Any]:
    """The values of ``params`` of every row, row after row: what ``sql(len(rows))`` binds."""
    return [row[name] for row in rows for name in params]


def _pair(term: str, query: str) -> tuple[str, str]:
    found = _PAIR.match(term)
    if found is None:
        raise ValueError(f"expected 'column = :param', got {term.strip()!r} in {query!r}")
    return found.group(1), found.group(2)


OUTBOX_COLUMNS = (
    "id",
    "workflow_run_id",
    "event_type",
    "payload",
    "causation_id",
    "occurred_at",
)
"""The values each appended event binds, in :func:`append_outbox_sql`'s order."""


@functools.cache
def append_outbox_sql(rows: int) -> str:
    """Append ``rows`` events: each run's events numbered on from its last sequence, in
    the order given (``append_outbox`` of ``queries.sql``, for many rows). SQLite
    reads the outbox for every row before inserting any (the statement reads the
    table it writes), hence the row number within each run."""
    one = "(" + ", ".join("?" * (len(OUTBOX_COLUMNS) + 1)) + ")"
    values = ", ".join([one] * rows)
    return (
        "INSERT INTO outbox ("
        " id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at"
        ") SELECT v.column1, v.column2,"
        " (SELECT coalesce(max(sequence), 0) FROM outbox WHERE workflow_run_id = v.column2)"
        " + row_number() OVER (PARTITION BY v.column2 ORDER BY v.column7),"
        " v.column3, v.column4, v.column5, v.column6"
        f" FROM (VALUES {values}) AS v ORDER BY v.column7"
    )
