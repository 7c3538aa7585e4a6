"""Cancelling a run whose batch is in flight cancels the batch at the provider, after
commit; a failed cancel call is retried at the next tick, never lost (SPEC §12.1)."""

from __future__ import annotations

from kernel import BatchCancelPending, RunCancel, RunClaimPending, RunCreate, Status
from testing import FakeBatchProvider
from tests.batch.workflows import DOCS, batch_kernel


class FlakyCancels(FakeBatchProvider):
    """A fake whose first ``failures`` cancel calls fail."""

    def __init__(self, failures: int) -> None:
        super().__init__(finish_after_polls=100)
        self.failures = failures

    def cancel(self, batch_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("provider unreachable")
        super().cancel(batch_id)


def suspended_run(fake: FakeBatchProvider):  # type: ignore[no-untyped-def]
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.dispatch(RunClaimPending(worker_id="w"))
    tk.kernel.execute_jobs("w")
    (stage,) = tk.store.get_stages(run_id)
    assert stage.status == Status.SUSPENDED
    return tk, run_id


def test_cancelling_the_run_leaves_the_batch_pending_until_after_commit() -> None:
    fake = FakeBatchProvider(finish_after_polls=100)
    tk, run_id = suspended_run(fake)
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    (pending,) = tk.store.get_batch_cancels()
    assert (pending.provider, pending.workflow_run_id, pending.stage_id) == (
        "fakebatch",
        run_id,
        "summarise",
    )
    assert fake.cancelled == []  # nothing is called inside the cancel's transaction
    assert tk.dispatch(BatchCancelPending()).cancelled == 1
    assert fake.cancelled == [pending.batch_id]
    assert tk.store.get_batch_cancels() == []


def test_run_until_idle_cancels_pending_batches_like_a_host_tick() -> None:
    fake = FakeBatchProvider(finish_after_polls=100)
    tk, run_id = suspended_run(fake)
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    tk.run_until_idle()
    assert len(fake.cancelled) == 1


def test_a_failed_cancel_stays_pending_for_the_next_tick() -> None:
    fake = FlakyCancels(failures=1)
    tk, run_id = suspended_run(fake)
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    first = tk.dispatch(BatchCancelPending())
    assert (first.cancelled, first.failed) == (0, 1)
    (pending,) = tk.store.get_batch_cancels()
    assert pending.attempts == 1
    assert pending.last_error == "ConnectionError: provider unreachable"
    second = tk.dispatch(BatchCancelPending())
    assert (second.cancelled, second.failed) == (1, 0)
    assert fake.cancelled == [pending.batch_id]
    assert tk.store.get_batch_cancels() == []


def test_nothing_pending_cancels_nothing() -> None:
    tk = batch_kernel(FakeBatchProvider())
    result = tk.dispatch(BatchCancelPending())
    assert (result.cancelled, result.failed) == (0, 0)


def test_a_batch_submitted_while_the_run_was_cancelled_is_cancelled_too() -> None:
    """The run is cancelled between the submission and the attempt's finish: the finish
    discards the attempt and leaves its batch pending for cancelling."""
    fake = FakeBatchProvider(finish_after_polls=100)
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    submit = fake.submit

    def submit_then_cancel(items, tag):  # type: ignore[no-untyped-def]
        batch_id = submit(items, tag)
        tk.dispatch(RunCancel(workflow_run_id=run_id))
        return batch_id

    fake.submit = submit_then_cancel  # type: ignore[method-assign]
    tk.run_until_idle()
    (stage,) = tk.store.get_stages(run_id)
    assert stage.status == Status.CANCELLED
    assert len(fake.cancelled) == 1
