"""The store conformance suite: every store behaviour the kernel relies on (SPEC §7).

Subclass :class:`StoreConformance` in a module pytest collects, name the
subclass ``Test...`` and return a fresh store from ``make_store``::

    class TestMyStore(StoreConformance):
        def make_store(self) -> Store:
            return MyStore(self.tmp_path / "store.db")

The suite talks to the store through the ``kernel.ports`` protocols only;
its cases live in ``testing.store_cases``, one module per concern. For
readable assertion failures, call
``pytest.register_assert_rewrite("testing.conformance", "testing.store_cases")``
in a ``conftest.py`` before this module is imported.
"""

from __future__ import annotations

from testing.store_cases.base import StoreCase
from testing.store_cases.data import DataCases
from testing.store_cases.ledger import LedgerCases
from testing.store_cases.limits import LimitCases
from testing.store_cases.listing import ListingCases
from testing.store_cases.outbox import OutboxCases
from testing.store_cases.purge import PurgeCases
from testing.store_cases.queue import QueueCases
from testing.store_cases.signals_schedules import SignalScheduleCases
from testing.store_cases.transactions import TransactionCases
from testing.store_cases.versions import VersionCases

__all__ = ["StoreCase", "StoreConformance"]


class StoreConformance(
    TransactionCases,
    QueueCases,
    OutboxCases,
    DataCases,
    ListingCases,
    SignalScheduleCases,
    LedgerCases,
    PurgeCases,
    VersionCases,
    LimitCases,
):
    """All conformance cases. Subclasses implement ``make_store(self) -> Store``."""
