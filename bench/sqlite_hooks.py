"""Stores opened in a block get ``sqlite3`` connections whose cursors are of a given class.

The benchmarks' hooks into ``sqlite3`` (:mod:`bench.sqlite_time`,
:mod:`bench.sqlite_replay`) are cursor subclasses; the store calls
``sqlite3.connect`` itself, so :func:`connections_using` replaces it meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def connection_class(cursor_class: type[sqlite3.Cursor]) -> type[sqlite3.Connection]:
    """A connection class whose ``execute``, ``executemany`` and ``cursor`` make
    ``cursor_class`` cursors."""

    class Connection(sqlite3.Connection):
        def cursor(self, factory: Any = cursor_class) -> Any:
            return super().cursor(factory)

        def execute(self, *args: Any) -> Any:
            return self.cursor().execute(*args)

        def executemany(self, *args: Any) -> Any:
            return self.cursor().executemany(*args)

    return Connection


@contextmanager
def connections_using(cursor: type[sqlite3.Cursor]) -> Iterator[None]:
    """Connections made by ``sqlite3.connect`` inside this block use ``cursor``."""
    module: Any = sqlite3
    connect = module.connect
    factory = connection_class(cursor)

    def connect_using(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", factory)
        made: sqlite3.Connection = connect(*args, **kwargs)
        return made

    module.connect = connect_using
    try:
        yield
    finally:
        module.connect = connect
