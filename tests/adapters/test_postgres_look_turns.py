"""``PostgresStore.look_turn``: idle workers of several processes, woken by one
notification, look for its work one at a time (``kernel.ports.LookTurns``).

Each store here stands for a worker process: its own pool and its own ``LISTEN``
connection, on which the turn is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg import sql

from adapters.postgres import PostgresStore
from kernel.effects import EnqueueJob, InsertRun, UpdateJob, UpdateRun
from kernel.ports import LookTurns
from kernel.status import JobStatus, Status
from testing.store_cases.base import bump, make_job, make_run
from tests.postgres_support import (
    DSN,
    apply,
    drop_schema,
    fresh_schema,
    require_postgres,
    server_execute,
)

pytestmark = pytest.mark.postgres

HELD = sql.SQL(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 87152"
    " AND objsubid = 2 AND objid::text::bigint = (hashtext(%s)::bigint + 4294967296) %% 4294967296"
)
"""The server processes holding the look turn of a schema (the lock's second key is an
``oid``, the unsigned form of ``hashtext``'s result)."""


@pytest.fixture
def open_store() -> Iterator[Callable[..., PostgresStore]]:
    """Opens stores on one fresh schema (as separate processes would); closes them after."""
    require_postgres()
    schema = fresh_schema()
    opened: list[PostgresStore] = []

    def open_(**options: Any) -> PostgresStore:
        store = PostgresStore(DSN, schema=schema, pool_size=1, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    drop_schema(schema)


def turn_holders(store: PostgresStore) -> list[int]:
    """The server processes holding the look turn of ``store``'s schema."""
    return [row[0] for row in server_execute(HELD, store.schema)]


def test_the_store_offers_look_turns(open_store: Callable[..., PostgresStore]) -> None:
    assert isinstance(open_store(), LookTurns)


def test_the_check_says_whether_a_run_waits_for_a_claim_or_a_job_for_a_lease(
    open_store: Callable[..., PostgresStore],
) -> None:
    store = open_store()
    run = make_run()

    def check() -> bool:
        with store.look_turn(1.0) as work:
            return work

    assert check() is False  # nothing at all
    apply(store, InsertRun(run))
    assert check() is True  # a PENDING run
    running = bump(run, status=Status.RUNNING)
    apply(store, UpdateRun(running, expected_version=run.version), EnqueueJob(make_job("job-1")))
    assert check() is True  # a QUEUED job
    apply(store, UpdateJob(make_job("job-1", status=JobStatus.LEASED, worker_id="w1")))
    assert check() is False  # the run is claimed and its job leased


def test_a_check_that_finds_nothing_gives_the_turn_back_at_once(
    open_store: Callable[..., PostgresStore],
) -> None:
    first, second = open_store(), open_store()
    with first.look_turn(1.0) as work:
        assert work is False
        assert turn_holders(first) == []
        started = time.monotonic()
        with second.look_turn(5.0) as also:
            assert also is False
        assert time.monotonic() - started < 0.5


def test_the_next_worker_checks_only_once_the_look_in_turn_has_ended(
    open_store: Callable[..., PostgresStore],
) -> None:
    """The turn is held for the whole look: the next worker's check comes after it, and
    sees what the look took (here: the run claimed, its job leased)."""
    looker, waiter = open_store(), open_store()
    run = make_run()
    apply(looker, InsertRun(run))
    seen: list[tuple[float, bool]] = []

    def wait_for_turn() -> None:
        with waiter.look_turn(5.0) as work:
            seen.append((time.monotonic(), work))

    with looker.look_turn(1.0) as work:
        assert work is True
        thread = threading.Thread(target=wait_for_turn)
        thread.start()
        time.sleep(0.3)
        assert seen == []  # still waiting for the turn
        # The look: claims the run and leases its first job.
        apply(
            looker,
            UpdateRun(bump(run, status=Status.RUNNING), expected_version=run.version),
            EnqueueJob(make_job("job-1", status=JobStatus.LEASED, worker_id="w1")),
        )
        ended = time.monotonic()
    thread.join(5)
    [(checked_at, found)] = seen
    assert checked_at >= ended
    assert found is False


def test_a_turn_that_does_not_come_in_time_says_look_anyway(
    open_store: Callable[..., PostgresStore],
) -> None:
    """A look that holds the turn too long (a stuck worker) delays the others by the
    timeout at most; they look then, without the turn, and leave it to its holder."""
    stuck, late, next_one = open_store(), open_store(), open_store()
    apply(stuck, InsertRun(make_run()))
    with stuck.look_turn(1.0) as work:
        assert work is True
        started = time.monotonic()
        with late.look_turn(0.2) as anyway:
            assert anyway is True
            assert time.monotonic() - started >= 0.2
        assert len(turn_holders(stuck)) == 1  # still the stuck one's
    with next_one.look_turn(0.5) as work:
        assert work is True  # the run still waits: nobody claimed it


def test_a_worker_whose_session_dies_gives_the_turn_up(
    open_store: Callable[..., PostgresStore],
) -> None:
    crashed, other = open_store(), open_store()
    apply(crashed, InsertRun(make_run()))
    with crashed.look_turn(1.0) as work:
        assert work is True
        [holder] = turn_holders(crashed)
        server_execute(sql.SQL("SELECT pg_terminate_backend(%s)"), holder)
        started = time.monotonic()
        with other.look_turn(5.0) as also:
            assert also is True
        assert time.monotonic() - started < 1.0
    # Leaving a turn whose session is gone raises nothing; the next one reconnects.
    with crashed.look_turn(1.0) as again:
        assert again is True
    assert turn_holders(crashed) == []


def test_a_timeout_that_is_not_positive_is_refused(
    open_store: Callable[..., PostgresStore],
) -> None:
    store = open_store()
    for timeout in (0, -1.0):
        message = f"timeout: expected seconds > 0, got {timeout}"
        with pytest.raises(ValueError, match=message), store.look_turn(timeout):
            pass
