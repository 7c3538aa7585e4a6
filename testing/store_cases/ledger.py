"""Conformance cases: the usage ledger, pending provider batch cancels and exact money
(SPEC §11, §12.1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from attrs import evolve

from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.ai.types import Usage
from kernel.effects import (
    DeleteBatchCancel,
    InsertBatchCancel,
    InsertRun,
    InsertUsage,
    UpdateBatchCancel,
    UpdateRun,
)
from kernel.errors import StoreError
from testing.store_cases.base import StoreCase, at, bump, make_run


def make_entry(call_id: str, run_id: str = "run-1", **changes: Any) -> UsageEntry:
    """A priced ``text`` call of stage ``extract`` of ``run_id``, recorded at ``at(10)``."""
    entry = UsageEntry(
        call_id=call_id,
        workflow_run_id=run_id,
        stage_id="extract",
        attempt=1,
        model="openai:gpt-4o-mini",
        kind="text",
        usage=Usage(1200, 350, cached_input_tokens=200, reasoning_tokens=64),
        cost=Decimal("0.00012345"),
        priced=True,
        recorded_at=at(10),
    )
    return evolve(entry, **changes)


def make_cancel(batch_id: str, requested: float = 0, **changes: Any) -> BatchCancel:
    """A cancel of batch ``batch_id`` requested at ``at(requested)``, not tried yet."""
    cancel = BatchCancel(
        batch_id=batch_id,
        provider="fakebatch",
        workflow_run_id="run-1",
        stage_id="classify",
        requested_at=at(requested),
    )
    return evolve(cancel, **changes)


class LedgerCases(StoreCase):
    """Ledger rows, batch cancels and Decimal money come back exactly as written."""

    # -- usage ledger ----------------------------------------------------------

    def test_usage_rows_come_back_per_run_in_record_order(self) -> None:
        """``get_usage`` gives a run's entries in the order they were recorded (not by
        time), every field equal: tokens, exact cost, ``priced``, ``note``, time."""
        self.add_runs("run-1", "run-2")
        first = make_entry("call-b", recorded_at=at(30))
        other = make_entry("call-x", "run-2", kind="embed", model="openai:text-embedding-3")
        second = make_entry(
            "call-a",
            attempt=2,
            kind="object",
            usage=Usage(10, 0),
            cost=Decimal(0),
            priced=False,
            note="the provider reported no output tokens",
            recorded_at=at(20.000001),
        )
        self.apply(InsertUsage(first), InsertUsage(other))
        self.apply(InsertUsage(second))
        assert self.store.get_usage("run-1") == [first, second]
        assert self.store.get_usage("run-2") == [other]
        assert self.store.get_usage("missing") == []

    @pytest.mark.parametrize("cost", ["0.30000000", "12345678.12345678", "0", "1E-8"])
    def test_usage_cost_keeps_its_exact_digits(self, cost: str) -> None:
        """The cost is a ``Decimal`` read back with the very digits written."""
        self.add_runs("run-1")
        self.apply(InsertUsage(make_entry("call-1", cost=Decimal(cost))))
        (entry,) = self.store.get_usage("run-1")
        assert type(entry.cost) is Decimal
        assert str(entry.cost) == str(Decimal(cost))

    def test_get_usage_call_finds_a_recorded_call(self) -> None:
        """``get_usage_call`` sees a call recorded in its own transaction and after
        commit; an unknown ``call_id`` gives ``None``."""
        self.add_runs("run-1")
        entry = make_entry("call-1", note="partial usage")
        with self.store.transaction() as tx:
            assert tx.get_usage_call("call-1") is None
            tx.apply([InsertUsage(entry)])
            assert tx.get_usage_call("call-1") == entry
        with self.store.transaction() as tx:
            assert tx.get_usage_call("call-1") == entry
            assert tx.get_usage_call("call-2") is None

    def test_a_recorded_call_id_is_refused_and_its_transaction_rolled_back(self) -> None:
        """``call_id`` is the ledger's key: a second row with it fails the transaction,
        and nothing the transaction wrote stays."""
        self.add_runs("run-1")
        entry = make_entry("call-1")
        self.apply(InsertUsage(entry))
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([InsertUsage(make_entry("call-2"))])
            tx.apply([InsertUsage(make_entry("call-1", cost=Decimal("9.99")))])
        assert self.store.get_usage("run-1") == [entry]

    # -- batch cancels ---------------------------------------------------------

    def test_pending_batch_cancels_are_oldest_first_then_by_batch_id(self) -> None:
        """Pending cancels come oldest ``requested_at`` first, ties by ``batch_id``, at
        most ``limit``; ``get_batch_cancels`` lists them all in that order."""
        cancels = [make_cancel("b-2", 5), make_cancel("b-9", 1), make_cancel("b-1", 5)]
        self.apply(*(InsertBatchCancel(cancel) for cancel in cancels))
        expected = [cancels[1], cancels[2], cancels[0]]
        with self.store.transaction() as tx:
            assert tx.pending_batch_cancels(10) == expected
            assert tx.pending_batch_cancels(2) == expected[:2]
        assert self.store.get_batch_cancels() == expected

    def test_inserting_a_cancel_for_a_known_batch_replaces_it(self) -> None:
        """``InsertBatchCancel`` is an upsert by ``batch_id``."""
        self.apply(InsertBatchCancel(make_cancel("b-1", 1, attempts=2, last_error="HTTP 503")))
        again = make_cancel("b-1", 7, stage_id="summarize")
        self.apply(InsertBatchCancel(again))
        assert self.store.get_batch_cancels() == [again]

    def test_a_failed_cancel_is_counted_and_a_done_one_forgotten(self) -> None:
        """``UpdateBatchCancel`` stores the attempts and the error; ``DeleteBatchCancel``
        removes the cancel, and deleting an unknown batch is no error."""
        self.apply(InsertBatchCancel(make_cancel("b-1", 1)), InsertBatchCancel(make_cancel("b-2")))
        failed = make_cancel("b-1", 1, attempts=1, last_error="ProviderError: rate limited")
        self.apply(UpdateBatchCancel(failed), DeleteBatchCancel("b-2"), DeleteBatchCancel("b-7"))
        with self.store.transaction() as tx:
            assert tx.pending_batch_cancels(10) == [failed]
        assert self.store.get_batch_cancels() == [failed]

    def test_updating_a_cancel_another_tick_cleared_changes_nothing(self) -> None:
        """A cancel cleared meanwhile (another tick's call succeeded) stays cleared."""
        self.apply(UpdateBatchCancel(make_cancel("b-1", attempts=1, last_error="timeout")))
        assert self.store.get_batch_cancels() == []

    # -- rollback --------------------------------------------------------------

    def test_rollback_undoes_ledger_and_cancel_writes(self) -> None:
        """A transaction that fails leaves the ledger and the cancels as committed."""
        self.add_runs("run-1")
        entry, cancel = make_entry("call-1"), make_cancel("b-1")
        self.apply(
            InsertUsage(entry), InsertBatchCancel(cancel), InsertBatchCancel(make_cancel("b-2"))
        )
        with pytest.raises(RuntimeError), self.store.transaction() as tx:
            tx.apply(
                [
                    InsertUsage(make_entry("call-2")),
                    InsertBatchCancel(make_cancel("b-3")),
                    UpdateBatchCancel(evolve(cancel, attempts=4, last_error="boom")),
                    DeleteBatchCancel("b-2"),
                ]
            )
            raise RuntimeError("the decision's caller failed")
        assert self.store.get_usage("run-1") == [entry]
        assert self.store.get_batch_cancels() == [cancel, make_cancel("b-2")]
        with self.store.transaction() as tx:
            assert tx.get_usage_call("call-2") is None

    # -- money on runs -----------------------------------------------------------

    @pytest.mark.parametrize(
        ("total_cost", "budget"),
        [
            ("0.30000000", "25.50"),
            ("12345678.12345678", None),
            ("0", "0.00000001"),
        ],
    )
    def test_run_total_cost_and_budget_round_trip_as_exact_decimals(
        self, total_cost: str, budget: str | None
    ) -> None:
        """A run's ``total_cost`` and ``budget`` are ``Decimal``s read back with their
        digits, on insert and on update, through every read."""
        run = make_run(
            total_cost=Decimal(total_cost), budget=None if budget is None else Decimal(budget)
        )
        self.apply(InsertRun(run))
        stored = self.store.get_run(run.id)
        assert stored == run and stored is not None
        assert type(stored.total_cost) is Decimal
        assert str(stored.total_cost) == str(Decimal(total_cost))
        assert (None if stored.budget is None else str(stored.budget)) == (
            None if budget is None else str(Decimal(budget))
        )
        spent = bump(run, total_cost=Decimal(total_cost) + Decimal("0.10000001"))
        self.apply(UpdateRun(spent, expected_version=run.version))
        with self.store.transaction() as tx:
            assert tx.get_run(run.id) == spent
        assert self.store.list_runs() == [spent]
        listed = self.store.list_runs()[0]
        assert str(listed.total_cost) == str(spent.total_cost)
