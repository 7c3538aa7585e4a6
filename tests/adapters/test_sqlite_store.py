"""``SqliteStore`` passes the store conformance suite, on a file and in memory (SPEC §7),
and the cases of the snapshot reads its transactions offer."""

from adapters.sqlite import SqliteStore
from kernel.ports import Store
from testing.conformance import StoreConformance
from testing.store_cases.snapshots import SnapshotCases


class TestSqliteFileStore(StoreConformance, SnapshotCases):
    def make_store(self) -> Store:
        return SqliteStore(self.tmp_path / "store.db")


class TestSqliteMemoryStore(StoreConformance, SnapshotCases):
    def make_store(self) -> Store:
        return SqliteStore(":memory:")
