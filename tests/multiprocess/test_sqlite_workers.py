"""Several processes on one SQLite file (SPEC §7: safe for several processes)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from adapters.sqlite import SqliteStore
from kernel import JobStatus, Status
from tests.multiprocess.harness import published_counts, run_workers

RUNS = 200
PROCESSES = 4


@pytest.mark.slow
def test_four_processes_drain_200_runs_each_claimed_and_executed_once(tmp_path: Path) -> None:
    """Every run claimed once, every job executed once, outbox sequences gap-free,
    and no event published twice."""
    db = tmp_path / "shared.db"

    def factory() -> SqliteStore:
        return SqliteStore(str(db))

    files = run_workers(factory, PROCESSES, RUNS, tmp_path)

    store = factory()
    runs = store.list_runs(limit=RUNS + 1)
    assert len(runs) == RUNS
    assert Counter(run.status for run in runs) == {Status.COMPLETED: RUNS}
    for run in runs:
        assert run.output == {"n": int(run.input["n"]) + 3}
        outbox = store.get_outbox(run.id)
        assert [event.sequence for event in outbox] == list(range(1, len(outbox) + 1))
        types = Counter(event.event_type for event in outbox)
        assert types["workflow:started"] == 1, "claimed exactly once"
        assert types["stage:started"] == 3, "each stage executed exactly once"
        assert types["stage:completed"] == 3
        assert all(event.published_at is not None for event in outbox)
        assert {job.status for job in store.get_jobs(run.id)} == {JobStatus.COMPLETED}
        assert [stage.attempt for stage in store.get_stages(run.id)] == [1, 1, 1]
    published = published_counts(files)
    assert sum(published.values()) == sum(len(store.get_outbox(run.id)) for run in runs)
    assert max(published.values()) == 1, "no event published twice"
    store.close()
