"""``run.cancel`` (SPEC §5.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kernel import JobStatus, RunCancel, StageContext, Status
from testing import FakeClock
from tests.harness import (
    T0,
    TK,
    MakeKernel,
    create,
    event_types,
    job_of,
    outbox,
    run_of,
    stage_of,
    start,
)
from tests.workflows import Batch, Calls, NoConfig, Num, batch, custom, linear, pipeline


def test_cancel_of_a_pending_run_cancels_it(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.4: a non-terminal run becomes CANCELLED."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    clock.advance(timedelta(seconds=1))

    result = tk.dispatch(RunCancel(workflow_run_id=run_id, reason="not needed"))

    assert result.cancelled is True
    run = run_of(tk.store, run_id)
    assert (run.status, run.completed_at) == (Status.CANCELLED, T0 + timedelta(seconds=1))


def test_cancel_writes_workflow_cancelled_with_the_reason(make_tk: MakeKernel) -> None:
    """SPEC §5.4, §3.3: ``workflow:cancelled`` carries the reason."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    tk.dispatch(RunCancel(workflow_run_id=run_id, reason="operator"))

    last = outbox(tk.store, run_id)[-1]
    assert (last.sequence, last.event_type) == (3, "workflow:cancelled")
    assert last.payload == {
        "type": "workflow:cancelled",
        "workflow_run_id": run_id,
        "timestamp": T0.isoformat(),
        "reason": "operator",
    }


def test_cancel_without_a_reason_records_none(make_tk: MakeKernel) -> None:
    """SPEC §5.4: ``reason`` is optional."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")

    tk.dispatch(RunCancel(workflow_run_id=run_id))

    assert outbox(tk.store, run_id)[-1].payload["reason"] is None


def test_cancel_drops_queued_jobs(make_tk: MakeKernel) -> None:
    """SPEC §5.4: queued jobs are removed from the queue, pending stages cancelled."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    tk.dispatch(RunCancel(workflow_run_id=run_id))

    assert job_of(tk.store, run_id, "first").status == JobStatus.CANCELLED
    assert stage_of(tk.store, run_id, "first").status == Status.CANCELLED
    assert tk.kernel.execute_next_job("w1") is None


def test_cancel_runs_no_further_user_code(make_tk: MakeKernel) -> None:
    """SPEC §5.4: after a cancel no user code runs for the run."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")

    tk.dispatch(RunCancel(workflow_run_id=run_id))
    tk.run_until_idle()

    assert calls.total == 0
    assert run_of(tk.store, run_id).status == Status.CANCELLED


def test_cancel_of_a_suspended_stage_cancels_stage_and_job(make_tk: MakeKernel) -> None:
    """SPEC §5.4: suspended stages become CANCELLED and are never polled again."""
    calls = Calls()
    tk = make_tk(pipeline("batchy", batch(calls, Batch())))
    run_id = start(tk, "batchy")
    tk.kernel.execute_next_job("w1")
    assert stage_of(tk.store, run_id, "batch").status == Status.SUSPENDED

    tk.dispatch(RunCancel(workflow_run_id=run_id))
    tk.run_until_idle()

    assert stage_of(tk.store, run_id, "batch").status == Status.CANCELLED
    assert job_of(tk.store, run_id, "batch").status == JobStatus.CANCELLED
    assert calls["batch.check"] == 0


def test_cancel_while_a_stage_runs_discards_its_result(make_tk: MakeKernel) -> None:
    """SPEC §5.4, §5.6: the running stage finishes, sees the cancelled run, and its
    outcome is ``skipped``: no output stored, stage and job CANCELLED."""
    kernels: list[TK] = []

    def cancel_myself(ctx: StageContext[Num, NoConfig]) -> Num:
        kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id, reason="mid-run"))
        return ctx.input

    tk = make_tk(pipeline("selfish", custom("work", cancel_myself), custom("after", cancel_myself)))
    kernels.append(tk)
    run_id = start(tk, "selfish")

    executed = tk.kernel.execute_next_job("w1")

    assert executed is not None
    assert executed[1].outcome == "skipped"
    assert stage_of(tk.store, run_id, "work").status == Status.CANCELLED
    assert job_of(tk.store, run_id, "work").status == JobStatus.CANCELLED
    assert tk.store.get_blob(f"runs/{run_id}/stages/work/output") == (False, None)
    assert event_types(tk.store, run_id) == [
        "workflow:created",
        "workflow:started",
        "stage:started",
        "workflow:cancelled",
    ]


def test_cancel_of_a_missing_run_reports_false(make_tk: MakeKernel) -> None:
    """SPEC §5.4: ``cancelled`` is false for a missing run; nothing is written."""
    tk = make_tk(linear(Calls()))

    assert tk.dispatch(RunCancel(workflow_run_id="missing")).cancelled is False
    assert tk.store.get_outbox() == []


@pytest.mark.parametrize("how", ["completed", "cancelled"])
def test_cancel_of_a_finished_run_reports_false(make_tk: MakeKernel, how: str) -> None:
    """SPEC §5.4: a terminal run is left as it is, with no second event."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    if how == "completed":
        tk.run_until_idle()
    else:
        tk.dispatch(RunCancel(workflow_run_id=run_id))
    before = run_of(tk.store, run_id)
    events = event_types(tk.store, run_id)

    assert tk.dispatch(RunCancel(workflow_run_id=run_id)).cancelled is False
    assert run_of(tk.store, run_id) == before
    assert event_types(tk.store, run_id) == events


def test_cancel_keeps_completed_stages_and_their_outputs(make_tk: MakeKernel) -> None:
    """SPEC §5.4: only pending and suspended stages are cancelled; finished work stays."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    tk.kernel.execute_next_job("w1")

    tk.dispatch(RunCancel(workflow_run_id=run_id))

    assert stage_of(tk.store, run_id, "first").status == Status.COMPLETED
    assert stage_of(tk.store, run_id, "second").status == Status.CANCELLED
    assert tk.store.get_blob(f"runs/{run_id}/stages/first/output") == (True, {"value": 2})


def test_cancel_command_refuses_an_empty_run_id() -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match="workflow_run_id: expected a non-empty string, got ''"):
        RunCancel(workflow_run_id="")
