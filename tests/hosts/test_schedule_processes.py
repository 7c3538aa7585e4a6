"""Real ``wfk worker`` processes firing one schedule: each fire time runs once (SPEC §14, §16.1).

The workers are ``python -m adapters.cli worker --app
tests.hosts.schedule_apps:beat_app`` on a SQLite file or on a PostgreSQL
schema (every test runs on both). The test process upserts an ``every=1s``
schedule with ``overlap="allow"`` and ``catchup="all"``, so each fire time
from the first on must start exactly one run, however late the hosts tick:
the tests count fire times, not timing.

A worker started with ``$WFK_TEST_TICK_PAUSE`` stops inside its first
schedule tick that finds the schedule due, after its store has read (and
locked) the row and before it commits, so the test can kill it there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters import create_kernel
from kernel import Schedule, ScheduleUpsert, Status
from kernel.ports import Store
from kernel.records import WorkflowRun
from kernel.schedules import ScheduleRecord
from tests.hosts.backends import Backend
from tests.hosts.schedule_apps import PAUSE_ENV, beat_workflow, read_pause_marker
from tests.hosts.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EVERY = timedelta(seconds=1)
SCHEDULE_ID = "beat"
TICKING_S = 20.0
"""How long the two workers of the first test tick the schedule together."""


class WorkerProcess:
    """One ``wfk worker`` subprocess whose output goes to a log file."""

    def __init__(
        self, url: str, worker_id: str, log_dir: Path, pause_marker: Path | None = None
    ) -> None:
        self.worker_id = worker_id
        self.log = log_dir / f"worker-{worker_id}.log"
        command = [
            sys.executable, "-m", "adapters.cli", "worker",
            "--app", "tests.hosts.schedule_apps:beat_app", "--store", url,
            "--worker-id", worker_id, "--concurrency", "2", "--poll", "0.05", "--tick", "0.1",
            "--stale-lease", "5", "--lease-renew", "1", "--drain", "10",
        ]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if key != PAUSE_ENV}
        env["PYTHONPATH"] = str(ROOT)
        if pause_marker is not None:
            env[PAUSE_ENV] = str(pause_marker)
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text()

    def fired_run_ids(self) -> list[str]:
        """The runs this worker's ticks created, from its log."""
        marker = f"schedule {SCHEDULE_ID} fired: run "
        return [
            line.split(marker, 1)[1].split()[0]
            for line in self.output().splitlines()
            if marker in line
        ]

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.worker_id} did not exit:\n{self.output()}"
            ) from None

    def stop(self) -> None:
        """SIGTERM; the caller waits."""
        self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.close()


def upsert_schedule(backend: Backend) -> tuple[Store, datetime]:
    """The ``every=1s`` schedule, upserted here; the store and its first fire time."""
    store = backend.open()
    kernel = create_kernel(beat_workflow, store=store)
    result = kernel.dispatch(
        ScheduleUpsert(
            Schedule(
                SCHEDULE_ID,
                beat_workflow.id,
                every=EVERY,
                input={"label": "tick"},
                overlap="allow",
                catchup="all",
            )
        )
    )
    assert result.created
    first = schedule_of(store).next_fire_at
    assert first is not None and result.next_fire_at is not None
    assert abs(first - result.next_fire_at) < timedelta(milliseconds=1)
    return store, first


def schedule_of(store: Store) -> ScheduleRecord:
    (schedule,) = store.get_schedules()
    assert schedule.id == SCHEDULE_ID
    return schedule


def scheduled_runs(store: Store) -> list[WorkflowRun]:
    runs = store.list_runs(workflow_id=beat_workflow.id, limit=10_000)
    assert all(run.metadata.get("schedule_id") == SCHEDULE_ID for run in runs)
    return runs


def fire_times(runs: list[WorkflowRun]) -> list[datetime]:
    """Each run's fire time, oldest first (a time fired twice appears twice)."""
    times = []
    for run in runs:
        text = run.metadata["fire_time"]
        assert isinstance(text, str) and text.endswith("+00:00"), text
        times.append(datetime.fromisoformat(text))
    return sorted(times)


def check_fires(store: Store, first: datetime) -> list[datetime]:
    """Every fire time from ``first`` to the last has exactly one run, and the schedule
    stands right after the last; returns the fire times."""
    runs = scheduled_runs(store)
    times = fire_times(runs)
    twice = sorted(at for at, count in Counter(times).items() if count > 1)
    assert twice == [], f"fire times with more than one run: {twice}"
    expected = [first + k * EVERY for k in range(len(times))]
    missing = sorted(set(expected) - set(times))
    assert times == expected, f"fire times not consecutive from {first}; missing {missing}"
    schedule = schedule_of(store)
    latest = times[-1]
    assert schedule.last_fire_at == latest
    assert schedule.next_fire_at == latest + EVERY
    by_fire = {datetime.fromisoformat(str(run.metadata["fire_time"])): run for run in runs}
    assert schedule.last_run_id == by_fire[latest].id
    failed = [(run.id, run.status, run.error) for run in runs if run.status == Status.FAILED]
    assert failed == []
    return times


def tick_for(seconds: float, workers: list[WorkerProcess]) -> None:
    """Let the workers run for ``seconds`` of wall time; fail at once if one exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for worker in workers:
            code = worker.process.poll()
            assert code is None, f"worker {worker.worker_id} exited {code}:\n{worker.output()}"
        time.sleep(0.1)


def test_two_workers_start_each_fire_time_of_a_schedule_exactly_once(
    backend: Backend, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    store, first = upsert_schedule(backend)
    workers += [WorkerProcess(backend.url, name, tmp_path) for name in ("A", "B")]
    tick_for(TICKING_S, workers)
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert worker.wait(20) == 0, worker.output()

    times = check_fires(store, first)
    assert len(times) >= 15, f"only {len(times)} fire time(s) in {TICKING_S:g} s"
    # Each run was logged by the one worker whose committed tick created it. (How
    # the fires split between the two depends on how their ticks line up with
    # the fire times: often both fire some, but one may win every time.)
    logged = Counter(run_id for worker in workers for run_id in worker.fired_run_ids())
    assert logged == Counter(run.id for run in scheduled_runs(store))
    completed = [run for run in scheduled_runs(store) if run.status == Status.COMPLETED]
    assert len(completed) >= len(times) - 4


def test_a_worker_killed_inside_a_schedule_tick_loses_no_fire_time(
    backend: Backend, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    store, first = upsert_schedule(backend)
    marker = tmp_path / "paused.json"
    paused = WorkerProcess(backend.url, "A", tmp_path, pause_marker=marker)
    workers.append(paused)
    found = wait_for(
        f"worker A to pause inside a schedule tick:\n{paused.output()}",
        lambda: read_pause_marker(marker),
        30,
    )
    assert found["pid"] == paused.process.pid
    (due,) = found["due"]
    assert due["id"] == SCHEDULE_ID
    assert datetime.fromisoformat(due["next_fire_at"]) == first
    # While A holds the tick open, fire times go by that nobody starts.
    wait_for("two more fire times to pass", lambda: datetime.now(UTC) >= first + 2 * EVERY, 10)
    paused.process.send_signal(signal.SIGKILL)
    assert paused.wait(10) == -signal.SIGKILL
    killed_at = datetime.now(UTC)
    assert scheduled_runs(store) == []  # A's tick never committed
    schedule = schedule_of(store)
    assert (schedule.next_fire_at, schedule.last_fire_at) == (first, None)
    assert paused.fired_run_ids() == []

    second = WorkerProcess(backend.url, "B", tmp_path)
    workers.append(second)
    wait_for(
        f"worker B to fire a time after the kill:\n{second.output()}",
        lambda: any(at > killed_at for at in fire_times(scheduled_runs(store))),
        30,
    )
    second.stop()
    assert second.wait(20) == 0, second.output()

    times = check_fires(store, first)
    assert times[-1] > killed_at
    assert len(times) >= 3
    assert Counter(second.fired_run_ids()) == Counter(run.id for run in scheduled_runs(store))
