"""``PostgresStore`` passes the store conformance suite, and holds up where only a
shared server can be tested: separate processes' pools, killed sessions,
concurrent migrations and LISTEN/NOTIFY (SPEC §7).

The server comes from ``WFK_POSTGRES_DSN`` (default: the local ``test``
database). Without a server these tests skip, saying why; with ``CI`` set
they fail instead (``tests.postgres_support``). Every test works in a fresh
schema, dropped afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from attrs import evolve
from psycopg import sql

from adapters.memory import InMemoryStore
from adapters.postgres import PostgresStore
from adapters.postgres.queries import LATEST_VERSION
from kernel.effects import (
    AppendLog,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    StoreEffect,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateStage,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.ports import Store
from kernel.status import JobStatus, Status
from testing.conformance import StoreConformance
from testing.store_cases.base import (
    LEASE,
    append,
    at,
    bump,
    log,
    make_job,
    make_run,
    make_stage,
)
from tests.postgres_support import (
    DSN,
    apply,
    drop_schema,
    fresh_schema,
    race,
    require_postgres,
    server_execute,
)

pytestmark = pytest.mark.postgres

WAKE_LIMIT_S = 0.2


class _SchemaDroppingStore(PostgresStore):
    """A store whose ``close`` also drops its schema, for the conformance suite."""

    def close(self) -> None:
        try:
            drop_schema(self.schema)
        finally:
            super().close()


class TestPostgresStore(StoreConformance):
    def make_store(self) -> Store:
        return _SchemaDroppingStore(require_postgres(), schema=fresh_schema())


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


@pytest.fixture
def open_store(schema: str) -> Iterator[Callable[..., PostgresStore]]:
    """Opens stores on the test's schema (as separate processes would); closes them after."""
    opened: list[PostgresStore] = []

    def open_(**options: Any) -> PostgresStore:
        store = PostgresStore(DSN, schema=schema, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., PostgresStore]) -> PostgresStore:
    return open_store()


# -- claims across processes -------------------------------------------------


def test_leases_from_four_processes_never_share_a_job(
    open_store: Callable[..., PostgresStore],
) -> None:
    """Four stores (own pools, like four processes) leasing at once each get distinct jobs."""
    stores = [open_store(pool_size=1) for _ in range(4)]
    apply(stores[0], InsertRun(make_run()))
    apply(stores[0], *(EnqueueJob(make_job(f"job-{i:02}", created=i)) for i in range(60)))

    def lease_all(worker: int) -> list[str]:
        leased: list[str] = []
        while True:
            with stores[worker].transaction() as tx:
                job = tx.lease_next_job(f"worker-{worker}", at(100))
            if job is None:
                return leased
            leased.append(job.id)

    leased = [job_id for ids in race(4, lease_all) for job_id in ids]
    assert sorted(leased) == [f"job-{i:02}" for i in range(60)]


def test_outbox_sequences_are_gap_free_and_follow_commit_order(
    open_store: Callable[..., PostgresStore],
) -> None:
    """Concurrent writers to one run: 1..N exactly once, each transaction's events adjacent."""
    stores = [open_store(pool_size=1) for _ in range(4)]
    apply(stores[0], InsertRun(make_run()))

    def write(thread: int) -> None:
        for i in range(10):
            apply(stores[thread], *(append(f"ev-{thread}-{i}-{k}") for k in range(3)))

    race(4, write)
    events = stores[0].get_outbox("run-1")
    assert [event.sequence for event in events] == list(range(1, 121))
    # The run's counter row is locked until commit, so a transaction's three
    # events get consecutive numbers, in the order it appended them.
    for first in range(0, 120, 3):
        ids = [event.id for event in events[first : first + 3]]
        assert [event_id.rsplit("-", 1)[1] for event_id in ids] == ["0", "1", "2"]
        assert len({event_id.rsplit("-", 1)[0] for event_id in ids}) == 1
    # Insertion order (what flushes follow) agrees with sequence order.
    assert stores[0].get_outbox() == events


def test_concurrent_flushes_publish_each_event_once_in_run_order(
    open_store: Callable[..., PostgresStore],
) -> None:
    """Flushes racing over five runs never share an event and keep each run's order."""
    stores = [open_store(pool_size=1) for _ in range(4)]
    apply(stores[0], *(InsertRun(make_run(f"run-{r}", created=r)) for r in range(5)))
    apply(stores[0], *(append(f"ev-{r}-{i:02}", f"run-{r}") for i in range(12) for r in range(5)))
    lock = threading.Lock()
    claimed: list[tuple[str, int]] = []

    def flush(worker: int) -> None:
        while True:
            with stores[worker].transaction() as tx:
                events = tx.claim_outbox(at(1), 4, LEASE)
            if not events:
                return
            with lock:
                claimed.extend((event.workflow_run_id, event.sequence) for event in events)
            apply(stores[worker], *(UpdateOutbox(evolve(e, published_at=at(2))) for e in events))

    race(4, flush)
    assert sorted(claimed) == sorted((f"run-{r}", s) for r in range(5) for s in range(1, 13))
    for r in range(5):
        # Claims of one run came one after another, in sequence order.
        assert [s for run, s in claimed if run == f"run-{r}"] == list(range(1, 13))
    assert all(event.published_at == at(2) for event in stores[0].get_outbox())


# -- failures ----------------------------------------------------------------


def test_killed_session_fails_the_transaction_and_writes_nothing(store: PostgresStore) -> None:
    """A backend terminated mid-transaction: ``StoreError``, no partial write, next one works."""
    store.migrate()
    lost = pytest.raises(StoreError, match="lost the PostgreSQL connection")
    with lost, store.transaction() as tx:
        tx.get_run("run-0")  # the transaction begins
        tx.apply([InsertRun(make_run("run-1")), PutBlob("blob", 1)])
        (session,) = server_execute(
            sql.SQL(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name = %s AND state = 'idle in transaction'"
            ),
            f"workflow-kernel:{store.schema}",
        )
        server_execute(sql.SQL("SELECT pg_terminate_backend(%s)"), session[0])
        tx.get_run("run-1")
    assert store.get_run("run-1") is None
    assert store.get_blob("blob") == (False, None)
    apply(store, InsertRun(make_run("run-2")))
    assert store.get_run("run-2") is not None


def test_store_recovers_after_the_server_drops_every_connection(store: PostgresStore) -> None:
    """After all sessions are killed (a server restart), at most one call fails."""
    apply(store, InsertRun(make_run("run-1")))
    server_execute(
        sql.SQL(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
        ),
        f"workflow-kernel:{store.schema}",
    )
    failures = 0
    for _ in range(4):
        try:
            assert store.get_run("run-1") is not None
        except StoreError:
            failures += 1
    assert failures <= 1
    assert store.get_run("run-1") is not None


def test_unreachable_server_raises_store_error() -> None:
    """No server: calls raise ``StoreError`` naming the cause instead of hanging."""
    dead = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere", timeout=0.5)
    try:
        with pytest.raises(StoreError, match="no PostgreSQL connection"):
            dead.get_run("run-1")
    finally:
        dead.close()


def test_stale_update_caught_inside_a_transaction_acts_like_the_memory_store(
    store: PostgresStore,
) -> None:
    """Effects before the stale one stay applied, effects after it do not, as in memory.

    In memory ``apply`` raises at once; PostgreSQL sends the effects with the
    transaction's next statement, and that call raises.
    """
    results = []
    for candidate in (InMemoryStore(), store):
        apply(candidate, InsertRun(make_run()))
        stale = UpdateRun(bump(make_run(version=4)), expected_version=4)
        with candidate.transaction() as tx:
            with pytest.raises(StaleVersionError):
                tx.apply([PutBlob("before", 1), stale, PutBlob("after", 2)])
                tx.get_blob("before")
            assert tx.get_blob("before") == (True, 1)
            tx.apply([PutBlob("later", 3)])
        results.append(
            [candidate.get_blob(name) for name in ("before", "after", "later")]
            + [candidate.get_run("run-1")]
        )
    assert results[0] == results[1]
    assert results[1][:3] == [(True, 1), (False, None), (True, 3)]


def test_a_stale_row_among_several_caught_in_the_transaction_acts_like_the_memory_store(
    store: PostgresStore,
) -> None:
    """The store writes several rows of each kind with one statement (a group of
    finishes); caught inside the transaction, a refused update among them still leaves
    the effects before it, in the order given, applied and those after it not."""
    results = []
    for candidate in (InMemoryStore(), store):
        apply(candidate, *(InsertRun(make_run(r)) for r in ("run-1", "run-2")))
        apply(candidate, *(InsertStage(make_stage(r, "a")) for r in ("run-1", "run-2")))
        effects: list[StoreEffect] = [PutBlob("before", 1)]
        for run_id, expected in (("run-1", 1), ("run-2", 7)):
            stage = evolve(make_stage(run_id, "a"), version=expected)
            effects += [
                UpdateStage(bump(stage, status=Status.COMPLETED), expected_version=expected),
                UpdateRun(bump(make_run(run_id), status=Status.COMPLETED), expected_version=1),
            ]
        with candidate.transaction() as tx:
            with pytest.raises(StaleVersionError) as raised:
                tx.apply([*effects, PutBlob("after", 2)])
                tx.get_blob("before")
            tx.apply([PutBlob("later", 3)])
        assert (raised.value.entity, raised.value.entity_id) == ("stage", "run-2/a")
        results.append(
            [candidate.get_blob(name) for name in ("before", "after", "later")]
            + [candidate.get_stages(run_id) for run_id in ("run-1", "run-2")]
            + [candidate.get_run(run_id) for run_id in ("run-1", "run-2")]
        )
    assert results[0] == results[1]
    assert results[1][:3] == [(True, 1), (False, None), (True, 3)]
    assert results[1][3] != [make_stage("run-1", "a")]  # run-1's updates came before


def test_stale_update_sent_with_the_commit_commits_nothing(store: PostgresStore) -> None:
    """Effects that go out with the ``COMMIT`` are checked on the server first: a
    stale one raises ``StaleVersionError`` and none of the transaction's writes land."""
    apply(store, InsertRun(make_run()))
    with pytest.raises(StaleVersionError), store.transaction() as tx:
        assert tx.get_run("run-1") == make_run()
        tx.apply([PutBlob("before", 1)])
        tx.apply([UpdateRun(bump(make_run(version=4)), expected_version=4)])
    assert store.get_blob("before") == (False, None)
    assert store.get_run("run-1") == make_run()


def test_deadlock_is_a_stale_version_the_kernel_retries(store: PostgresStore) -> None:
    """Two transactions locking two runs in opposite orders: PostgreSQL aborts one,
    which raises ``StaleVersionError`` (so ``Kernel.transact`` retries it)."""
    apply(store, InsertRun(make_run("run-1")), InsertRun(make_run("run-2")))
    both_locked = threading.Barrier(2, timeout=10)

    def lock_both(index: int) -> str:
        first, second = ("run-1", "run-2") if index == 0 else ("run-2", "run-1")
        try:
            with store.transaction() as tx:
                tx.get_run(first)  # a transaction's read locks the run
                both_locked.wait()
                tx.get_run(second)
        except StaleVersionError as exc:
            return f"retry: {exc}"
        return "committed"

    outcomes = sorted(race(2, lock_both))
    assert outcomes[0] == "committed"
    assert outcomes[1].startswith("retry:") and "DeadlockDetected" in outcomes[1]


def unstorable_blob() -> StoreEffect:
    """A value the server refuses: ``jsonb`` cannot hold a NUL character (``\\u0000``)."""
    return PutBlob("unstorable", {"text": "nul \x00 char"})


def unsendable_log() -> StoreEffect:
    """A log line psycopg refuses to send: PostgreSQL text cannot hold a NUL byte."""
    return AppendLog(evolve(log("l1"), message="nul \x00 byte"))


@pytest.mark.parametrize("refused", [unstorable_blob, unsendable_log])
def test_database_error_inside_apply_undoes_that_apply_only(
    store: PostgresStore, refused: Callable[[], StoreEffect]
) -> None:
    """An effect the server (or the driver) refuses raises ``StoreError``, undoes the
    other effects of its ``apply``, and leaves the transaction usable."""
    apply(store, InsertRun(make_run()))
    with store.transaction() as tx:
        with pytest.raises(StoreError):
            tx.apply([PutBlob("undone", 1), EnqueueJob(make_job("job-1")), refused()])
            tx.get_blob("undone")  # the effects go out with this read
        assert tx.get_blob("undone") == (False, None)
        tx.apply([PutBlob("kept", 2)])
    assert store.get_blob("undone") == (False, None)
    assert store.get_jobs("run-1") == []
    assert store.get_blob("kept") == (True, 2)


def test_commit_after_a_swallowed_database_error_raises(store: PostgresStore) -> None:
    """A transaction the server aborted (here, to break a deadlock) never reports a
    successful commit, even when its caller swallowed the error."""
    apply(store, InsertRun(make_run("run-1")), InsertRun(make_run("run-2")))
    both_locked = threading.Barrier(2, timeout=10)

    def lock_both(index: int) -> str:
        first, second = ("run-1", "run-2") if index == 0 else ("run-2", "run-1")
        try:
            with store.transaction() as tx:
                tx.get_run(first)
                both_locked.wait()
                with suppress(StaleVersionError):
                    tx.get_run(second)
        except StoreError as exc:
            return str(exc)
        return "committed"

    committed, refused = sorted(race(2, lock_both), key=lambda outcome: outcome != "committed")
    assert committed == "committed"
    assert "could not commit" in refused


# -- schema ------------------------------------------------------------------


def test_concurrent_first_use_of_a_new_schema_migrates_it_once(
    open_store: Callable[..., PostgresStore], schema: str
) -> None:
    """Processes opening one new schema at once all succeed; each version is recorded once."""
    stores = [open_store(pool_size=1) for _ in range(4)]
    assert race(4, lambda i: stores[i].migrate()) == [LATEST_VERSION] * 4
    assert stores[0].migrate() == LATEST_VERSION
    versions = server_execute(
        sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    )
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]
    apply(stores[1], InsertRun(make_run()))
    assert stores[2].get_run("run-1") == make_run()


def test_schema_written_by_newer_code_is_refused(
    open_store: Callable[..., PostgresStore], schema: str
) -> None:
    """A schema version above what this code knows raises ``StoreError`` on first use."""
    open_store().migrate()
    server_execute(
        sql.SQL("INSERT INTO {}.schema_version (version) VALUES (999)").format(
            sql.Identifier(schema)
        )
    )
    with pytest.raises(StoreError, match="version 999"):
        open_store().get_run("run-1")


def test_schema_name_must_be_a_plain_identifier() -> None:
    """Schema names are validated before any SQL is built from them."""
    with pytest.raises(ValueError, match="schema"):
        PostgresStore(DSN, schema='x"; DROP SCHEMA public; --')


def test_drop_schema_removes_everything_and_next_use_recreates_it(store: PostgresStore) -> None:
    """``drop_schema`` forgets all data; the store creates the schema again when used."""
    apply(store, InsertRun(make_run()))
    store.drop_schema()
    assert store.get_run("run-1") is None


# -- LISTEN/NOTIFY -----------------------------------------------------------


def test_wait_for_jobs_wakes_soon_after_an_enqueue_elsewhere(
    open_store: Callable[..., PostgresStore],
) -> None:
    """A waiting host wakes within 200 ms of another process committing a job."""
    waiter, producer = open_store(), open_store()
    apply(producer, InsertRun(make_run()))
    assert waiter.wait_for_jobs(0) is False  # starts listening
    woke_at: list[float] = []

    def wait() -> None:
        if waiter.wait_for_jobs(5):
            woke_at.append(time.monotonic())

    thread = threading.Thread(target=wait)
    thread.start()
    apply(producer, EnqueueJob(make_job("job-1")))
    committed_at = time.monotonic()
    thread.join(10)
    assert woke_at, "wait_for_jobs did not wake"
    assert woke_at[0] - committed_at < WAKE_LIMIT_S


def test_wait_for_jobs_times_out_and_ignores_rolled_back_enqueues(
    open_store: Callable[..., PostgresStore],
) -> None:
    """Without a committed enqueue the wait ends at its timeout, returning False."""
    waiter, producer = open_store(), open_store()
    apply(producer, InsertRun(make_run()))
    assert waiter.wait_for_jobs(0) is False
    with pytest.raises(RuntimeError), producer.transaction() as tx:
        tx.apply([EnqueueJob(make_job("job-1"))])
        raise RuntimeError("roll back")
    started = time.monotonic()
    assert waiter.wait_for_jobs(0.1) is False
    assert time.monotonic() - started >= 0.1


def test_a_job_queued_and_leased_in_one_transaction_wakes_nobody(
    open_store: Callable[..., PostgresStore],
) -> None:
    """A worker that queues the next stage's job and leases it in the same transaction
    (a finish with the next lease) leaves nothing for waiting workers: no wake-up. A
    job it queues but does not lease there still wakes them."""
    waiter, worker = open_store(), open_store()
    apply(worker, InsertRun(make_run()))
    assert waiter.wait_for_jobs(0) is False
    with worker.transaction() as tx:
        tx.apply([EnqueueJob(make_job("job-1"))])
        leased = tx.lease_next_job("w1", at(1))
    assert leased is not None and leased.id == "job-1"
    assert waiter.wait_for_jobs(0.1) is False
    with worker.transaction() as tx:
        tx.apply(
            [EnqueueJob(make_job("job-2", created=2)), EnqueueJob(make_job("job-3", created=3))]
        )
        leased = tx.lease_next_job("w1", at(4))
    assert leased is not None and leased.id == "job-2"
    assert waiter.wait_for_jobs(2) is True  # job-3 waits in the queue


def test_requeued_job_wakes_waiters(open_store: Callable[..., PostgresStore]) -> None:
    """An ``UpdateJob`` back to QUEUED (a retry or a reaped lease) notifies as well."""
    waiter, producer = open_store(), open_store()
    apply(producer, InsertRun(make_run()), EnqueueJob(make_job("job-1", status=JobStatus.LEASED)))
    assert waiter.wait_for_jobs(0) is False
    apply(producer, UpdateJob(make_job("job-1", attempt=1)))
    assert waiter.wait_for_jobs(2) is True
    apply(producer, UpdateJob(make_job("job-1", status=JobStatus.COMPLETED)))
    assert waiter.wait_for_jobs(0.05) is False
