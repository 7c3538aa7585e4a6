"""``InMemoryStore`` passes the store conformance suite (SPEC §7)."""

from adapters.memory import InMemoryStore
from kernel.ports import Store
from testing.conformance import StoreConformance


class TestInMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return InMemoryStore()
