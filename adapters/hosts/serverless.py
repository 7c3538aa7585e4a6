"""``ServerlessHost``: bounded, stateless calls for queue- and cron-driven platforms (SPEC §8).

Each call is one short run of the same scheduling step function the worker
uses (:mod:`adapters.hosts.schedule`), with a budget: one job, ``max_jobs``
jobs, or one tick. So a serverless call also renews the lease of the job it
runs, and stops by itself when its budget is spent or the queue is empty.
Nothing is kept between calls: every call reads what it needs from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import frozen

from adapters.blobs_store import kernels_store
from adapters.hosts.driver import Driver, KeepGoing, OnFinish, OnStart, TakeJobs
from adapters.hosts.logs import HostLog
from adapters.hosts.schedule import Settings
from adapters.hosts.tick import Orchestrator, TickReport
from kernel.commands import JobExecute, JobExecuteResult, JobLease, JobOutcome
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import Job, Json, WorkflowRun
from kernel.status import JobStatus


@frozen(kw_only=True)
class JobReport:
    """What happened to one job in a serverless call."""

    workflow_run_id: str
    stage_id: str
    job_id: str | None
    outcome: JobOutcome
    output: Json = None
    error: str | None = None
    reason: str | None = None
    """Why a job was ``skipped`` without running (for example: leased by another worker)."""


@frozen(kw_only=True)
class ProcessJobsResult:
    """What :meth:`ServerlessHost.process_available_jobs` did."""

    processed: int
    jobs: tuple[JobReport, ...]


def _report(job: Job, result: JobExecuteResult) -> JobReport:
    return JobReport(
        workflow_run_id=job.workflow_run_id,
        stage_id=job.stage_id,
        job_id=job.id,
        outcome=result.outcome,
        output=result.output,
        error=result.error,
    )


def _text(message: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = message.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"message.{key}: expected a non-empty string, got {value!r}")
    return value


class ServerlessHost:
    """Stateless entry points for platforms that call code per message or per schedule.

    >>> from adapters import create_kernel
    >>> from adapters.memory import InMemoryStore
    >>> store = InMemoryStore()
    >>> host = ServerlessHost(create_kernel(store=store), store, worker_id="fn")
    >>> host.process_available_jobs(max_jobs=5).processed
    0

    Args:
        kernel: the kernel whose workflows the calls run.
        store: the kernel's store.
        worker_id: the name this function uses in leases and claims.
        stale_lease_threshold: maintenance ticks reap leases older than this.
        max_claims: pending runs one maintenance tick claims.
        lease_renew_interval: how often a running job's lease is renewed.
    """

    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        *,
        worker_id: str,
        stale_lease_threshold: timedelta = timedelta(seconds=60),
        max_claims: int = 10,
        lease_renew_interval: timedelta = timedelta(seconds=15),
    ) -> None:
        if not worker_id:
            raise ValueError(f"worker_id: expected a non-empty string, got {worker_id!r}")
        if lease_renew_interval >= stale_lease_threshold:
            raise ValueError(
                f"lease_renew_interval ({lease_renew_interval}) must be shorter than "
                f"stale_lease_threshold ({stale_lease_threshold}), or live jobs get reaped"
            )
        self.kernel = kernel
        store = kernels_store(kernel, store)
        self.store = store
        self.worker_id = worker_id
        self.lease_renew_interval = lease_renew_interval
        self.log = HostLog(worker_id)
        self._orchestrator = Orchestrator(
            kernel,
            store,
            worker_id=worker_id,
            stale_lease_threshold=stale_lease_threshold,
            max_claims=max_claims,
            log=self.log,
        )

    # -- the three calls ---------------------------------------------------------

    def handle_job(self, message: Mapping[str, Any]) -> JobReport:
        """Execute the job a queue message names, with its run's config.

        ``message`` has ``workflow_run_id``, ``workflow_id``, ``stage_id`` and,
        optionally, ``job_id`` (else the stage's queued job is used). The job is
        leased to this worker first, so a message delivered twice, or a job a
        worker already took, runs once: the second call is ``skipped`` with a
        ``reason``. A run that no longer exists is ``skipped`` too, so the
        platform can drop the message.

        Raises:
            ValueError: the message lacks a field or has a wrong one.
            StoreError: the store failed (let the platform retry the message).
        """
        run_id = _text(message, "workflow_run_id")
        workflow_id = _text(message, "workflow_id")
        stage_id = _text(message, "stage_id")
        job_id = _text(message, "job_id", required=False)
        assert run_id is not None and workflow_id is not None and stage_id is not None

        run = self.store.get_run(run_id)
        if run is None:
            return self._skipped(
                run_id, stage_id, job_id, f"workflow run {run_id!r} does not exist"
            )
        if job_id is not None:
            return self._run_job(run, workflow_id, stage_id, job_id)
        jobs = [job for job in self.store.get_jobs(run_id) if job.stage_id == stage_id]
        queued = [job for job in jobs if job.status == JobStatus.QUEUED]
        if queued:
            return self._run_job(run, workflow_id, stage_id, queued[-1].id)
        if jobs:
            reason = f"the stage's job is {jobs[-1].status}"
            return self._skipped(run_id, stage_id, jobs[-1].id, reason)
        # No job record to lease: execute the stage directly.
        command = JobExecute(
            workflow_run_id=run_id, workflow_id=workflow_id, stage_id=stage_id, config=run.config
        )
        result = self.kernel.dispatch(command)
        return JobReport(
            workflow_run_id=run_id,
            stage_id=stage_id,
            job_id=None,
            outcome=result.outcome,
            output=result.output,
            error=result.error,
        )

    def _run_job(self, run: WorkflowRun, workflow_id: str, stage_id: str, job_id: str) -> JobReport:
        """Lease the named job (``job.lease``) and execute it under the step function."""
        why: list[str] = []

        def take(
            max_jobs: int, on_start: OnStart, on_finish: OnFinish, _: KeepGoing, __: bool
        ) -> None:
            lease = JobLease(
                job_id=job_id, worker_id=self.worker_id, workflow_run_id=run.id, stage_id=stage_id
            )
            took = self.kernel.dispatch(lease)
            leased = took.job
            if leased is None:
                why.append(took.reason or "the job was not leased")
                return
            on_start(leased)
            command = JobExecute(
                workflow_run_id=run.id,
                workflow_id=workflow_id,
                stage_id=stage_id,
                config=run.config,
                job_id=leased.id,
            )
            on_finish(leased, self.kernel.dispatch(command))

        reports: list[JobReport] = []
        driver = self._driver(Settings(**self._bounded(), max_jobs=1), take, reports)
        driver.run()
        if driver.failure is not None:
            raise driver.failure  # logged already; the platform retries the message
        if reports:
            return reports[0]
        return self._skipped(run.id, stage_id, job_id, why[0] if why else "the job did not run")

    def _skipped(self, run_id: str, stage_id: str, job_id: str | None, reason: str) -> JobReport:
        self.log.info(
            "job skipped: %s",
            reason,
            extra={"workflow_run_id": run_id, "stage_id": stage_id, "job_id": job_id},
        )
        return JobReport(
            workflow_run_id=run_id,
            stage_id=stage_id,
            job_id=job_id,
            outcome="skipped",
            reason=reason,
        )

    def process_available_jobs(self, max_jobs: int = 1) -> ProcessJobsResult:
        """Lease and execute up to ``max_jobs`` available jobs, one after another.

        Stops early when the queue is empty. A job that finishes a stage may
        queue the next group's jobs; those count as available too. Each job's
        finish transaction also leases the next one (``Kernel.execute_jobs``),
        so the call commits one write transaction per job.
        """
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            raise ValueError(f"max_jobs: expected an int >= 1, got {max_jobs!r}")

        def take(
            budget: int, on_start: OnStart, on_finish: OnFinish, keep_going: KeepGoing, _: bool
        ) -> None:
            self.kernel.execute_jobs(
                self.worker_id, budget, on_start, on_finish=on_finish, keep_going=keep_going
            )

        settings = Settings(**self._bounded(), max_jobs=max_jobs, max_chain=max_jobs)
        reports: list[JobReport] = []
        self._driver(settings, take, reports).run()
        return ProcessJobsResult(processed=len(reports), jobs=tuple(reports))

    def run_maintenance_tick(self) -> TickReport:
        """One orchestration tick: claim, poll, reap, sweep, flush (for a cron schedule)."""
        settings = Settings(
            concurrency=0,
            orchestration_interval=timedelta(seconds=1),
            max_ticks=1,
            lease_renew_interval=self.lease_renew_interval,
        )
        driver = self._driver(settings, _no_jobs, [])
        driver.run()
        return driver.last_tick or TickReport(errors=("tick: did not run",))

    # -- internals -------------------------------------------------------------------

    def _bounded(self) -> dict[str, Any]:
        return {
            "concurrency": 1,
            "orchestration_interval": None,
            "stop_when_idle": True,
            "lease_renew_interval": self.lease_renew_interval,
        }

    def _driver(self, settings: Settings, take: TakeJobs, reports: list[JobReport]) -> Driver:
        return Driver(
            self.kernel,
            self.store,
            worker_id=self.worker_id,
            settings=settings,
            take_jobs=take,
            orchestrator=self._orchestrator,
            log=self.log,
            on_result=lambda job, result: reports.append(_report(job, result)),
        )


def _no_jobs(
    max_jobs: int, on_start: OnStart, on_finish: OnFinish, keep_going: KeepGoing, claim: bool
) -> None:
    pass
