"""``runs.purge`` through the kernel, on every store (SPEC §16 "Retention", §16.1).

A purge deletes runs that finished before now - ``older_than``, with everything
they own, oldest first and at most ``limit`` at a time. It never touches a run
that has not finished, nor one whose outbox still holds an unpublished event;
a dry run only says what would go.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kernel import RunCancel, RunsPurge, StageContext, Status
from kernel.ports import Store
from testing import FakeClock
from tests.harness import TK, MakeKernel, RefusingSink, create
from tests.workflows import Calls, NoConfig, Num, custom, failing, pipeline

DAY = timedelta(days=1)


def noting(ctx: StageContext[Num, NoConfig]) -> Num:
    """Keeps a note in ``ctx.storage`` and logs a line, so the run owns a value and a log."""
    ctx.storage.save("notes", {"seen": ctx.input.value})
    ctx.log("INFO", "noted")
    return Num(ctx.input.value + 1)


@pytest.fixture
def tk(make_tk: MakeKernel) -> TK:
    calls = Calls()
    return make_tk(
        pipeline("notes", custom("note", noting), custom("again", noting)),
        pipeline("failing", failing(calls)),
    )


def finish(tk: TK, workflow_id: str = "notes") -> str:
    """A run of ``workflow_id`` run to its end now; its id."""
    run_id = create(tk, workflow_id)
    tk.run_until_idle()
    return run_id


def everything_of(store: Store, run_id: str) -> dict[str, Any]:
    return {
        "run": store.get_run(run_id),
        "stages": store.get_stages(run_id),
        "jobs": store.get_jobs(run_id),
        "outbox": store.get_outbox(run_id),
        "logs": store.get_logs(run_id),
        "usage": store.get_usage(run_id),
        "signals": store.get_signals(run_id),
        "note": store.get_blob(f"runs/{run_id}/storage/notes"),
        "output": store.get_blob(f"runs/{run_id}/stages/note/output"),
    }


def test_a_run_finished_long_enough_ago_goes_with_everything_it_owns(
    tk: TK, store: Store, clock: FakeClock
) -> None:
    """Its stages, jobs, events, log lines, stored outputs and ``ctx.storage`` values;
    a run finished more recently stays exactly as it was."""
    old = finish(tk)
    assert everything_of(store, old)["note"] == (True, {"seen": 2})
    assert everything_of(store, old)["logs"]
    clock.advance(10 * DAY)
    recent = finish(tk)
    kept = everything_of(store, recent)
    clock.advance(25 * DAY)

    result = tk.dispatch(RunsPurge(older_than=30 * DAY))

    assert (result.purged, result.run_ids) == (1, (old,))
    assert result.finished_before == clock.now() - 30 * DAY
    assert everything_of(store, old) == {
        "run": None,
        "stages": [],
        "jobs": [],
        "outbox": [],
        "logs": [],
        "usage": [],
        "signals": [],
        "note": (False, None),
        "output": (False, None),
    }
    assert everything_of(store, recent) == kept


def test_finished_means_completed_at_whatever_the_terminal_status(
    tk: TK, store: Store, clock: FakeClock
) -> None:
    """Completed, failed and cancelled runs all go by default; ``statuses`` narrows it."""
    completed, failed = finish(tk), finish(tk, "failing")
    cancelled = create(tk, "notes")
    tk.dispatch(RunCancel(workflow_run_id=cancelled))
    tk.run_until_idle()
    assert [store.get_run(r).status for r in (completed, failed, cancelled)] == [  # type: ignore[union-attr]
        Status.COMPLETED,
        Status.FAILED,
        Status.CANCELLED,
    ]
    clock.advance(2 * DAY)

    only_failed = tk.dispatch(RunsPurge(older_than=DAY, statuses=(Status.FAILED,)))
    assert only_failed.run_ids == (failed,)
    rest = tk.dispatch(RunsPurge(older_than=DAY))
    assert set(rest.run_ids) == {completed, cancelled}
    assert store.list_runs() == []


def test_runs_that_have_not_finished_are_never_purged(
    tk: TK, store: Store, clock: FakeClock
) -> None:
    """However old, a run that never ran stays; once it has finished, it may go."""
    pending = create(tk, "notes")
    clock.advance(400 * DAY)
    result = tk.dispatch(RunsPurge(older_than=DAY))
    assert result.purged == 0
    assert store.get_run(pending) is not None
    tk.run_until_idle()
    clock.advance(2 * DAY)
    assert tk.dispatch(RunsPurge(older_than=DAY)).run_ids == (pending,)


def test_a_run_whose_events_are_not_published_is_kept_until_they_are(
    make_tk: MakeKernel, store: Store, clock: FakeClock
) -> None:
    """A dead-lettered ``workflow:completed`` keeps its run (the event would be lost);
    once it is replayed and published, the run goes at the next purge."""
    from kernel import PluginReplayDLQ

    sink = RefusingSink(refuse={"workflow:completed"}, failures=None, max_retries=1)
    tk = make_tk(pipeline("notes", custom("note", noting)), sink=sink)
    run_id = finish(tk)
    assert [event.dlq_at is not None for event in store.get_outbox(run_id)][-1]
    clock.advance(2 * DAY)
    assert tk.dispatch(RunsPurge(older_than=DAY)).purged == 0
    assert store.get_run(run_id) is not None

    sink.refuse.clear()
    tk.dispatch(PluginReplayDLQ())
    tk.run_until_idle()
    assert tk.dispatch(RunsPurge(older_than=DAY)).run_ids == (run_id,)


def test_batches_of_limit_oldest_first_until_none_is_left(
    tk: TK, store: Store, clock: FakeClock
) -> None:
    runs = []
    for _ in range(5):
        runs.append(finish(tk))
        clock.advance(timedelta(hours=1))
    clock.advance(2 * DAY)

    batches = []
    while True:
        result = tk.dispatch(RunsPurge(older_than=DAY, limit=2))
        batches.append(result.run_ids)
        if result.purged < 2:
            break
    assert batches == [tuple(runs[0:2]), tuple(runs[2:4]), (runs[4],)]


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(
    tk: TK, store: Store, clock: FakeClock
) -> None:
    old = finish(tk)
    clock.advance(2 * DAY)
    young = finish(tk)
    before = everything_of(store, old)

    dry = tk.dispatch(RunsPurge(older_than=DAY, dry_run=True))

    assert (dry.purged, dry.run_ids) == (0, (old,))
    assert everything_of(store, old) == before
    assert tk.dispatch(RunsPurge(older_than=DAY)).run_ids == (old,)
    assert store.get_run(young) is not None
