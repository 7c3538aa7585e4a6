"""The serverless host on a cron and a queue platform, with the platform simulated in memory."""

from collections.abc import Mapping
from typing import Any

import attrs

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.hosts import ServerlessHost
from adapters.memory import InMemoryStore
from kernel import Job, JobStatus, RunCreate, Status

store = InMemoryStore()  # on a real platform: SqliteStore(...) or PostgresStore(dsn)
kernel = create_kernel(document_pipeline, store=store)


# --8<-- [start:cron]
host = ServerlessHost(kernel, store, worker_id="cron-fn")


def every_minute(event: Mapping[str, Any], context: object) -> dict[str, int]:
    """A scheduled function (cron): keep runs moving, then work for a bounded time."""
    tick = host.run_maintenance_tick()  # claim, poll, reap stale leases, flush
    done = host.process_available_jobs(max_jobs=20)  # stops early when the queue is empty
    return {"claimed": tick.claimed, "jobs": done.processed}


# --8<-- [end:cron]


# --8<-- [start:queue]
def job_message(job: Job) -> dict[str, str]:
    return {
        "workflow_run_id": job.workflow_run_id,
        "workflow_id": job.workflow_id,
        "stage_id": job.stage_id,
        "job_id": job.id,
    }


def on_message(message: Mapping[str, Any], send: Any) -> str:
    """A queue consumer: run the job the message names, then announce the run's next jobs.

    Announcing a job twice is harmless: ``handle_job`` leases the job first,
    so a second message for it is ``skipped``.
    """
    report = host.handle_job(message)
    for job in store.get_jobs(report.workflow_run_id):
        if job.status == JobStatus.QUEUED:
            send(job_message(job))
    return report.outcome


# --8<-- [end:queue]


def main() -> None:
    # Cron: runs created by anyone are claimed and worked off by the schedule.
    first = kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
    )
    assert every_minute({}, None) == {"claimed": 1, "jobs": 4}
    run = store.get_run(first.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED

    # Queue: a maintenance tick claims the run; its first job goes to the queue.
    second = kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[1]))
    )
    host.run_maintenance_tick()
    queue = [job_message(job) for job in store.get_jobs(second.workflow_run_id)]
    outcomes = []
    while queue:  # the platform delivers messages one by one
        outcomes.append(on_message(queue.pop(0), queue.append))
    assert outcomes.count("completed") == 4  # extract, classify, summarize, merge
    run = store.get_run(second.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output["categories"] == ["technology"]


if __name__ == "__main__":
    main()
