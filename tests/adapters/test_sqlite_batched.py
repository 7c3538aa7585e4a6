"""Several rows per statement on SQLite: what a group of finishes writes, and how.

Effects of several runs applied together are written kind by kind, each kind
with one multi-row statement built from the single-row statement of
``queries.sql``; the outcome is the same as writing row by row, a lost
version race still names its row, and outbox sequences still count on per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.effect_order import by_kind
from adapters.sqlite import SqliteStore
from adapters.sqlite.batched import MultiInsert, MultiUpdate
from adapters.sqlite.queries import QUERIES
from kernel.decisions.changes import bump_stage
from kernel.effects import AppendOutbox, InsertRun, InsertStage
from kernel.errors import StaleVersionError
from kernel.events import StageStarted
from kernel.shell.job_groups import GroupSizer
from testing import create_test_kernel
from tests.adapters.test_sqlite_statements import traced
from tests.harness import T0, insert, make_run, make_stage, start
from tests.workflows import Calls, linear


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "wf.db")
    yield store
    store.close()


@pytest.mark.parametrize("name", ["insert_run", "insert_stage", "insert_job", "put_blob"])
def test_the_inserts_have_a_multi_row_form(name: str) -> None:
    query = getattr(QUERIES, name)
    multi = MultiInsert.of(query)
    assert multi.sql(1).count("?") == query.count(":") - query.count("::")
    assert multi.sql(3).count("(" + ", ".join("?" * len(multi.params)) + ")") == 3


@pytest.mark.parametrize("name", ["update_run", "update_stage", "update_job"])
def test_the_record_updates_have_a_multi_row_form(name: str) -> None:
    multi = MultiUpdate.of(getattr(QUERIES, name))
    sql = multi.sql(2)
    assert sql.startswith(f"UPDATE {multi.table} SET ") and " FROM (VALUES (" in sql
    assert len(multi.params) == len(set(multi.params))


def test_a_statement_that_is_not_plain_is_refused() -> None:
    with pytest.raises(ValueError, match="not a one-row INSERT"):
        MultiInsert.of("INSERT INTO t SELECT 1")
    with pytest.raises(ValueError, match="expected 'column = :param'"):
        MultiUpdate.of("UPDATE t SET a = a + 1 WHERE id = :id")


def _stages(store: SqliteStore, runs: int) -> list[tuple[str, int]]:
    with store.transaction() as tx:
        tx.apply([InsertRun(make_run(id=f"run-{n}")) for n in range(runs)])
        tx.apply([InsertStage(make_stage("a", run_id=f"run-{n}")) for n in range(runs)])
    return [(f"run-{n}", 1) for n in range(runs)]


def test_updates_of_several_rows_are_one_statement_with_the_same_outcome(
    sqlite_store: SqliteStore,
) -> None:
    _stages(sqlite_store, 3)
    records = [sqlite_store.get_stages(f"run-{n}")[0] for n in range(3)]
    updates = [bump_stage(record, attempt=n + 5)[1] for n, record in enumerate(records)]

    with traced(sqlite_store) as trace:
        insert(sqlite_store, *updates)

    assert trace.names.count("UPDATE") == 1  # the multi-row form has no name of its own
    for n in range(3):
        stage = sqlite_store.get_stages(f"run-{n}")[0]
        assert (stage.attempt, stage.version) == (n + 5, 2)


def test_a_multi_row_update_that_lost_a_version_race_names_the_row(
    sqlite_store: SqliteStore,
) -> None:
    _stages(sqlite_store, 3)
    records = [sqlite_store.get_stages(f"run-{n}")[0] for n in range(3)]
    insert(sqlite_store, bump_stage(records[1], attempt=9)[1])  # another writer, first
    updates = [bump_stage(record, attempt=7)[1] for record in records]

    with pytest.raises(StaleVersionError) as raised:
        insert(sqlite_store, *updates)

    assert "run-1/a" in str(raised.value)
    # Rolled back: the other two rows are as they were.
    before = [records[0].attempt, 9, records[2].attempt]
    assert [sqlite_store.get_stages(f"run-{n}")[0].attempt for n in range(3)] == before
    assert 7 not in before


def test_a_row_updated_twice_in_one_apply_is_written_row_by_row(
    sqlite_store: SqliteStore,
) -> None:
    _stages(sqlite_store, 1)
    record = sqlite_store.get_stages("run-0")[0]
    running, first = bump_stage(record, attempt=1)
    _, second = bump_stage(running, attempt=2)

    insert(sqlite_store, first, second)

    stage = sqlite_store.get_stages("run-0")[0]
    assert (stage.attempt, stage.version) == (2, 3)


def test_outbox_events_of_several_runs_count_on_per_run_in_order(
    sqlite_store: SqliteStore,
) -> None:
    _stages(sqlite_store, 2)

    def event(run: str, stage: str) -> AppendOutbox:
        started = StageStarted(
            workflow_run_id=run, timestamp=T0, stage_id=stage, stage_name=stage, stage_number=1
        )
        return AppendOutbox(started, f"{run}-{stage}", "cause")

    insert(sqlite_store, event("run-0", "a"))
    insert(sqlite_store, event("run-1", "a"), event("run-0", "b"), event("run-1", "b"))
    insert(sqlite_store, event("run-0", "c"), event("run-0", "d"))

    def numbered(run: str) -> list[tuple[int, str]]:
        return [(e.sequence, e.id) for e in sqlite_store.get_outbox(run)]

    assert numbered("run-0") == [(1, "run-0-a"), (2, "run-0-b"), (3, "run-0-c"), (4, "run-0-d")]
    assert numbered("run-1") == [(1, "run-1-a"), (2, "run-1-b")]


def test_effects_are_grouped_by_kind_only_when_every_kind_may_be() -> None:
    run = make_run()
    stage = make_stage("a")
    effects = [InsertStage(stage), InsertRun(run), InsertStage(make_stage("b"))]
    assert [type(e) for e in by_kind(effects)] == [InsertRun, InsertStage, InsertStage]
    assert [e.stage.stage_id for e in by_kind(effects) if isinstance(e, InsertStage)] == ["a", "b"]
    updated = bump_stage(stage, attempt=1)[1]
    mixed = [updated, InsertRun(run), object(), InsertStage(stage)]
    assert by_kind(mixed) == mixed  # a kind outside the list: applied as given


def test_a_group_of_finishes_writes_each_kind_once(sqlite_store: SqliteStore) -> None:
    tk = create_test_kernel(linear(Calls()), store=sqlite_store)
    for n in range(4):
        start(tk, "linear", value=n)
    sizer = GroupSizer(4)
    sizer.size = 4

    with traced(sqlite_store) as trace:
        done = tk.kernel.execute_jobs("w1", max_jobs=4, groups=sizer)

    assert len(done) == 4
    finish = next(tx for tx in trace.transactions() if "versions_of_runs" in tx)
    # One check of the four runs and jobs (two statements), then one statement per
    # kind of record written, then the next group's lease (nothing is left).
    assert finish.count("versions_of_runs") == finish.count("jobs_as_written") == 1
    assert "run_versions_and_job" not in finish
    writes = [name for name in finish if name not in ("versions_of_runs", "jobs_as_written")]
    assert len(writes) <= 9, writes


def test_a_group_lease_that_finds_fewer_jobs_than_it_asks_for_does_not_ask_again(
    sqlite_store: SqliteStore,
) -> None:
    """An idle worker's groups have grown past one job: each lease finds the run's one
    next job, and one statement tells it that nothing else is queued."""
    tk = create_test_kernel(linear(Calls()), store=sqlite_store)
    start(tk, "linear")
    sizer = GroupSizer(4)
    sizer.size = 4

    with traced(sqlite_store) as trace:
        done = tk.kernel.execute_jobs("w1", max_jobs=10, groups=sizer)

    assert len(done) == 3
    leases = [tx.count("next_queued_jobs") for tx in trace.transactions()]
    assert [count for count in leases if count] == [1, 1, 1, 1], trace.transactions()
    # The last finds no job at all, and looks no further.
    assert all("lease_next_job" not in tx for tx in trace.transactions())
