"""A worker that dies right after the provider accepted its batch: the next attempt finds
the batch by its tag instead of paying for it twice (SPEC §12, §12.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kernel import JobStatus, LeaseReapStale, RunCreate, RunRerunFrom, Status
from kernel.llm_batch_state import batch_tag, read_progress
from testing import FakeBatchProvider, SimulatedCrash
from tests.batch.workflows import DOCS, ITEM_COST, batch_kernel

STALE = timedelta(seconds=30)


def crash_then_reap(fake: FakeBatchProvider):  # type: ignore[no-untyped-def]
    """Run until the worker dies in ``submit``; then let the reaper give the job back."""
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    with pytest.raises(SimulatedCrash):
        tk.run_until_idle()
    (job,) = tk.store.get_jobs(run_id)
    assert job.status == JobStatus.LEASED  # a dead worker's job stays leased
    tk.clock.advance(STALE * 2)
    stale_ms = int(STALE.total_seconds() * 1000)
    assert tk.dispatch(LeaseReapStale(stale_threshold_ms=stale_ms)).released == 1
    return tk, run_id


def test_the_intent_is_recorded_before_the_batch_is_submitted() -> None:
    fake = FakeBatchProvider(crash_after_submit=1)
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    with pytest.raises(SimulatedCrash):
        tk.run_until_idle()
    (stage,) = tk.store.get_stages(run_id)
    progress = read_progress(stage.suspended_state)
    assert progress is not None
    assert (progress.tag, progress.generation, progress.batch_id) == (
        batch_tag(run_id, "summarise", stage.id, 1),
        1,
        None,
    )
    assert fake.submitted == [progress.tag]


def test_the_next_attempt_adopts_the_batch_the_dead_worker_submitted() -> None:
    fake = FakeBatchProvider(crash_after_submit=1)
    tk, run_id = crash_then_reap(fake)
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert len(fake.submitted) == 1  # adopted, not submitted again
    assert len(tk.store.get_usage(run_id)) == 3
    assert run.total_cost == 3 * ITEM_COST
    assert any("adopted batch" in line.message for line in tk.store.get_logs(run_id))


def test_a_provider_that_cannot_find_batches_fails_the_stage_for_good() -> None:
    fake = FakeBatchProvider(crash_after_submit=1, find_supported=False)
    tk, run_id = crash_then_reap(fake)
    tk.run_until_idle()
    (stage,) = tk.store.get_stages(run_id)
    assert stage.status == Status.FAILED
    tag = batch_tag(run_id, "summarise", stage.id, 1)
    assert stage.error is not None and stage.error.startswith("BATCH_SUBMIT_UNCERTAIN: ")
    assert tag in stage.error
    assert len(fake.submitted) == 1


def test_an_intent_the_provider_never_received_is_submitted_by_the_next_attempt() -> None:
    """The worker died after recording the intent and before the provider had it: find
    says there is none, so the next attempt submits (once)."""
    fake = FakeBatchProvider()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    accept = fake.submit

    def die_before_sending(items, tag):  # type: ignore[no-untyped-def]
        raise SimulatedCrash("died before the request left")

    fake.submit = die_before_sending  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        tk.run_until_idle()
    fake.submit = accept  # type: ignore[method-assign]
    tk.clock.advance(STALE * 2)
    tk.dispatch(LeaseReapStale(stale_threshold_ms=int(STALE.total_seconds() * 1000)))
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    (stage,) = tk.store.get_stages(run_id)
    assert fake.submitted == [batch_tag(run_id, "summarise", stage.id, 1)]


def test_a_rerun_submits_a_fresh_batch_under_a_new_tag() -> None:
    fake = FakeBatchProvider()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    (first,) = tk.store.get_stages(run_id)
    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="summarise"))
    tk.run_until_idle()
    (second,) = tk.store.get_stages(run_id)
    assert second.id != first.id
    assert fake.submitted == [
        batch_tag(run_id, "summarise", first.id, 1),
        batch_tag(run_id, "summarise", second.id, 1),
    ]
    assert len(tk.store.get_usage(run_id)) == 6
