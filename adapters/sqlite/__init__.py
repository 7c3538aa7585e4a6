"""The SQLite store: one file (or ``:memory:``), WAL, safe for several processes.

SQL lives in ``queries.sql`` (one named block per operation) and
``migrations/NNNN_*.sql`` (applied in order when a store opens).
"""

from adapters.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
