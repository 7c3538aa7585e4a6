"""Group commit: ``execute_jobs(groups=GroupSizer(n))`` leases, runs and finishes several
jobs per transaction while they are quick.

A group's jobs are leased and started in one transaction, their user code
runs one after another, and their finishes commit together with the next
group's lease. What each run goes through (its records and its events) is the
same as with one job per transaction; only the number of transactions falls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import pytest

from kernel import JobStatus, RunCancel, Status
from kernel.commands import JobExecuteResult
from kernel.errors import StoreError
from kernel.ports import Store, StoreTransaction
from kernel.records import Job
from kernel.shell.job_groups import GroupSizer
from testing import FakeClock, create_test_kernel
from tests.harness import MakeKernel, event_types, job_of, outbox, run_of, stage_of, start
from tests.workflows import Calls, Num, custom, fan_out, linear, pipeline


class CountingStore:
    """Counts the transactions a store opens (a wrapper over any store)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        self.transactions += 1
        with self._inner.transaction() as tx:
            yield tx


def _history(store: Store, run_id: str) -> list[tuple[int, str]]:
    return [(event.sequence, event.event_type) for event in outbox(store, run_id)]


def test_a_group_commits_many_quick_jobs_per_transaction(make_tk: MakeKernel) -> None:
    calls = Calls()
    tk = make_tk(linear(calls))
    run_ids = [start(tk, "linear", value=n) for n in range(8)]
    counting = CountingStore(tk.store)
    tk.kernel.store = cast(Store, counting)

    done = tk.kernel.execute_jobs("w1", max_jobs=100, groups=GroupSizer(8))

    assert len(done) == 24 and {r.outcome for _, r in done} == {"completed"}
    for n, run_id in enumerate(run_ids):
        assert run_of(tk.store, run_id).status == Status.COMPLETED
        assert run_of(tk.store, run_id).output == {"value": n + 3}
    # One job alone, then groups of 2, 4, 8 and 8 (the fake clock says they are
    # quick), and the last: 9 transactions, where a chain of single jobs commits 25.
    assert counting.transactions == 9


def test_each_run_goes_through_the_same_records_and_events_as_without_groups(
    make_tk: MakeKernel,
) -> None:
    calls = Calls()
    tk = make_tk(linear(calls))
    alone = [start(tk, "linear", value=n) for n in range(3)]
    tk.kernel.execute_jobs("w1", max_jobs=100)
    grouped = [start(tk, "linear", value=n) for n in range(3)]
    tk.kernel.execute_jobs("w1", max_jobs=100, groups=GroupSizer(16))

    for one, other in zip(alone, grouped, strict=True):
        assert _history(tk.store, one) == _history(tk.store, other)
        assert run_of(tk.store, one).output == run_of(tk.store, other).output
        for stage_id in ("first", "second", "third"):
            assert stage_of(tk.store, one, stage_id).attempt == 1
            assert stage_of(tk.store, other, stage_id).status == Status.COMPLETED
    assert calls.counts == {"first": 6, "second": 6, "third": 6}


def test_events_of_a_group_keep_a_causation_id_per_job(make_tk: MakeKernel) -> None:
    tk = make_tk(linear(Calls()))
    run_ids = [start(tk, "linear") for _ in range(4)]
    sizer = GroupSizer(4)
    sizer.size = 4

    tk.kernel.execute_jobs("w1", max_jobs=4, groups=sizer)

    completed = [
        event.causation_id
        for run_id in run_ids
        for event in outbox(tk.store, run_id)
        if event.event_type == "stage:completed"
    ]
    assert len(completed) == 4 and len(set(completed)) == 4


def test_jobs_of_one_run_in_one_group_finish_one_after_another(make_tk: MakeKernel) -> None:
    """The parallel stages of a run may share a group; the run still joins them once."""
    calls = Calls()
    tk = make_tk(fan_out(calls))
    run_id = start(tk, "fan-out", value=1)
    sizer = GroupSizer(8)
    sizer.size = 8

    done = tk.kernel.execute_jobs("w1", groups=sizer)

    assert sorted(job.stage_id for job, _ in done) == ["join", "left", "right", "start"]
    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert event_types(tk.store, run_id).count("workflow:completed") == 1


def test_on_finish_reports_a_group_once_it_committed_in_lease_order(
    make_tk: MakeKernel,
) -> None:
    tk = make_tk(linear(Calls()))
    run_ids = [start(tk, "linear") for _ in range(3)]
    sizer = GroupSizer(4)
    sizer.size = 4
    started: list[str] = []
    finished: list[tuple[str, int]] = []

    def on_finish(job: Job, result: JobExecuteResult) -> None:
        status = stage_of(tk.store, job.workflow_run_id, job.stage_id).status
        assert status == Status.COMPLETED  # committed already
        finished.append((job.workflow_run_id, len(started)))

    tk.kernel.execute_jobs(
        "w1", max_jobs=3, on_start=lambda job: started.append(job.id), on_finish=on_finish
    )
    tk.kernel.execute_jobs("w1", max_jobs=3, groups=sizer, on_finish=on_finish)

    # The ungrouped call reports each job before the next starts; the group after all
    # three have run.
    assert finished[:3] == [(run_id, n) for n, run_id in enumerate(run_ids, 1)]
    assert [count for _, count in finished[3:]] == [3, 3, 3]


def test_max_jobs_and_keep_going_bound_a_group(make_tk: MakeKernel) -> None:
    tk = make_tk(linear(Calls()))
    run_ids = [start(tk, "linear") for _ in range(6)]
    sizer = GroupSizer(16)
    sizer.size = 16

    done = tk.kernel.execute_jobs("w1", max_jobs=4, groups=sizer)
    assert len(done) == 4
    asked: list[int] = []

    def keep_going() -> bool:
        asked.append(1)
        return False

    # One group of what is queued: the 2 first stages left and the 4 second stages
    # the first call's finishes queued; then asked once, inside its finish transaction.
    done = tk.kernel.execute_jobs("w1", max_jobs=100, groups=sizer, keep_going=keep_going)
    assert len(done) == 6
    assert len(asked) == 1

    def queued(stage_id: str) -> list[str]:
        return [
            r
            for r in run_ids
            for job in tk.store.get_jobs(r)
            if job.stage_id == stage_id and job.status == JobStatus.QUEUED
        ]

    assert queued("third") == run_ids[:4]
    assert queued("second") == run_ids[4:]


def test_a_slow_group_shrinks_the_next_and_a_quick_one_grows_it() -> None:
    sizer = GroupSizer(16, window=timedelta(milliseconds=20))
    for expected in (2, 4, 8, 16, 16):
        sizer.observed(ran=sizer.size, took=timedelta(milliseconds=1))
        assert sizer.size == expected
    sizer.observed(ran=16, took=timedelta(milliseconds=160))  # 10 ms a job: 2 fit
    assert sizer.size == 2
    sizer.observed(ran=1, took=timedelta(milliseconds=1))  # a part group does not grow it
    assert sizer.size == 2
    sizer.observed(ran=2, took=timedelta(seconds=3))
    assert sizer.size == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"largest": 0}, "largest: expected an int >= 1, got 0"),
        ({"largest": True}, "largest: expected an int >= 1, got True"),
        ({"window": timedelta(0)}, "window: expected a timedelta > 0"),
        ({"stall": 5}, "stall: expected a timedelta > 0, got 5"),
    ],
)
def test_sizer_settings_name_the_bad_value(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GroupSizer(**settings)


def test_execute_jobs_names_a_bad_groups_argument() -> None:
    tk = create_test_kernel(linear(Calls()))
    with pytest.raises(TypeError, match="groups: expected a GroupSizer or None, got 4"):
        tk.kernel.execute_jobs("w1", groups=4)  # type: ignore[arg-type]


def _slow_first(clock: FakeClock, seconds: float) -> Any:
    calls = Calls()

    def execute(ctx: Any) -> Num:
        if calls.hit("slow") == 1:
            clock.advance(timedelta(seconds=seconds))
        return Num(ctx.input.value)

    stage = custom("slow", execute)
    return calls, pipeline("slow", stage)


def test_jobs_of_a_group_that_stalled_go_back_to_the_queue_unrun() -> None:
    """A stage that took longer than the sizer's stall: the jobs of its group that did not
    start yet are given back (attempt returned, stage PENDING), and none of them runs."""
    clock = FakeClock()
    calls, workflow = _slow_first(clock, seconds=10)
    tk = create_test_kernel(workflow, clock=clock)
    run_ids = [start(tk, "slow", value=n) for n in range(3)]
    sizer = GroupSizer(4, stall=timedelta(seconds=5))
    sizer.size = 4

    done = tk.kernel.execute_jobs("w1", groups=sizer)

    assert [job.workflow_run_id for job, _ in done] == run_ids[:1]
    assert calls["slow"] == 1
    for run_id in run_ids[1:]:
        job = job_of(tk.store, run_id, "slow")
        assert (job.status, job.attempt, job.worker_id) == (JobStatus.QUEUED, 0, None)
        assert stage_of(tk.store, run_id, "slow").status == Status.PENDING
    assert sizer.size == 1  # 10 s for one job: the next groups hold one job
    assert len(tk.kernel.execute_jobs("w1", groups=sizer)) == 2
    assert all(run_of(tk.store, run_id).status == Status.COMPLETED for run_id in run_ids)


class Refused(Exception):
    pass


def test_when_a_job_of_a_group_may_not_start_what_ran_commits_and_the_rest_go_back() -> None:
    tk = create_test_kernel(linear(Calls()))
    run_ids = [start(tk, "linear") for _ in range(3)]
    sizer = GroupSizer(4)
    sizer.size = 4
    starts: list[str] = []

    def on_start(job: Job) -> None:
        starts.append(job.workflow_run_id)
        if len(starts) == 2:
            raise Refused(job.id)

    reported: list[str] = []
    with pytest.raises(Refused):
        tk.kernel.execute_jobs(
            "w1",
            groups=sizer,
            on_start=on_start,
            on_finish=lambda job, _: reported.append(job.workflow_run_id),
        )

    first, refused, last = run_ids
    assert reported == [first]
    assert stage_of(tk.store, first, "first").status == Status.COMPLETED
    # The job that may not start stays leased (the caller, or the reaper, frees it) ...
    assert job_of(tk.store, refused, "first").status == JobStatus.LEASED
    # ... and the one after it goes back to the queue without running.
    assert job_of(tk.store, last, "first").status == JobStatus.QUEUED
    assert stage_of(tk.store, last, "first").status == Status.PENDING


class FailingGroups:
    """A store whose transactions fail when they apply several runs' finishes together
    (a stand-in for a database error in a group's commit)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._inner.transaction() as tx:
            yield cast(StoreTransaction, _Refusing(tx, self))


class _Refusing:
    def __init__(self, inner: StoreTransaction, store: FailingGroups) -> None:
        self._inner = inner
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, effects: Any) -> None:
        finished = {
            effect.stage.workflow_run_id
            for effect in effects
            if getattr(effect, "stage", None) is not None
            and effect.stage.status == Status.COMPLETED
        }
        if len(finished) > 1:
            self._store.refused += 1
            raise StoreError("refused: several runs in one apply")
        self._inner.apply(effects)


def test_a_group_whose_commit_fails_finishes_each_job_alone() -> None:
    tk = create_test_kernel(linear(Calls()))
    run_ids = [start(tk, "linear") for _ in range(3)]
    failing = FailingGroups(tk.store)
    tk.kernel.store = cast(Store, failing)
    sizer = GroupSizer(4)
    sizer.size = 4

    done = tk.kernel.execute_jobs("w1", max_jobs=3, groups=sizer)

    assert failing.refused >= 1
    assert [job.workflow_run_id for job, _ in done] == run_ids
    assert all(stage_of(tk.store, r, "first").status == Status.COMPLETED for r in run_ids)
    assert all(job_of(tk.store, r, "second").status == JobStatus.QUEUED for r in run_ids)


def test_stage_code_sees_the_input_of_its_own_run_in_a_group(make_tk: MakeKernel) -> None:
    seen: list[int] = []

    def execute(ctx: Any) -> Num:
        seen.append(ctx.input.value)
        return Num(ctx.input.value * 2)

    tk = make_tk(pipeline("double", custom("double", execute)))
    run_ids = [start(tk, "double", value=n) for n in range(5)]
    sizer = GroupSizer(8)
    sizer.size = 8

    tk.kernel.execute_jobs("w1", groups=sizer)

    assert seen == list(range(5))
    assert [run_of(tk.store, r).output for r in run_ids] == [{"value": 2 * n} for n in range(5)]


def test_a_run_changed_while_its_group_ran_is_read_again_and_the_others_are_not(
    make_tk: MakeKernel,
) -> None:
    """The group's finishes check at once that nothing their starts left has changed;
    the run cancelled meanwhile is read afresh (its result discarded), the rest finish
    on what their starts read."""
    kernels: list[Any] = []

    def execute(ctx: Any) -> Num:
        if ctx.input.value == 1:
            kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id))
        return Num(ctx.input.value)

    tk = make_tk(pipeline("cancelling", custom("work", execute)))
    kernels.append(tk)
    run_ids = [start(tk, "cancelling", value=n) for n in range(3)]
    sizer = GroupSizer(4)
    sizer.size = 4

    done = tk.kernel.execute_jobs("w1", groups=sizer)

    outcomes = {job.workflow_run_id: result.outcome for job, result in done}
    assert outcomes == {run_ids[0]: "completed", run_ids[1]: "skipped", run_ids[2]: "completed"}
    assert [run_of(tk.store, r).status for r in run_ids] == [
        Status.COMPLETED,
        Status.CANCELLED,
        Status.COMPLETED,
    ]
