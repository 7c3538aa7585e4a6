"""``SqliteStore`` passes the store conformance suite, on a file and in memory (SPEC §7)."""

from adapters.sqlite import SqliteStore
from kernel.ports import Store
from testing.conformance import StoreConformance


class TestSqliteFileStore(StoreConformance):
    def make_store(self) -> Store:
        return SqliteStore(self.tmp_path / "store.db")


class TestSqliteMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return SqliteStore(":memory:")
