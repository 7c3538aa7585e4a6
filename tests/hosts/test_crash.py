"""Real ``wfk worker`` processes on one database: kill -9 mid-stage, and SIGTERM (SPEC §8, §5.8).

Each worker is ``python -m adapters.cli worker --app tests.hosts.apps:slow_app``
on a SQLite file or on a PostgreSQL schema (``?schema=`` in the store URL):
every test runs on both. The ``slow`` stage writes a marker file when it
starts, so the test knows when a worker is inside user code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import create_kernel
from kernel import JobStatus, RunCreate, Status
from kernel.decisions.context import OUTBOX_CLAIM_LEASE
from kernel.ports import Store
from tests.hosts.apps import finish_markers, slow_workflow, start_markers
from tests.hosts.backends import Backend
from tests.hosts.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``wfk worker`` subprocess whose output goes to a log file."""

    def __init__(self, url: str, worker_id: str, log_dir: Path) -> None:
        self.log = log_dir / f"worker-{worker_id}.log"
        command = [
            sys.executable, "-m", "adapters.cli", "worker",
            "--app", "tests.hosts.apps:slow_app", "--store", url, "--worker-id", worker_id,
            "--concurrency", "2", "--poll", "0.05", "--tick", "0.1",
            "--stale-lease", "1", "--lease-renew", "0.2", "--drain", "10",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker did not exit:\n{self.output()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.close()


def setup_run(backend: Backend, tmp_path: Path, seconds: float) -> tuple[Store, str, Path]:
    markers = tmp_path / "markers"
    markers.mkdir()
    store = backend.open()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = kernel.dispatch(
        RunCreate(
            workflow_id=slow_workflow.id,
            input={"marker_dir": str(markers), "seconds": seconds},
        )
    ).workflow_run_id
    return store, run_id, markers


def started_stages(store: Store, run_id: str) -> Counter[str]:
    return Counter(
        event.payload["stage_id"]
        for event in store.get_outbox(run_id)
        if event.event_type == "stage:started"
    )


def check_outbox(store: Store, run_id: str, slow_starts: int) -> None:
    """Gap-free sequences, each event type as often as the run's history says, all published."""
    events = store.get_outbox(run_id)
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    assert Counter(event.event_type for event in events) == {
        "workflow:created": 1,
        "workflow:started": 1,
        "stage:started": 2 + slow_starts,
        "stage:completed": 3,
        "workflow:completed": 1,
    }
    assert started_stages(store, run_id) == {
        "prepare": 1,
        "slow": slow_starts,
        "finish": 1,
    }
    unpublished = [(e.sequence, e.event_type) for e in events if e.published_at is None]
    assert unpublished == []


def run_status(store: Store, run_id: str) -> Status:
    run = store.get_run(run_id)
    assert run is not None
    return run.status


def test_a_stage_killed_mid_execution_runs_again_exactly_once_on_another_worker(
    backend: Backend, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    store, run_id, markers = setup_run(backend, tmp_path, seconds=1.5)
    url = backend.url
    first = WorkerProcess(url, "A", tmp_path)
    workers.append(first)
    (marker,) = wait_for("worker A to start the slow stage", lambda: start_markers(markers), 20)
    first.process.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    assert f"-{first.process.pid}-" in marker.name
    slow_job = next(job for job in store.get_jobs(run_id) if job.stage_id == "slow")
    assert (slow_job.status, slow_job.worker_id) == (JobStatus.LEASED, "A")

    second = WorkerProcess(url, "B", tmp_path)
    workers.append(second)
    wait_for(
        f"the run to complete on worker B:\n{second.output()}",
        lambda: run_status(store, run_id) == Status.COMPLETED,
        30,
    )
    # If A died in the middle of an outbox flush, the events it had claimed wait
    # for that claim to lapse (OUTBOX_CLAIM_LEASE) before B publishes them.
    wait_for(
        "every event to be published",
        lambda: all(e.published_at is not None for e in store.get_outbox(run_id)),
        OUTBOX_CLAIM_LEASE.total_seconds() + 15,
    )
    second.process.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0, second.output()

    starts = start_markers(markers)
    assert len(starts) == 2
    assert f"-{second.process.pid}-" in starts[1].name
    assert len(finish_markers(markers)) == 1  # worker A never finished it
    jobs = store.get_jobs(run_id)
    assert all(job.status == JobStatus.COMPLETED for job in jobs)
    slow_job = next(job for job in jobs if job.stage_id == "slow")
    assert (slow_job.reap_count, slow_job.worker_id) == (1, "B")
    check_outbox(store, run_id, slow_starts=2)


def test_sigterm_lets_the_running_stage_finish_and_exits_zero(
    backend: Backend, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    store, run_id, markers = setup_run(backend, tmp_path, seconds=1.0)
    url = backend.url
    first = WorkerProcess(url, "A", tmp_path)
    workers.append(first)
    wait_for("worker A to start the slow stage", lambda: start_markers(markers), 20)
    signalled = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert first.wait(15) == 0, first.output()
    assert time.monotonic() - signalled < 10
    assert "SIGTERM received: draining" in first.output()

    slow = next(s for s in store.get_stages(run_id) if s.stage_id == "slow")
    assert (slow.status, slow.attempt) == (Status.COMPLETED, 1)
    jobs = {job.stage_id: job for job in store.get_jobs(run_id)}
    assert jobs["slow"].status == JobStatus.COMPLETED
    # The slow stage's finish queued the last job, but a stopping worker's finish
    # leases nothing: it stays queued, never started (no stage:started for it).
    finish = jobs["finish"]
    assert (finish.status, finish.worker_id, finish.attempt) == (JobStatus.QUEUED, None, 0)
    assert next(s for s in store.get_stages(run_id) if s.stage_id == "finish").status == (
        Status.PENDING
    )
    assert started_stages(store, run_id) == {"prepare": 1, "slow": 1}
    assert "back to the queue" not in first.output()
    assert all(job.status != JobStatus.LEASED for job in jobs.values())
    assert all(event.published_at is not None for event in store.get_outbox(run_id))

    # Another worker finishes the run; nothing that completed runs again.
    second = WorkerProcess(url, "B", tmp_path)
    workers.append(second)
    wait_for(
        f"the run to complete on worker B:\n{second.output()}",
        lambda: run_status(store, run_id) == Status.COMPLETED,
        30,
    )
    second.process.send_signal(signal.SIGINT)
    assert second.wait(15) == 0, second.output()
    assert len(start_markers(markers)) == 1
    check_outbox(store, run_id, slow_starts=1)
