"""PostgreSQL store (SPEC §7): ``PostgresStore(dsn, schema=..., pool_size=...)``."""

from adapters.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
