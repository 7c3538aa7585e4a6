"""How many times a ``PostgresStore`` transaction waits for the server (issue 14).

``BEGIN`` goes out with a transaction's first statement and its effects with
its next statement or its ``COMMIT``; reads the kernel makes one after another
go out together (a run with its stages; a lease with the leased job's run,
stages and inputs; a finish's check of the job, run and stages). The counts
come from ``bench/pg_counting.py``'s connection class, below the store's code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from attrs import evolve

from adapters.effect_order import by_kind
from adapters.memory import InMemoryStore
from adapters.postgres import PostgresStore
from adapters.postgres.queries import QUERIES
from bench.pg_counting import COUNTS, counting_store
from kernel.decisions.lifecycle import output_key
from kernel.effects import (
    AppendOutbox,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    StoreEffect,
    UpdateJob,
    UpdateRun,
    UpdateStage,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.events import StageStarted
from kernel.ports import Store
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from testing.store_cases.base import T0, append, at, bump, make_job, make_run, make_stage
from tests.postgres_support import apply, fresh_schema, require_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    made = counting_store(require_postgres(), schema=fresh_schema(), pool_size=2)
    made.migrate()
    made._pool.wait()  # pooled connections are set up (and counted) in the background
    yield made
    made.drop_schema()
    made.close()


@pytest.fixture
def checks_first(store: PostgresStore) -> Iterator[None]:
    """``store``'s ``unchanged`` asks the server at once, as it does for a job whose
    last check failed or after effects (it answers at once otherwise and checks with the
    writes: ``tests/adapters/test_postgres_finish_checks.py``)."""
    doubts, store._doubts = store._doubts, None
    yield
    store._doubts = doubts


class Trips:
    """Round trips, and statements, since it was made."""

    def __init__(self) -> None:
        self.start = COUNTS.round_trips
        self.first_statement = COUNTS.statements

    @property
    def count(self) -> int:
        return COUNTS.round_trips - self.start

    @property
    def statements(self) -> int:
        return COUNTS.statements - self.first_statement


def test_read_modify_write_transaction_costs_two_round_trips(store: PostgresStore) -> None:
    """Reading a run brings its stages along; the update goes out with the commit."""
    apply(store, InsertRun(make_run()), InsertStage(make_stage("run-1", "a")))
    trips = Trips()
    with store.transaction() as tx:
        run = tx.get_run("run-1")
        assert run is not None
        assert tx.get_stages("run-1") == [make_stage("run-1", "a")]
        tx.apply([UpdateRun(bump(run, error="x"), expected_version=run.version)])
    assert trips.count == 2
    assert store.get_run("run-1") == bump(make_run(), error="x")


def test_effects_go_out_with_the_next_read_which_sees_them(store: PostgresStore) -> None:
    trips = Trips()
    with store.transaction() as tx:
        tx.apply([InsertRun(make_run()), PutBlob("k", {"v": 1})])
        assert trips.count == 0
        assert tx.get_blob("k") == (True, {"v": 1})
        assert trips.count == 1
    assert trips.count == 2
    assert store.get_run("run-1") == make_run()


def test_transaction_that_only_applies_costs_one_round_trip(store: PostgresStore) -> None:
    """``BEGIN``, the effects (two applies) and ``COMMIT`` go out together."""
    trips = Trips()
    with store.transaction() as tx:
        tx.apply([InsertRun(make_run())])
        tx.apply([EnqueueJob(make_job("job-1"))])
    assert trips.count == 1
    assert [job.id for job in store.get_jobs("run-1")] == ["job-1"]


def test_rolled_back_transaction_sends_effects_that_never_went_out(
    store: PostgresStore,
) -> None:
    trips = Trips()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.apply([InsertRun(make_run())])
        raise RuntimeError("boom")
    assert trips.count == 0
    assert store.get_run("run-1") is None


def test_lease_brings_the_run_its_stages_and_the_stages_inputs(store: PostgresStore) -> None:
    """After a lease, the leased job's run, its stages and the stored outputs of the group
    before the leased stage's are read without another round trip."""
    done = make_stage("run-1", "a", status=Status.COMPLETED, output_ref=output_key("run-1", "a"))
    apply(
        store,
        InsertRun(make_run()),
        InsertStage(done),
        InsertStage(make_stage("run-1", "b", number=2)),
        PutBlob(output_key("run-1", "a"), {"n": 7}),
        EnqueueJob(make_job("job-1", stage_id="b")),
    )
    trips = Trips()
    with store.transaction() as tx:
        job = tx.lease_next_job("w1", T0)
        assert job is not None and job.worker_id == "w1"
        run, stages, outputs = tx.get_run_with_stages("run-1", 1)
        assert tx.get_blob(output_key("run-1", "a")) == (True, {"n": 7})
        assert trips.count == 1
    assert run == make_run()
    assert [stage.stage_id for stage in stages] == ["a", "b"]
    assert outputs == {done.id: {"n": 7}}


@pytest.mark.usefixtures("checks_first")
def test_unchanged_checks_job_run_and_stages_in_one_round_trip(store: PostgresStore) -> None:
    stage = make_stage("run-1", "a")
    job = make_job("job-1", stage_id="a")
    apply(store, InsertRun(make_run()), InsertStage(stage), EnqueueJob(job))
    trips = Trips()
    with store.transaction() as tx:
        assert tx.unchanged(make_run(), [stage], job)
        assert tx.get_job("job-1") == job
        assert trips.count == 1
    with store.transaction() as tx:
        assert not tx.unchanged(make_run(), [bump(stage)], job)
        assert not tx.unchanged(make_run(), [], job)
        assert not tx.unchanged(make_run(), [stage], evolve(job, attempt=2))
        assert not tx.unchanged(bump(make_run()), [stage], job)


@pytest.mark.usefixtures("checks_first")
def test_a_group_s_runs_are_read_and_checked_in_one_round_trip_each(
    store: PostgresStore,
) -> None:
    """A group's starts read all its runs with their stages, and its finishes check all
    its jobs, runs and stages, in one round trip each; a changed record is told apart."""
    _two_runs(store)
    jobs = [make_job("job-1"), make_job("job-2", "run-2")]
    trips = Trips()
    with store.transaction() as tx:
        snapshots = tx.get_runs_with_stages([("run-1", 0), ("run-2", 0), ("run-3", 0)])
        assert trips.count == 1
    assert [run and run.id for run, _, _ in snapshots] == ["run-1", "run-2", None]
    assert [stages for _, stages, _ in snapshots][:2] == [
        [make_stage("run-1", "a")],
        [make_stage("run-2", "a")],
    ]
    trips = Trips()
    with store.transaction() as tx:
        items = [
            (make_run(job.workflow_run_id), [make_stage(job.workflow_run_id, "a")], job)
            for job in jobs
        ]
        assert tx.unchanged_many(items) == [True, True]
        assert (trips.count, trips.statements) == (1, 1 + 2)  # BEGIN, the locks, the stages
        assert [tx.get_job(job.id) for job in jobs] == jobs
    with store.transaction() as tx:
        changed = [items[0], (make_run("run-2"), [bump(make_stage("run-2", "a"))], jobs[1])]
        assert tx.unchanged_many(changed) == [True, False]
        assert tx.unchanged_many([(make_run("run-1"), [make_stage("run-1", "a")], None)]) == [True]


@pytest.mark.usefixtures("checks_first")
def test_a_group_s_check_tells_each_job_apart_in_two_statements(store: PostgresStore) -> None:
    """Three jobs are checked with one statement for all their locks and one for all their
    runs' stages: a job that is gone, one whose run is gone and one whose run moved on
    are each told apart from the rest, as one check at a time tells them. A check
    without a job among them splits them, so that everything is locked in order."""
    _two_runs(store)
    apply(
        store,
        InsertRun(make_run("run-3")),
        InsertStage(make_stage("run-3", "a")),
        EnqueueJob(make_job("job-3", "run-3")),
    )
    jobs = [make_job("job-1"), make_job("job-2", "run-2"), make_job("job-3", "run-3")]

    def items(
        runs: list[str] | None = None,
    ) -> list[tuple[WorkflowRun, list[WorkflowStage], Job | None]]:
        return [
            (make_run(run_id), [make_stage(job.workflow_run_id, "a")], job)
            for run_id, job in zip(runs or [job.workflow_run_id for job in jobs], jobs, strict=True)
        ]

    trips = Trips()
    with store.transaction() as tx:
        assert tx.unchanged_many(items()) == [True, True, True]
        assert trips.statements == 1 + 2
    with store._pool.connection() as conn:
        conn.execute("DELETE FROM jobs WHERE id = 'job-2'")
        conn.execute("UPDATE runs SET version = 2 WHERE id = 'run-3'")
    with store.transaction() as tx:
        assert tx.unchanged_many(items()) == [True, False, False]
        assert tx.get_job("job-2") is None
        one_at_a_time = [tx.unchanged(*item) for item in items()]
    assert one_at_a_time == [True, False, False]
    with store.transaction() as tx:  # job-1's run is not there
        assert tx.unchanged_many(items(["run-9", "run-2", "run-3"])) == [False, False, False]
    mixed = items()
    mixed[1] = (make_run("run-2"), [make_stage("run-2", "a")], None)  # a check without a job
    trips = Trips()
    with store.transaction() as tx:
        assert tx.unchanged_many(mixed) == [True, True, False]
        # In the order given: job-1 and run-1, then run-2 (and its stages), then job-3.
        assert (trips.count, trips.statements) == (1, 1 + 2 + 2 + 2)


def test_a_group_lease_brings_its_runs_stages_and_inputs_in_one_round_trip(
    store: PostgresStore,
) -> None:
    """Leasing several jobs also reads (and locks) their runs, with their stages and the
    stored outputs each leased stage takes as input, in the same round trip."""
    done = make_stage("run-2", "a", status=Status.COMPLETED, output_ref=output_key("run-2", "a"))
    apply(
        store,
        *(InsertRun(make_run(run_id)) for run_id in ("run-1", "run-2")),
        InsertStage(make_stage("run-1", "a")),
        InsertStage(done),
        InsertStage(make_stage("run-2", "b", number=2)),
        PutBlob(output_key("run-2", "a"), {"n": 7}),
        EnqueueJob(make_job("job-1", created=1)),
        EnqueueJob(make_job("job-2", "run-2", created=2, stage_id="b")),
    )
    trips = Trips()
    with store.transaction() as tx:
        jobs, at_limit = tx.lease_next_jobs("w1", T0 + timedelta(minutes=1), 5)
        assert [job.id for job in jobs] == ["job-1", "job-2"]
        assert not at_limit  # two of five: no other job is available
        assert all(job.worker_id == "w1" for job in jobs)
        snapshots = tx.get_runs_with_stages([("run-1", 0), ("run-2", 1)])
        assert trips.count == 1
    assert [run and run.id for run, _, _ in snapshots] == ["run-1", "run-2"]
    assert snapshots[1][2] == {done.id: {"n": 7}}
    assert [stage.stage_id for stage in snapshots[1][1]] == ["a", "b"]


def test_stale_effect_is_reported_by_the_next_read(store: PostgresStore) -> None:
    apply(store, InsertRun(make_run()))
    with pytest.raises(StaleVersionError), store.transaction() as tx:
        tx.apply([UpdateRun(bump(make_run(version=5)), expected_version=5)])
        tx.get_blob("anything")


def test_one_applys_events_share_a_statement_and_keep_each_runs_order(
    store: PostgresStore,
) -> None:
    """Events of two runs, interleaved, and event ids appended again (one from an earlier
    transaction, one twice in the same ``apply``): numbered per run in the order
    appended, and each repeat replaces its event (which keeps its place in the outbox)."""
    apply(store, InsertRun(make_run("run-1")), InsertRun(make_run("run-2")))
    apply(store, append("a1"), append("b1", "run-2"), append("a2"), append("b2", "run-2"))

    def started(stage_id: str) -> StageStarted:
        return StageStarted(
            workflow_run_id="run-1",
            timestamp=at(3),
            stage_id=stage_id,
            stage_name=stage_id,
            stage_number=1,
        )

    apply(
        store,
        PutBlob("unrelated", 1),
        append("a3"),
        AppendOutbox(started("x"), "a1", "cause"),
        append("b3", "run-2"),
        append("a4"),
        AppendOutbox(started("y"), "a4", "cause"),
    )
    events = store.get_outbox()
    assert [(e.id, e.workflow_run_id, e.sequence) for e in events] == [
        ("a1", "run-1", 4),
        ("b1", "run-2", 1),
        ("a2", "run-1", 2),
        ("b2", "run-2", 2),
        ("a3", "run-1", 3),
        ("b3", "run-2", 3),
        ("a4", "run-1", 6),
    ]
    assert events[0].payload["stage_id"] == "x"
    assert events[-1].payload["stage_id"] == "y"


# -- several rows per statement ------------------------------------------------


def _two_runs(store: Store) -> None:
    apply(
        store,
        *(InsertRun(make_run(run_id)) for run_id in ("run-1", "run-2")),
        *(InsertStage(make_stage(run_id, "a")) for run_id in ("run-1", "run-2")),
        EnqueueJob(make_job("job-1")),
        EnqueueJob(make_job("job-2", "run-2")),
    )


def _group_finish(version: int = 1) -> list[StoreEffect]:
    """What finishing the stages of two runs writes, interleaved run by run; the second
    run's stage is expected at ``version``."""
    effects: list[StoreEffect] = []
    for run_id, job_id, expected in (("run-1", "job-1", 1), ("run-2", "job-2", version)):
        stage = make_stage(run_id, "a")
        effects += [
            UpdateStage(bump(evolve(stage, version=expected), status=Status.COMPLETED), expected),
            UpdateJob(make_job(job_id, run_id, status=JobStatus.COMPLETED)),
            UpdateRun(bump(make_run(run_id), status=Status.COMPLETED), expected_version=1),
            EnqueueJob(make_job(f"{job_id}-next", run_id, created=1)),
        ]
    return effects


def test_a_group_s_rows_of_one_kind_are_written_by_one_statement(store: PostgresStore) -> None:
    """The finishes of two runs, interleaved as the kernel decides them, go out kind by
    kind: one statement each for the stages, the jobs, the runs and the new jobs, with
    the outcome of writing them one by one."""
    _two_runs(store)
    memory = InMemoryStore()
    _two_runs(memory)
    trips = Trips()
    apply(store, *_group_finish())
    apply(memory, *_group_finish())
    assert trips.statements == 4 + 3  # BEGIN, COMMIT and the wake-up around the four kinds
    for run_id in ("run-1", "run-2"):
        assert store.get_run(run_id) == memory.get_run(run_id)
        assert store.get_stages(run_id) == memory.get_stages(run_id)
        assert store.get_jobs(run_id) == memory.get_jobs(run_id)


def test_a_stale_row_among_several_names_that_row_and_commits_nothing(
    store: PostgresStore,
) -> None:
    _two_runs(store)
    with pytest.raises(StaleVersionError) as raised, store.transaction() as tx:
        tx.apply(_group_finish(version=7))
    assert (raised.value.entity, raised.value.entity_id) == ("stage", "run-2/a")
    assert store.get_stages("run-1") == [make_stage("run-1", "a")]
    assert [job.id for job in store.get_jobs("run-1")] == ["job-1"]


def test_a_duplicate_among_several_new_jobs_names_that_job(store: PostgresStore) -> None:
    _two_runs(store)
    with pytest.raises(StoreError, match="job 'job-2' already exists"):
        apply(store, EnqueueJob(make_job("job-3")), EnqueueJob(make_job("job-2", "run-2")))
    assert [job.id for job in store.get_jobs("run-1")] == ["job-1"]


def _odd_writes(run_id: str, job_id: str) -> list[StoreEffect]:
    """Updates of a run, its stage and its job that carry values a column could lose
    on the way: JSON null beside SQL NULL, microseconds, another time zone, a day-long
    interval, exact decimals, quotes, backslashes, newlines and non-ASCII text."""
    elsewhere = timezone(timedelta(hours=-5))
    stage = make_stage(run_id, "a")
    return [
        UpdateRun(
            bump(
                make_run(run_id),
                status=Status.RUNNING,
                output=None,
                input={"text": 'qu"ote\\back\nline ünï', "list": [1, None, 2.5]},
                started_at=at(1.000001).astimezone(elsewhere),
                total_cost=Decimal("0.10"),
                budget=Decimal("12.500"),
                total_tokens=2**40,
            ),
            expected_version=1,
        ),
        UpdateStage(
            bump(
                stage,
                status=Status.SUSPENDED,
                suspended_state=None,
                metrics={"n": None},
                poll_interval=timedelta(days=1, microseconds=5),
                next_poll_at=at(2.5),
                error="it's\tbad",
            ),
            1,
        ),
        UpdateJob(make_job(job_id, run_id, payload={"deep": {"n": [None]}}, last_error=None)),
    ]


def _odd_blobs(run_id: str) -> list[StoreEffect]:
    """Stored values with what a JSON text could lose: a JSON null, escapes, a big int."""
    return [
        PutBlob(f"runs/{run_id}/a", {"text": 'qu"ote\\back\nline ünï', "n": [None, 2**40]}),
        PutBlob(f"runs/{run_id}/b", None),
    ]


def test_several_rows_in_one_statement_store_what_one_row_at_a_time_stores(
    store: PostgresStore,
) -> None:
    """run-1's writes go out one per statement; run-2's and run-3's, the same values,
    share a statement per kind. Every column of run-2 reads back as run-1's, down to a
    JSON null that is not an SQL NULL."""
    for run_id, job_id in (("run-1", "job-1"), ("run-2", "job-2"), ("run-3", "job-3")):
        apply(
            store,
            InsertRun(make_run(run_id)),
            InsertStage(make_stage(run_id, "a")),
            EnqueueJob(make_job(job_id, run_id)),
        )
    trips = Trips()
    apply(store, *_odd_writes("run-1", "job-1"))
    alone = trips.statements
    for blob in _odd_blobs("run-1"):
        apply(store, blob)
    trips = Trips()
    apply(
        store,
        *by_kind(
            [
                *_odd_writes("run-2", "job-2"),
                *_odd_writes("run-3", "job-3"),
                *_odd_blobs("run-2"),
                *_odd_blobs("run-3"),
            ]
        ),
    )
    assert trips.statements == alone + 1  # the same statements, each for two rows; the blobs'

    def columns(run_id: str) -> list[str]:
        rows: list[str] = []
        for table, key in (
            ("runs", "id"),
            ("stages", "workflow_run_id"),
            ("jobs", "workflow_run_id"),
        ):
            query = (
                f"SELECT to_jsonb(t) - 'seq' - 'position' AS row FROM {table} AS t WHERE {key} = %s"
            )
            with store._pool.connection() as conn:
                found = conn.execute(query, (run_id,)).fetchone()
            assert found is not None
            rows.append(json.dumps(found["row"], sort_keys=True).replace(run_id, "RUN"))
        return rows

    assert columns("run-2") == [row.replace("job-1", "job-2") for row in columns("run-1")]
    for name in ("a", "b"):
        assert store.get_blob(f"runs/run-2/{name}") == store.get_blob(f"runs/run-1/{name}")
    with store._pool.connection() as conn:
        nulls = conn.execute(
            "SELECT value IS NULL AS sql_null, jsonb_typeof(value) AS kind FROM blobs "
            "WHERE key LIKE 'runs/%%/b' "
            "UNION ALL SELECT output IS NULL, jsonb_typeof(output) FROM runs"
        ).fetchall()
    assert [(row["sql_null"], row["kind"]) for row in nulls] == [(False, "null")] * 6


def test_a_value_json_cannot_hold_is_refused_in_a_group_as_alone(store: PostgresStore) -> None:
    """PostgreSQL's jsonb has no NaN: one row or several, the apply fails, naming JSON."""
    apply(store, InsertRun(make_run("run-1")), InsertRun(make_run("run-2")))

    def nan_output(run_id: str) -> StoreEffect:
        return UpdateRun(bump(make_run(run_id), output=float("nan")), expected_version=1)

    for effects in ([nan_output("run-1")], [nan_output("run-1"), nan_output("run-2")]):
        with pytest.raises(StoreError, match="invalid input syntax for type json"):
            apply(store, *effects)
    assert store.get_run("run-1") == make_run("run-1")


def test_a_group_lease_reads_its_runs_stages_through_indexes(store: PostgresStore) -> None:
    """However the planner sizes the tables (never analysed here), the stages and stored
    inputs of a group's runs are looked up run by run through their indexes, not by
    scanning whole tables: a lease must not cost more as finished runs pile up."""
    effects: list[StoreEffect] = []
    for n in range(300):
        run_id = f"run-{n}"
        effects += [InsertRun(make_run(run_id))]
        effects += [InsertStage(make_stage(run_id, s, number=i + 1)) for i, s in enumerate("abc")]
        effects += [EnqueueJob(make_job(f"job-{n}", run_id, created=n, stage_id="b"))]
        effects += [PutBlob(output_key(run_id, "a"), {"n": n})]
    apply(store, *by_kind(effects))
    leased = ",".join(f"job-{n}" for n in range(0, 300, 25))
    with store._pool.connection() as conn:
        conn.execute("SELECT set_config('wfk.leased_jobs', %s, false)", (leased,))
        rows = conn.execute(b"EXPLAIN " + QUERIES["leased_runs_stages"]).fetchall()
    plan = "\n".join(row["QUERY PLAN"] for row in rows)
    assert "Seq Scan on stages" not in plan and "Seq Scan on blobs" not in plan, plan
    assert plan.count("Index Scan using stages_") == 2, plan  # the leased stage; the run's
    # The id list is split once, not for each row a scan of the jobs looks at.
    assert not any("Filter" in line and "string_to_array" in line for line in plan.split("\n"))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("update_runs", "runs_pkey"),
        ("update_stages", "stages_"),  # by the run id of stages_run_idx or with the stage id
        ("update_jobs", "jobs_pkey"),
        ("lock_jobs_and_runs", "jobs_pkey"),
    ],
)
def test_a_group_s_updates_find_their_rows_by_key_in_the_plan_kept_for_them(
    store: PostgresStore, name: str, key: str
) -> None:
    """A prepared statement ends up with one generic plan, made for the tables as they
    are then: here empty, as in a new schema. Its update must still look each row up
    by key, so that it costs the same when the tables have grown."""
    plan = "\n".join(_generic_plan(store, name, 12))
    assert f"Index Scan using {key}" in plan and "Index Cond" in plan, plan
    assert "Nested Loop" in plan, plan
    assert "Seq Scan" not in plan and "Hash Join" not in plan, plan


def test_a_group_s_check_locks_job_then_run_pair_after_pair(store: PostgresStore) -> None:
    """The check of a group's finishes locks each job and then its run, pair after pair,
    as the checks of one finish at a time would: its plan takes the pairs in their order
    and looks each job, then each run, up by key under its own lock."""
    plan = _generic_plan(store, "lock_jobs_and_runs", 3)
    text = "\n".join(plan)
    joins = [n for n, line in enumerate(plan) if "Nested Loop Left Join" in line]
    assert len(joins) == 2 and "Hash" not in text and "Merge" not in text, text
    order = [
        next(n for n, line in enumerate(plan) if marker in line)
        for marker in ("Function Scan on jsonb_array_elements", "jobs_pkey", "runs_pkey")
    ]
    assert order == sorted(order), text  # the pairs, then each job, then its run
    assert text.count("LockRows") == 2, text


def _generic_plan(store: PostgresStore, name: str, count: int) -> list[str]:
    """The lines of the generic plan PostgreSQL keeps for grouped statement ``name``,
    made on the tables as they are (``%(rows)s`` and ``%(count)s`` its parameters)."""
    query = QUERIES[name].replace(b"%(rows)s", b"$1").replace(b"%(count)s", b"$2")
    with store._pool.connection() as conn:
        conn.execute(b"PREPARE grouped(text, bigint) AS " + query)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            rows = conn.execute(f"EXPLAIN EXECUTE grouped('[]', {count:d})").fetchall()
        finally:
            conn.execute("RESET plan_cache_mode")
            conn.execute("DEALLOCATE grouped")
    return [row["QUERY PLAN"] for row in rows]
