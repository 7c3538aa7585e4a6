"""The batch lifecycle on every store (the ``store`` fixture: memory, SQLite and, with
``CI=true``, PostgreSQL): the intent, the ledger and pending cancels (SPEC §12.1)."""

from __future__ import annotations

from kernel import AIConfig, BatchCancelPending, RunCancel, RunClaimPending, RunCreate, Status
from kernel.ports import Store
from testing import FakeBatchProvider, create_test_kernel
from tests.batch.test_cancel import FlakyCancels
from tests.batch.workflows import DOCS, ITEM_COST, PRICES, batch_workflow


def test_retried_items_are_counted_once_on_every_store(store: Store) -> None:
    fake = FakeBatchProvider(fail_items={"b"})
    tk = create_test_kernel(
        batch_workflow(max_item_retries=1),
        store=store,
        ai=AIConfig(providers=[], prices=PRICES),
        batch_providers=[fake],
    )
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert len(fake.submitted) == 2
    assert len(store.get_usage(run_id)) == 3
    assert run.total_cost == 3 * ITEM_COST


def test_a_failed_cancel_is_kept_then_cleared_on_every_store(store: Store) -> None:
    fake = FlakyCancels(failures=1)
    tk = create_test_kernel(
        batch_workflow(),
        store=store,
        ai=AIConfig(providers=[], prices=PRICES),
        batch_providers=[fake],
    )
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.dispatch(RunClaimPending(worker_id="w"))
    tk.kernel.execute_jobs("w")
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    assert tk.dispatch(BatchCancelPending()).failed == 1
    (pending,) = store.get_batch_cancels()
    assert (pending.attempts, pending.last_error) == (1, "ConnectionError: provider unreachable")
    assert tk.dispatch(BatchCancelPending()).cancelled == 1
    assert store.get_batch_cancels() == []
    assert fake.cancelled == [pending.batch_id]
