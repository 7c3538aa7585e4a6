"""The issue's "done when": a worker process killed with ``kill -9`` right after the
provider accepted its batch is replaced by another worker process, which adopts the
batch. The provider saw exactly one submission, and the ledger counts each item once
(SPEC §12; real processes on one SQLite file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sqlite import SqliteStore
from kernel import RunCreate, Status
from testing import FakeBatchProvider
from tests.batch.process_worker import kernel_for
from tests.batch.workflows import DOCS, ITEM_COST
from tests.hosts.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One worker subprocess, its output in a log file."""

    def __init__(self, tmp: Path, worker_id: str, *flags: str) -> None:
        self.log = tmp / f"{worker_id}.log"
        command = [
            sys.executable, "-m", "tests.batch.process_worker",
            str(tmp / "runs.db"), str(tmp / "provider.json"), worker_id, *flags,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def exit_code(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker did not exit:\n{self.log.read_text()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def test_a_worker_killed_after_submitting_is_replaced_without_paying_twice(
    tmp_path: Path, workers: list[Worker]
) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    provider = FakeBatchProvider(state_path=tmp_path / "provider.json")
    kernel = kernel_for(store, tmp_path / "provider.json")
    run_id = kernel.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id

    first = Worker(tmp_path, "first", "--die-after-submit")
    workers.append(first)
    assert first.exit_code(timeout=30) == -signal.SIGKILL
    assert len(provider.submitted) == 1  # paid for, and the worker is gone

    second = Worker(tmp_path, "second")
    workers.append(second)

    def completed() -> bool:
        run = store.get_run(run_id)
        return run is not None and run.is_terminal

    wait_for("the second worker to finish the run", completed, timeout=60)
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED, second.log.read_text()
    assert run.output == {
        "summaries": {"a": "reply to a", "b": "reply to b", "c": "reply to c"},
        "failed": {},
    }
    assert len(provider.submitted) == 1
    usage = store.get_usage(run_id)
    assert Counter(entry.call_id for entry in usage) == {
        f"{provider.submitted[0]}:{key}": 1 for key in ("a", "b", "c")
    }
    assert run.total_cost == 3 * ITEM_COST
    assert "adopted batch" in "".join(line.message for line in store.get_logs(run_id))
