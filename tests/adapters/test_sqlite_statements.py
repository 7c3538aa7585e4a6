"""What a job costs in SQL on SQLite: statements counted with ``sqlite3``'s trace callback.

A job's start reads its run with the run's stages (and the outputs it takes as
input) in one statement; its finish checks in one statement that nothing its start
left has changed instead of reading it all again, and reads again only when
something did; a flush records its publications with one statement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from attrs import fields

from adapters.blobs import MemoryBlobStore
from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES, Queries
from kernel import OutboxFlush, RunCancel, StageContext
from testing import create_test_kernel
from tests.blobs.support import LIMIT, run_texts, texts
from tests.harness import TK, start
from tests.workflows import Calls, NoConfig, Num, custom, linear, pipeline

_PREFIXES = {field.name: getattr(QUERIES, field.name).split(":", 1)[0] for field in fields(Queries)}
"""Each named statement's text up to its first parameter (the trace gives values in place)."""


def _name(sql: str) -> str:
    for name, prefix in sorted(_PREFIXES.items(), key=lambda item: -len(item[1])):
        if sql.startswith(prefix):
            return name
    return sql.split(None, 1)[0].upper()  # BEGIN, COMMIT, ROLLBACK


class Trace:
    """The statements run on a store's connection, by name, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, sql: str) -> None:
        self.names.append(_name(sql))

    def counts(self) -> Counter[str]:
        return Counter(self.names)

    def transactions(self) -> list[list[str]]:
        """The statements between each BEGIN and its COMMIT."""
        found: list[list[str]] = []
        for name in self.names:
            if name == "BEGIN":
                found.append([])
            elif found and name not in ("COMMIT", "ROLLBACK"):
                found[-1].append(name)
        return found


@contextmanager
def traced(store: SqliteStore) -> Iterator[Trace]:
    trace = Trace()
    store._conn.set_trace_callback(trace)
    try:
        yield trace
    finally:
        store._conn.set_trace_callback(None)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "wf.db")
    yield store
    store.close()


def test_a_finish_whose_run_nobody_touched_reads_nothing_again(
    sqlite_store: SqliteStore,
) -> None:
    """Three stages: each start reads run, stages and the previous stage's output in one
    statement; each finish only checks that nothing changed."""
    tk = create_test_kernel(linear(Calls()), store=sqlite_store)
    start(tk, "linear")

    with traced(sqlite_store) as trace:
        assert len(tk.kernel.execute_jobs("w1")) == 3

    counts = trace.counts()
    assert counts["get_run_with_stages"] == 3
    assert counts["run_versions_and_job"] == 3
    assert counts["get_run"] == counts["get_stages"] == counts["get_job"] == 0
    assert counts["get_blob"] == 0


def test_a_finish_whose_run_changed_meanwhile_reads_it_again(sqlite_store: SqliteStore) -> None:
    """The run was cancelled while its stage ran: the check fails, the finish reads the
    run, its stages and the job afresh, and sees the cancel."""
    kernels: list[TK] = []

    def cancel(ctx: StageContext[Num, NoConfig]) -> Num:
        kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id))
        return ctx.input

    tk = create_test_kernel(pipeline("cancelled", custom("work", cancel)), store=sqlite_store)
    kernels.append(tk)
    start(tk, "cancelled")

    with traced(sqlite_store) as trace:
        executed = tk.kernel.execute_next_job("w1")

    assert executed is not None and executed[1].outcome == "skipped"
    finish = next(tx for tx in trace.transactions() if "run_versions_and_job" in tx)
    assert finish[:3] == ["run_versions_and_job", "get_job", "get_run_with_stages"]


def test_a_flush_records_its_publications_with_one_statement(
    sqlite_store: SqliteStore,
) -> None:
    """Every event a flush delivered is marked published by one statement, not one each."""
    tk = create_test_kernel(linear(Calls()), store=sqlite_store)
    run_id = start(tk, "linear")
    tk.kernel.execute_jobs("w1")

    with traced(sqlite_store) as trace:
        published = tk.dispatch(OutboxFlush(max_events=100)).published

    assert published == len(sqlite_store.get_outbox(run_id)) == 9
    assert trace.counts()["update_outbox"] == 1
    assert all(event.published_at is not None for event in sqlite_store.get_outbox(run_id))


def test_a_blob_wrapped_store_reads_runs_through_its_wrapper(sqlite_store: SqliteStore) -> None:
    """With a blob store, the kernel's transactions are the wrapper's, which loads large
    values on ``get_run``: the one-statement reads of the SQLite transaction it wraps
    would skip that, so they are not used, and every stage gets the value."""
    tk = create_test_kernel(texts, store=sqlite_store, blobs=MemoryBlobStore(), inline_limit=LIMIT)
    with traced(sqlite_store) as trace:
        run_id = run_texts(tk, "x" * 2_000)

    run = tk.store.get_run(run_id)
    assert run is not None and run.output == {"text": "x" * 2_000 + "a" * 10 + "b" * 10 + "c" * 10}
    assert trace.counts()["get_run_with_stages"] == 0
