"""A finish's check goes out with its writes (``adapters/postgres/finish_checks.py``).

``unchanged`` (is the job as leased, its run and the run's stage records at the
versions the start read?) answers at once, and its check is the first thing the
transaction's next round trip runs: locks in the same order as before, and a
statement that fails the transaction unless every record is still so. A failed
check writes nothing and raises ``StaleVersionError`` (the kernel runs the finish
again), and the next check of that job asks the server first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from attrs import evolve

from adapters.postgres import PostgresStore
from adapters.postgres.finish_checks import DOUBTS_KEPT, Doubts
from bench.pg_counting import COUNTS, counting_store
from kernel.effects import EnqueueJob, InsertRun, InsertStage, UpdateJob, UpdateRun
from kernel.errors import StaleVersionError
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from testing.store_cases.base import T0, bump, make_job, make_run, make_stage
from tests.postgres_support import apply, connect_to, fresh_schema, require_postgres

pytestmark = pytest.mark.postgres

RUN = make_run(status=Status.RUNNING)
STAGES = [make_stage("run-1", "a"), make_stage("run-1", "b", 2)]
JOB = make_job("job-1", stage_id="a", status=JobStatus.LEASED, worker_id="w1", locked_at=T0)


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    made = counting_store(require_postgres(), schema=fresh_schema(), pool_size=2)
    made.migrate()
    made._pool.wait()
    apply(made, InsertRun(RUN), *(InsertStage(stage) for stage in STAGES), EnqueueJob(JOB))
    yield made
    made.drop_schema()
    made.close()


def _server(store: PostgresStore, statement: str) -> None:
    """Change the rows behind the store's back (another session, committed)."""
    with store._pool.connection() as conn:
        conn.execute(statement)


def _finish(store: PostgresStore, run: WorkflowRun = RUN) -> None:
    """What a finish does: ask whether its records are current, then write."""
    with store.transaction() as tx:
        assert tx.unchanged(run, STAGES, JOB)
        tx.apply(
            (
                UpdateJob(evolve(JOB, status=JobStatus.COMPLETED)),
                UpdateRun(bump(run, status=Status.COMPLETED), run.version),
            )
        )


def test_the_check_costs_no_round_trip_of_its_own(store: PostgresStore) -> None:
    trips, statements = COUNTS.round_trips, COUNTS.statements
    with store.transaction() as tx:
        assert tx.unchanged(RUN, STAGES, JOB)
        assert COUNTS.round_trips == trips  # nothing sent yet
        tx.apply(
            (
                UpdateJob(evolve(JOB, status=JobStatus.COMPLETED)),
                UpdateRun(bump(RUN, status=Status.COMPLETED), RUN.version),
            )
        )
    assert COUNTS.round_trips - trips == 1
    # BEGIN, the two checks, the job's and the run's updates, COMMIT.
    assert COUNTS.statements - statements == 6
    assert store.get_run("run-1") == bump(RUN, status=Status.COMPLETED)


def test_a_job_with_every_column_set_passes_its_check(store: PostgresStore) -> None:
    """The check reads the job it was given into the table's row type: every column
    compares equal to what the store wrote, whatever its type."""
    full = evolve(
        JOB,
        id="job-full",
        workflow_version="v2.1",
        priority=9,
        attempt=2,
        max_attempts=7,
        locked_at=T0 + timedelta(microseconds=123_456),
        available_at=T0 + timedelta(seconds=1, microseconds=1),
        payload={"nested": {"list": [1, 2.5, None, "ü"]}, "big": 2**70, "empty": {}},
        last_error="boom\nline two",
        reap_count=1,
        limit_key="api:openai",
        limit_max_running=3,
        limit_rate_count=10,
        limit_rate_per_us=60_000_000,
    )
    apply(store, EnqueueJob(full))
    with store.transaction() as tx:
        assert tx.unchanged(RUN, STAGES, full)
        tx.apply((UpdateJob(evolve(full, status=JobStatus.COMPLETED)),))
    assert evolve(full, status=JobStatus.COMPLETED) in store.get_jobs("run-1")


CHANGES: dict[str, Callable[[PostgresStore], None]] = {
    "job gone": lambda s: _server(s, "DELETE FROM jobs WHERE id = 'job-1'"),
    "job leased again": lambda s: _server(
        s, "UPDATE jobs SET worker_id = 'w2', attempt = 2 WHERE id = 'job-1'"
    ),
    "job's lease renewed": lambda s: _server(
        s, "UPDATE jobs SET locked_at = locked_at + interval '1 second' WHERE id = 'job-1'"
    ),
    "run moved on": lambda s: _server(s, "UPDATE runs SET version = 2 WHERE id = 'run-1'"),
    "stage moved on": lambda s: _server(s, "UPDATE stages SET version = 2 WHERE id = 'run-1/b'"),
    "stage added": lambda s: apply(s, InsertStage(make_stage("run-1", "c", 3))),
    "stage gone": lambda s: _server(s, "DELETE FROM stages WHERE id = 'run-1/b'"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_since_the_start_fails_the_finish_and_writes_nothing(
    store: PostgresStore, change: str
) -> None:
    CHANGES[change](store)
    changed = store.get_jobs("run-1"), store.get_run("run-1"), store.get_stages("run-1")

    with pytest.raises(StaleVersionError, match="run 'run-1' changed concurrently"):
        _finish(store)

    assert (store.get_jobs("run-1"), store.get_run("run-1"), store.get_stages("run-1")) == changed


def test_the_next_check_of_a_doubted_job_asks_first_and_sees_the_change(
    store: PostgresStore,
) -> None:
    CHANGES["run moved on"](store)
    with pytest.raises(StaleVersionError):
        _finish(store)

    trips = COUNTS.round_trips
    with store.transaction() as tx:
        assert not tx.unchanged(RUN, STAGES, JOB)  # asked the server: the run moved on
        assert COUNTS.round_trips == trips + 1
    trips = COUNTS.round_trips
    with store.transaction() as tx:
        assert tx.unchanged(evolve(RUN, version=2), STAGES, JOB)  # trusted again
        assert COUNTS.round_trips == trips


def test_after_effects_the_check_asks_first(store: PostgresStore) -> None:
    """Its statements would go out before the effects, and the effects may be the
    reason the records are no longer what the finish read (two finishes of one run in
    one transaction)."""
    with store.transaction() as tx:
        tx.apply((UpdateRun(bump(RUN), RUN.version),))
        trips = COUNTS.round_trips
        assert not tx.unchanged(RUN, STAGES, JOB)
        assert COUNTS.round_trips == trips + 1


def test_several_finishes_are_checked_together_and_one_change_fails_them_all(
    store: PostgresStore,
) -> None:
    run2 = make_run("run-2", status=Status.RUNNING)
    stages2 = [make_stage("run-2", "a")]
    job2 = evolve(JOB, id="job-2", workflow_run_id="run-2")
    apply(store, InsertRun(run2), InsertStage(stages2[0]), EnqueueJob(job2))
    items: list[tuple[WorkflowRun, list[WorkflowStage], Job | None]] = [
        (RUN, STAGES, JOB),
        (run2, stages2, job2),
    ]
    with store.transaction() as tx:
        assert tx.unchanged_many(items) == [True, True]
    _server(store, "UPDATE stages SET version = 5 WHERE id = 'run-2/a'")
    with pytest.raises(StaleVersionError), store.transaction() as tx:
        assert tx.unchanged_many(items) == [True, True]
        tx.apply((UpdateJob(evolve(JOB, status=JobStatus.COMPLETED)),))
    assert store.get_jobs("run-1") == [JOB]
    with store.transaction() as tx:  # both doubted: asked first
        assert tx.unchanged_many(items) == [True, False]


def test_a_finish_waits_for_the_lock_of_a_concurrent_change_then_sees_it(
    store: PostgresStore,
) -> None:
    """The check takes the job's and run's locks as the check before it did: a change
    committed while it waited is seen, not overwritten."""
    failed: list[BaseException] = []

    def finish() -> None:
        try:
            _finish(store)
        except BaseException as exc:  # reported below
            failed.append(exc)

    with connect_to(store.schema) as other, other.transaction():
        other.execute("UPDATE runs SET version = 3 WHERE id = 'run-1'")
        thread = threading.Thread(target=finish)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waiting for the run's lock
    thread.join(10)
    assert [type(exc) for exc in failed] == [StaleVersionError]
    assert store.get_jobs("run-1") == [JOB]


def test_doubts_are_forgotten_once_asked_and_bounded() -> None:
    doubts = Doubts()
    doubts.doubt(["job-1", "job-2"])
    assert doubts.doubted(["job-3", "job-1"])
    assert not doubts.doubted(["job-1"])  # asked once: trusted again
    assert doubts.doubted(["job-2"])
    doubts.doubt([f"job-{n}" for n in range(DOUBTS_KEPT)])
    doubts.doubt(["job-x"])  # full: the old ones are forgotten
    assert not doubts.doubted(["job-1", "job-2", "job-3"])
    assert doubts.doubted(["job-x"])


def test_a_store_without_doubts_always_asks_first(store: PostgresStore) -> None:
    store._doubts = None
    trips = COUNTS.round_trips
    with store.transaction() as tx:
        assert tx.unchanged(RUN, STAGES, JOB)
        assert COUNTS.round_trips == trips + 1
