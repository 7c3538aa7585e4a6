"""``lease.reapStale`` (SPEC §5.8, §10.1).

A worker "dies" when its stage raises :class:`~tests.workflows.WorkerCrash`, a
``BaseException`` the stage runner does not catch: the stage stays RUNNING and
the job stays leased, exactly what a crash between the phases leaves behind.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from kernel import JobStatus, LeaseReapStale, RunCancel, Status
from testing import FakeClock
from tests.harness import (
    TK,
    MakeKernel,
    event_types,
    events_of,
    job_of,
    run_of,
    stage_of,
    start,
)
from tests.workflows import Calls, WorkerCrash, crashing, failing, pipeline

THRESHOLD = timedelta(seconds=30)
REAP = LeaseReapStale(stale_threshold_ms=30_000)


def crash(tk: TK, worker: str = "doomed") -> None:
    """Run the next job on a worker that dies inside the stage."""
    with pytest.raises(WorkerCrash):
        tk.kernel.execute_next_job(worker)


def crashed_run(make_tk: MakeKernel, calls: Calls, crashes: int = 1) -> tuple[TK, str]:
    tk = make_tk(pipeline("crashy", crashing(calls, "crashy", crashes=crashes)))
    run_id = start(tk, "crashy")
    crash(tk)
    return tk, run_id


def test_crash_leaves_the_stage_running_and_the_job_leased(make_tk: MakeKernel) -> None:
    """SPEC §5.6: a crash between phases leaves the stage RUNNING and the job leased."""
    tk, run_id = crashed_run(make_tk, Calls())

    assert stage_of(tk.store, run_id, "crashy").status == Status.RUNNING
    job = job_of(tk.store, run_id, "crashy")
    assert (job.status, job.worker_id, job.attempt) == (JobStatus.LEASED, "doomed", 1)


def test_reap_leaves_a_fresh_lease_alone(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.8: only leases older than the threshold are reaped."""
    tk, run_id = crashed_run(make_tk, Calls())
    clock.advance(THRESHOLD)

    assert tk.dispatch(REAP).released == 0
    assert job_of(tk.store, run_id, "crashy").status == JobStatus.LEASED


def test_reap_requeues_a_stale_job_at_once(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §10.1: a reaped job is available again at once, with no worker."""
    tk, run_id = crashed_run(make_tk, Calls())
    now = clock.advance(THRESHOLD + timedelta(milliseconds=1))

    result = tk.dispatch(REAP)

    assert result.released == 1
    job = job_of(tk.store, run_id, "crashy")
    assert (job.status, job.worker_id, job.locked_at, job.available_at) == (
        JobStatus.QUEUED,
        None,
        None,
        now,
    )


def test_reap_puts_the_stage_back_to_pending(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.8: the reaped job's stage goes back to PENDING."""
    tk, run_id = crashed_run(make_tk, Calls())
    clock.advance(THRESHOLD * 2)

    tk.dispatch(REAP)

    assert stage_of(tk.store, run_id, "crashy").status == Status.PENDING
    assert run_of(tk.store, run_id).status == Status.RUNNING


def test_reap_does_not_use_up_an_attempt(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §10.1: a crash is not the user's failure: the next run is attempt 1 again."""
    calls = Calls()
    tk, run_id = crashed_run(make_tk, calls)
    clock.advance(THRESHOLD * 2)

    tk.dispatch(REAP)
    tk.kernel.execute_next_job("healthy")

    assert calls.attempts == [("crashy", 1), ("crashy", 1)]
    job = job_of(tk.store, run_id, "crashy")
    assert (job.status, job.attempt, job.reap_count) == (JobStatus.COMPLETED, 1, 1)
    assert run_of(tk.store, run_id).status == Status.COMPLETED


def test_reaped_failing_stage_still_gets_all_its_attempts(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §10.1: after a reap the stage still has ``max_attempts`` real attempts."""
    calls = Calls()
    tk = make_tk(pipeline("unlucky", failing(calls, "doomed")))
    run_id = start(tk, "unlucky")
    # Lease the job on a worker that dies before running any user code.
    with tk.store.transaction() as tx:
        leased = tx.lease_next_job("ghost", clock.now())
    assert leased is not None
    clock.advance(THRESHOLD * 2)
    tk.dispatch(REAP)

    tk.run_until_idle()

    assert calls["doomed"] == 3
    attempts = [e.payload["attempt"] for e in events_of(tk.store, run_id, "stage:failed")]
    assert attempts == [1, 2, 3]


def test_reap_of_a_lease_that_never_started_gives_back_no_attempt(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §10.1: a reap gives back the attempt the dead worker began; a worker that
    died between leasing a retry and starting it began none, so the stage still gets
    exactly ``max_attempts`` attempts (not a fourth)."""
    calls = Calls()
    tk = make_tk(pipeline("unlucky", failing(calls, "doomed")))
    run_id = start(tk, "unlucky")
    tk.kernel.execute_next_job("w1")  # attempt 1 fails; the retry is queued
    clock.advance(timedelta(seconds=1))
    with tk.store.transaction() as tx:
        leased = tx.lease_next_job("ghost", clock.now())
    assert leased is not None and leased.attempt == 1
    clock.advance(THRESHOLD * 2)

    tk.dispatch(REAP)

    assert job_of(tk.store, run_id, "doomed").attempt == 1
    tk.run_until_idle()
    assert calls["doomed"] == 3
    attempts = [e.payload["attempt"] for e in events_of(tk.store, run_id, "stage:failed")]
    assert attempts == [1, 2, 3]


def test_reap_writes_no_event(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §3.3: a lost worker is bookkeeping, not a workflow event."""
    tk, run_id = crashed_run(make_tk, Calls())
    before = event_types(tk.store, run_id)
    clock.advance(THRESHOLD * 2)

    tk.dispatch(REAP)

    assert event_types(tk.store, run_id) == before


def test_renewed_lease_is_not_reaped(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.8: hosts renew the lease of a long stage, so a live worker keeps its job."""
    tk, run_id = crashed_run(make_tk, Calls())
    job = job_of(tk.store, run_id, "crashy")
    clock.advance(THRESHOLD)

    assert tk.store.renew_lease(job.id, "doomed", clock.now()) is True
    clock.advance(THRESHOLD)

    assert tk.dispatch(REAP).released == 0


def test_only_the_lease_holder_can_renew(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.8: another worker cannot keep someone else's job alive."""
    tk, run_id = crashed_run(make_tk, Calls())
    job = job_of(tk.store, run_id, "crashy")

    assert tk.store.renew_lease(job.id, "impostor", clock.now()) is False


def test_reap_after_max_reaps_fails_with_worker_lost(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §10.1: a job reaped ``max_reaps`` times fails for good with WORKER_LOST."""
    calls = Calls()
    tk, run_id = crashed_run(make_tk, calls, crashes=5)
    reap = LeaseReapStale(stale_threshold_ms=30_000, max_reaps=2)
    clock.advance(THRESHOLD * 2)
    assert tk.dispatch(reap).released == 1
    crash(tk)
    clock.advance(THRESHOLD * 2)

    assert tk.dispatch(reap).released == 1

    job = job_of(tk.store, run_id, "crashy")
    assert (job.status, job.reap_count) == (JobStatus.FAILED, 2)
    assert (job.last_error or "").startswith("WORKER_LOST")
    assert stage_of(tk.store, run_id, "crashy").status == Status.FAILED
    run = run_of(tk.store, run_id)
    assert run.status == Status.FAILED
    assert (run.error or "").startswith("WORKER_LOST: ")
    assert calls["crashy"] == 2


def test_worker_lost_writes_stage_failed_without_retry(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §10.1, §3.3: the final reap reports ``stage:failed`` (no retry) and
    ``workflow:failed``."""
    tk, run_id = crashed_run(make_tk, Calls(), crashes=5)
    clock.advance(THRESHOLD * 2)

    tk.dispatch(LeaseReapStale(stale_threshold_ms=30_000, max_reaps=1))

    assert event_types(tk.store, run_id)[-2:] == ["stage:failed", "workflow:failed"]
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["will_retry"] is False
    assert failed.payload["error"].startswith("WORKER_LOST")


def test_reap_of_a_cancelled_run_does_not_requeue_its_job(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.4: once cancelled, a run's stages and jobs do not come back to life;
    the dead worker's job and stage are cancelled instead of re-queued."""
    tk, run_id = crashed_run(make_tk, Calls())
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    clock.advance(THRESHOLD * 2)

    tk.dispatch(REAP)

    assert job_of(tk.store, run_id, "crashy").status == JobStatus.CANCELLED
    assert stage_of(tk.store, run_id, "crashy").status == Status.CANCELLED
    assert run_of(tk.store, run_id).status == Status.CANCELLED


def test_reap_with_nothing_stale_releases_nothing(make_tk: MakeKernel) -> None:
    """SPEC §5.8: an empty result, not an error."""
    tk = make_tk(pipeline("crashy", crashing(Calls(), "crashy")))

    assert tk.dispatch(REAP).released == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stale_threshold_ms": -1}, "stale_threshold_ms: expected an int >= 0, got -1"),
        ({"stale_threshold_ms": 1, "max_reaps": 0}, "max_reaps: expected an int >= 1, got 0"),
    ],
)
def test_reap_command_refuses_bad_fields_when_built(fields: dict[str, int], message: str) -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match=re.escape(message)):
        LeaseReapStale(**fields)
