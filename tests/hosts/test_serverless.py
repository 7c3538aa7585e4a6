"""``ServerlessHost``: bounded, stateless calls (SPEC §8)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.hosts import ServerlessHost
from adapters.memory import InMemoryStore
from kernel import Job, JobStatus, Kernel, RunClaimPending, RunCreate, Status, StoreError
from kernel.commands import JobExecuteResult, LeaseRelease
from kernel.decisions import lease_release
from tests.harness import T0, env
from tests.hosts.apps import slow_workflow, start_markers


def pipeline() -> tuple[Kernel, InMemoryStore, ServerlessHost]:
    store = InMemoryStore()
    kernel = create_kernel(document_pipeline, store=store)
    return kernel, store, ServerlessHost(kernel, store, worker_id="fn")


def create_run(kernel: Kernel, document: int = 0) -> str:
    return kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[document]))
    ).workflow_run_id


def test_a_maintenance_tick_claims_pending_runs_and_flushes_the_outbox() -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    report = host.run_maintenance_tick()
    assert (report.claimed, report.ok, report.found_work) == (1, True, True)
    assert report.published == 2  # workflow:created, workflow:started
    extract = store.get_jobs(run_id)
    assert [(job.stage_id, job.status) for job in extract] == [("extract", JobStatus.QUEUED)]


def test_process_available_jobs_runs_at_most_max_jobs_one_after_another() -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    host.run_maintenance_tick()
    result = host.process_available_jobs(max_jobs=2)
    assert result.processed == 2
    assert [(job.stage_id, job.outcome) for job in result.jobs] == [
        ("extract", "completed"),
        ("classify", "completed"),
    ]
    assert all(job.workflow_run_id == run_id for job in result.jobs)
    rest = host.process_available_jobs(max_jobs=10)
    assert [job.stage_id for job in rest.jobs] == ["summarize", "merge"]  # then the queue is empty
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED


def test_process_available_jobs_runs_its_jobs_as_one_chain() -> None:
    """Each finish transaction leases the next job: one write transaction per job."""
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    host.run_maintenance_tick()
    calls: list[tuple[int, int]] = []
    execute_jobs = kernel.execute_jobs

    def spy(
        worker_id: str,
        max_jobs: int = 100,
        on_start: Callable[[Job], None] | None = None,
        **callbacks: Any,
    ) -> list[tuple[Job, JobExecuteResult]]:
        done = execute_jobs(worker_id, max_jobs, on_start, **callbacks)
        calls.append((max_jobs, len(done)))
        return done

    kernel.execute_jobs = spy  # type: ignore[method-assign]
    result = host.process_available_jobs(max_jobs=4)
    assert calls == [(4, 4)]
    assert [job.stage_id for job in result.jobs] == ["extract", "classify", "summarize", "merge"]
    assert all(job.outcome == "completed" for job in result.jobs)
    assert result.jobs[-1].output["title"] == SAMPLE_DOCUMENTS[0].title
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED


def test_process_available_jobs_on_an_empty_queue_does_nothing() -> None:
    _, _, host = pipeline()
    assert host.process_available_jobs(max_jobs=3).processed == 0


def test_handle_job_executes_the_job_a_message_names_with_the_run_s_config() -> None:
    kernel, store, host = pipeline()
    run_id = kernel.dispatch(
        RunCreate(
            workflow_id=document_pipeline.id,
            input=attrs.asdict(SAMPLE_DOCUMENTS[1]),
            config={"extract": {"max_words": 3}},
        )
    ).workflow_run_id
    host.run_maintenance_tick()
    (job,) = store.get_jobs(run_id)
    message = {
        "workflow_run_id": run_id,
        "workflow_id": document_pipeline.id,
        "stage_id": "extract",
        "job_id": job.id,
    }
    report = host.handle_job(message)
    assert (report.outcome, report.job_id) == ("completed", job.id)
    assert report.output["word_count"] == 3
    settled = store.get_jobs(run_id)[0]
    assert (settled.status, settled.worker_id) == (JobStatus.COMPLETED, "fn")
    # The platform delivers the message again: nothing runs twice.
    again = host.handle_job(message)
    assert (again.outcome, again.reason) == ("skipped", f"job {job.id!r} is COMPLETED")


def test_handle_job_without_a_job_id_takes_the_stage_s_queued_job() -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    host.run_maintenance_tick()
    report = host.handle_job(
        {"workflow_run_id": run_id, "workflow_id": document_pipeline.id, "stage_id": "extract"}
    )
    assert report.outcome == "completed"
    assert report.job_id == store.get_jobs(run_id)[0].id


def test_handle_job_for_a_stage_without_a_job_record_executes_it_directly() -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)  # not claimed: no stage records, no jobs
    report = host.handle_job(
        {"workflow_run_id": run_id, "workflow_id": document_pipeline.id, "stage_id": "extract"}
    )
    assert (report.outcome, report.job_id) == ("completed", None)
    extract = next(s for s in store.get_stages(run_id) if s.stage_id == "extract")
    assert extract.status == Status.COMPLETED


def test_handle_job_skips_a_job_another_worker_holds() -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    kernel.dispatch(RunClaimPending(worker_id="other"))
    with store.transaction() as tx:
        leased = tx.lease_next_job("other", T0 + timedelta(days=10_000))
    assert leased is not None
    report = host.handle_job(
        {
            "workflow_run_id": run_id,
            "workflow_id": document_pipeline.id,
            "stage_id": "extract",
            "job_id": leased.id,
        }
    )
    assert report.outcome == "skipped"
    assert report.reason == f"job {leased.id!r} is leased by worker 'other'"


def test_handle_job_for_a_run_that_no_longer_exists_is_skipped_so_the_message_can_go() -> None:
    _, _, host = pipeline()
    report = host.handle_job(
        {"workflow_run_id": "gone", "workflow_id": document_pipeline.id, "stage_id": "extract"}
    )
    assert (report.outcome, report.reason) == ("skipped", "workflow run 'gone' does not exist")


def test_handle_job_raises_a_store_failure_so_the_platform_retries_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel, store, host = pipeline()
    run_id = create_run(kernel)
    host.run_maintenance_tick()
    (job,) = store.get_jobs(run_id)

    def broken(*args: Any) -> Any:
        raise StoreError("the database is away")

    monkeypatch.setattr(store, "transaction", broken)
    message = {
        "workflow_run_id": run_id,
        "workflow_id": document_pipeline.id,
        "stage_id": "extract",
        "job_id": job.id,
    }
    with pytest.raises(StoreError, match="the database is away"):
        host.handle_job(message)
    assert store.get_jobs(run_id)[0].status == JobStatus.QUEUED


def test_handle_job_refuses_a_malformed_message() -> None:
    _, _, host = pipeline()
    expected = r"message\.stage_id: expected a non-empty string, got None"
    with pytest.raises(ValueError, match=expected):
        host.handle_job({"workflow_run_id": "r", "workflow_id": "w"})


def test_a_long_serverless_job_keeps_its_lease(tmp_path: Path) -> None:
    """The bounded call renews its lease, so maintenance ticks beside it (every 50 ms,
    reaping leases older than 150 ms) never take its job away during its 0.5 s."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    host = ServerlessHost(
        kernel,
        store,
        worker_id="fn",
        stale_lease_threshold=timedelta(milliseconds=150),
        lease_renew_interval=timedelta(milliseconds=30),
    )
    run_id = kernel.dispatch(
        RunCreate(workflow_id=slow_workflow.id, input={"marker_dir": str(tmp_path), "seconds": 0.5})
    ).workflow_run_id
    host.run_maintenance_tick()
    host.process_available_jobs()  # prepare
    slow_job = next(job for job in store.get_jobs(run_id) if job.stage_id == "slow")
    done = threading.Event()

    def ticks() -> None:
        while not done.wait(0.05):
            host.run_maintenance_tick()

    ticker = threading.Thread(target=ticks)
    ticker.start()
    try:
        report = host.handle_job(
            {
                "workflow_run_id": run_id,
                "workflow_id": slow_workflow.id,
                "stage_id": "slow",
                "job_id": slow_job.id,
            }
        )
    finally:
        done.set()
        ticker.join(timeout=5)
    assert report.outcome == "completed"
    assert len(start_markers(tmp_path)) == 1
    assert next(job for job in store.get_jobs(run_id) if job.stage_id == "slow").reap_count == 0


def test_releasing_gives_back_only_the_jobs_this_worker_holds() -> None:
    kernel, store, _ = pipeline()
    first, second = create_run(kernel, 0), create_run(kernel, 1)
    kernel.dispatch(RunClaimPending(worker_id="w"))
    held: list[str] = []

    def stop_before_running(job: Job) -> None:
        held.append(job.id)
        raise KeyboardInterrupt

    for worker in ("w", "other"):
        with pytest.raises(KeyboardInterrupt):
            kernel.execute_next_job(worker, on_start=stop_before_running)
    assert kernel.dispatch(LeaseRelease(job_ids=held, worker_id="w")).released == 1
    mine = store.get_jobs(first)[0]
    theirs = store.get_jobs(second)[0]
    assert (mine.status, mine.attempt, mine.reap_count) == (JobStatus.QUEUED, 0, 0)
    assert theirs.status == JobStatus.LEASED
    stages = {s.workflow_run_id: s.status for r in (first, second) for s in store.get_stages(r)}
    assert stages == {first: Status.PENDING, second: Status.RUNNING}


def test_the_release_decision_leaves_jobs_that_are_not_leased_alone() -> None:
    kernel, store, _ = pipeline()
    run_id = create_run(kernel)
    kernel.dispatch(RunClaimPending(worker_id="w"))
    queued = store.get_jobs(run_id)
    held = lease_release.Held(queued, {run_id: store.get_stages(run_id)})
    release = LeaseRelease(job_ids=[job.id for job in queued], worker_id="w")
    decision = lease_release.decide(release, held, env(T0)).unwrap()
    assert (decision.result.released, decision.effects) == (0, ())
