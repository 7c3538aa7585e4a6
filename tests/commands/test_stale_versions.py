"""Optimistic concurrency: a stale write is re-loaded and re-decided (SPEC §6.4)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import pytest

from kernel import RunCancel, StaleVersionError, Status
from kernel.dispatch import MAX_STALE_RETRIES
from kernel.effects import StoreEffect, UpdateRun
from kernel.ports import Store, StoreTransaction
from testing import FakeClock, create_test_kernel
from tests.harness import T0, event_types, run_of, start
from tests.workflows import Calls, linear


class RacingStore:
    """Refuses the first ``conflicts`` run updates with ``StaleVersionError``, as if
    another worker had written the run between this transaction's read and write."""

    def __init__(self, inner: Store, conflicts: int) -> None:
        self._inner = inner
        self.conflicts = conflicts
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._inner.transaction() as tx:
            yield cast(StoreTransaction, _RacingTransaction(tx, self))


class _RacingTransaction:
    def __init__(self, inner: StoreTransaction, store: RacingStore) -> None:
        self._inner = inner
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        self._inner.apply(effects)  # written, then rolled back by the raise below
        update = next((e for e in effects if isinstance(e, UpdateRun)), None)
        if update is not None:
            self._store.attempts += 1
            if self._store.conflicts > 0:
                self._store.conflicts -= 1
                raise StaleVersionError("run", update.run.id, update.expected_version)


def racing_kernel(store: Store, conflicts: int) -> tuple[Any, RacingStore, str]:
    racing = RacingStore(store, conflicts=0)
    tk = create_test_kernel(linear(Calls()), store=cast(Store, racing), clock=FakeClock(T0))
    run_id = start(tk, "linear")
    racing.conflicts, racing.attempts = conflicts, 0
    return tk, racing, run_id


def test_a_stale_write_is_decided_again_and_succeeds(store: Store) -> None:
    """SPEC §6.4: the shell re-loads, re-decides and applies once, with one event."""
    tk, racing, run_id = racing_kernel(store, conflicts=2)

    result = tk.dispatch(RunCancel(workflow_run_id=run_id))

    assert result.cancelled is True
    assert racing.attempts == 3
    assert run_of(store, run_id).status == Status.CANCELLED
    assert event_types(store, run_id).count("workflow:cancelled") == 1


def test_a_write_that_stays_stale_surfaces_and_leaves_nothing(store: Store) -> None:
    """SPEC §6.4: after bounded retries the ``StaleVersionError`` reaches the caller,
    and every attempt was rolled back."""
    tk, racing, run_id = racing_kernel(store, conflicts=1_000)
    before = (run_of(store, run_id), event_types(store, run_id))

    with pytest.raises(StaleVersionError, match="changed concurrently: expected version 2"):
        tk.dispatch(RunCancel(workflow_run_id=run_id))

    assert racing.attempts == MAX_STALE_RETRIES
    assert (run_of(store, run_id), event_types(store, run_id)) == before
