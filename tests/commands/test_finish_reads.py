"""A job's finish decides on the run as it is at the finish, not as its start read it.

Between the start and the finish of an attempt the stage's code runs outside any
transaction, and others may change the run meanwhile: a sibling completes, the
run is cancelled, the lease is renewed. On SQLite the finish takes the records its
start left when the store confirms that none of them changed (one statement
instead of reading them again); these are the changes it must notice, on every
store.
"""

from __future__ import annotations

from datetime import timedelta

from kernel import JobStatus, RunCancel, StageContext, Status
from testing import FakeClock
from tests.harness import TK, MakeKernel, job_of, run_of, stage_of, start
from tests.workflows import Calls, NoConfig, Num, add, custom, joining, pipeline


def test_a_sibling_completed_meanwhile_lets_the_last_finish_advance_the_run(
    make_tk: MakeKernel,
) -> None:
    """SPEC §5.3: the group's last stage to finish moves the run on, even though its
    start saw its sibling still queued."""
    calls = Calls()
    kernels: list[TK] = []

    def run_sibling_first(ctx: StageContext[Num, NoConfig]) -> Num:
        # Another worker leases, runs and finishes the sibling while this stage runs.
        ran = kernels[0].kernel.execute_next_job("w2")
        assert ran is not None and ran[0].stage_id == "quick"
        return ctx.input

    slow, quick = custom("slow", run_sibling_first), add(calls, "quick")
    flow = pipeline("pair", [slow, quick], joining(calls, slow, quick))
    tk = make_tk(flow)
    kernels.append(tk)
    run_id = start(tk, "pair")

    executed = tk.kernel.execute_next_job("w1")

    assert executed is not None and executed[0].stage_id == "slow"
    assert executed[1].outcome == "completed"
    # The finish of "slow" opened the next group in its own transaction.
    assert job_of(tk.store, run_id, "join").status == JobStatus.QUEUED
    tk.run_until_idle()
    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 3})


def test_a_run_cancelled_while_a_failing_stage_ran_is_not_retried(make_tk: MakeKernel) -> None:
    """SPEC §5.4: an attempt that fails after its run was cancelled is discarded, its
    stage and job cancelled, not queued for a retry."""
    kernels: list[TK] = []

    def cancel_then_fail(ctx: StageContext[Num, NoConfig]) -> Num:
        kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id))
        raise RuntimeError("failed after the cancel")

    tk = make_tk(pipeline("doomed", custom("work", cancel_then_fail)))
    kernels.append(tk)
    run_id = start(tk, "doomed")

    executed = tk.kernel.execute_next_job("w1")

    assert executed is not None and executed[1].outcome == "skipped"
    assert run_of(tk.store, run_id).status == Status.CANCELLED
    assert stage_of(tk.store, run_id, "work").status == Status.CANCELLED
    assert job_of(tk.store, run_id, "work").status == JobStatus.CANCELLED


def test_a_lease_renewed_meanwhile_stays_renewed(make_tk: MakeKernel, clock: FakeClock) -> None:
    """The finish settles the job as it is now: the lease time a renewal wrote while
    the stage ran is not put back to the start's."""
    renewed_at = clock.now() + timedelta(seconds=20)
    kernels: list[TK] = []

    def renew(ctx: StageContext[Num, NoConfig]) -> Num:
        store = kernels[0].store
        job = next(job for job in store.get_jobs(ctx.workflow_run_id) if job.stage_id == "work")
        assert store.renew_lease(job.id, "w1", renewed_at)
        return ctx.input

    tk = make_tk(pipeline("renewing", custom("work", renew)))
    kernels.append(tk)
    run_id = start(tk, "renewing")

    executed = tk.kernel.execute_next_job("w1")

    assert executed is not None and executed[1].outcome == "completed"
    job = job_of(tk.store, run_id, "work")
    assert (job.status, job.locked_at) == (JobStatus.COMPLETED, renewed_at)
