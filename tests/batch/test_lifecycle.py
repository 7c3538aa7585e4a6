"""An LLM batch stage from submission to ``collect``: one submission, durable polling
with growing gaps, usage recorded once per item at the batch price (SPEC §12, §12.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kernel import (
    BatchResults,
    BatchStatus,
    ProviderError,
    RunClaimPending,
    RunCreate,
    StageContext,
    StagePollSuspended,
    Status,
)
from kernel.decisions.stage_poll_suspended import CHECK_LEASE
from kernel.llm_batch_state import batch_tag
from testing import FakeBatchProvider, SimulatedCrash
from tests.batch.workflows import (
    DOCS,
    ITEM_COST,
    POLL,
    Documents,
    NoConfig,
    Summaries,
    batch_kernel,
    batch_workflow,
    collect,
)


def test_a_batch_stage_submits_once_and_collects_every_item() -> None:
    fake = FakeBatchProvider()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {
        "summaries": {"a": "reply to a", "b": "reply to b", "c": "reply to c"},
        "failed": {},
    }
    (stage,) = tk.store.get_stages(run_id)
    assert fake.submitted == [batch_tag(run_id, "summarise", stage.id, 1)]


def test_the_provider_receives_bare_model_names() -> None:
    fake = FakeBatchProvider()
    seen: list[str] = []
    submit = fake.submit

    def spy(items, tag):  # type: ignore[no-untyped-def]
        seen.extend(item.request.model for item in items)
        return submit(items, tag)

    fake.submit = spy  # type: ignore[method-assign]
    tk = batch_kernel(fake)
    tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS))
    tk.run_until_idle()
    assert seen == ["small", "small", "small"]


def test_each_item_is_recorded_once_at_the_batch_price() -> None:
    fake = FakeBatchProvider()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    usage = tk.store.get_usage(run_id)
    (tag,) = fake.submitted
    assert [entry.call_id for entry in usage] == [f"{tag}:a", f"{tag}:b", f"{tag}:c"]
    assert {(e.kind, e.model, e.cost, e.attempt) for e in usage} == {
        ("batch", "fakebatch:small", ITEM_COST, 1)
    }
    run = tk.store.get_run(run_id)
    assert run is not None and run.total_cost == 3 * ITEM_COST


def test_polling_an_ended_batch_twice_counts_it_once() -> None:
    """A poller that recorded the usage and died before recording its outcome leaves the
    stage to the next poll: its usage.record calls change nothing the second time."""
    crashes = [SimulatedCrash("the poller died in collect")]

    def collect_once_dead(
        ctx: StageContext[Documents, NoConfig], results: BatchResults
    ) -> Summaries:
        if crashes:
            raise crashes.pop()
        return collect(ctx, results)

    fake = FakeBatchProvider()
    tk = batch_kernel(fake, batch_workflow(collect=collect_once_dead))
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    with pytest.raises(SimulatedCrash):
        tk.run_until_idle()
    assert len(tk.store.get_usage(run_id)) == 3
    tk.clock.advance(CHECK_LEASE)  # the dead poller's claim runs out
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert len(tk.store.get_usage(run_id)) == 3
    assert run.total_cost == 3 * ITEM_COST
    assert len(fake.submitted) == 1


def test_status_checks_come_at_growing_gaps_up_to_ten_intervals() -> None:
    fake = FakeBatchProvider(finish_after_polls=9)
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    submitted_at = tk.clock.now()
    tk.dispatch(RunClaimPending(worker_id="w"))
    tk.kernel.execute_jobs("w")
    checks: list[timedelta] = []
    for _ in range(9):
        (stage,) = tk.store.get_stages(run_id)
        assert stage.next_poll_at is not None
        checks.append(stage.next_poll_at - submitted_at)
        tk.clock.set(stage.next_poll_at)
        assert tk.dispatch(StagePollSuspended()).checked == 1
    gaps = [
        later - earlier for earlier, later in zip([timedelta(0), *checks[:-1]], checks, strict=True)
    ]
    assert [gap / POLL for gap in gaps] == [1, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10, 10, 10]
    (stage,) = tk.store.get_stages(run_id)
    assert stage.status == Status.COMPLETED


class FlakyStatus(FakeBatchProvider):
    """A fake whose first ``status`` call fails with a retryable provider error."""

    def __init__(self) -> None:
        super().__init__()
        self.outages = 1

    def status(self, batch_id: str) -> BatchStatus:
        if self.outages:
            self.outages -= 1
            raise ProviderError("503 Service Unavailable", retryable=True)
        return super().status(batch_id)


def test_a_retryable_status_error_waits_for_the_next_check() -> None:
    fake = FlakyStatus()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert len(fake.submitted) == 1
