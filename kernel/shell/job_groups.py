"""A worker's loop over queued jobs, several per transaction while they are quick.

``Kernel.execute_jobs`` leases a *group* of jobs in one transaction, runs
their user code one after another outside any transaction, then commits all
their finishes together with the lease of the next group: a busy slot whose
stages take microseconds commits one write transaction per group instead of
one per stage (group commit). How many jobs a group holds is the
:class:`GroupSizer`'s call: one at first and whenever stages take long, twice
as many each time a full group ran within its ``window``, so a slow stage
never keeps queued jobs waiting behind it for long.

A job of a group waits, leased and started, until the jobs before it in the
group have run. Before starting each, the loop checks that the group is not
older than the sizer's ``stall``: if it is, the finishes of what ran commit and
the jobs not started yet go back to the queue (``lease.release``), so a stage
that took unexpectedly long never lets another job's lease go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol, TypeVar

from kernel.commands import JobExecuteResult, LeaseRelease, RunClaimPending, RunClaimPendingResult
from kernel.effects import OutsideWorld
from kernel.ports import Clock
from kernel.records import Job
from kernel.shell.job_execute import Leased, Ran, finish_all_and_lease, finishing, lease_up_to
from kernel.shell.steps import Before, Done, Phase, Step, Within
from kernel.shell.table import TABLE

R = TypeVar("R")


class Drive(Protocol):
    """Runs phases, each in a transaction, until one is done (``Kernel._drive``)."""

    def __call__(self, phase: Phase[R]) -> R: ...


Executed = list[tuple[Job, JobExecuteResult]]

GROUP_WINDOW = timedelta(milliseconds=20)
"""How long a group's user code may take, all jobs together, for the next group to grow."""

GROUP_STALL = timedelta(seconds=5)
"""How old a group may get before the jobs of it not started yet go back to the queue."""


class GroupSizer:
    """How many jobs a slot leases at once (one slot's, used by one thread at a time).

    >>> sizer = GroupSizer(largest=8)
    >>> sizer.size
    1
    >>> sizer.observed(ran=1, took=timedelta(milliseconds=1))
    >>> sizer.size
    2
    >>> sizer.observed(ran=2, took=timedelta(seconds=1))  # 0.5 s a job: one at a time
    >>> sizer.size
    1

    Args:
        largest: the most jobs one group holds (1: every job alone).
        window: a full group whose user code took at most this long doubles the
            next; a group that took longer sets it to as many jobs as fit in it.
        stall: how old a group may get before its jobs not started yet are given
            back to the queue; keep it well under the stale-lease threshold.

    Raises:
        ValueError: a bad setting (the message names it).
    """

    def __init__(
        self,
        largest: int = 16,
        *,
        window: timedelta = GROUP_WINDOW,
        stall: timedelta = GROUP_STALL,
    ) -> None:
        if isinstance(largest, bool) or not isinstance(largest, int) or largest < 1:
            raise ValueError(f"largest: expected an int >= 1, got {largest!r}")
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise ValueError(f"window: expected a timedelta > 0, got {window!r}")
        if not isinstance(stall, timedelta) or stall <= timedelta(0):
            raise ValueError(f"stall: expected a timedelta > 0, got {stall!r}")
        self.largest = largest
        self.window = window
        self.stall = stall
        self.size = 1
        """How many jobs the next group leases, at most."""

    def observed(self, ran: int, took: timedelta) -> None:
        """A group of ``ran`` jobs' user code took ``took`` in all."""
        if ran < 1:
            return
        if took <= self.window:
            if ran >= self.size:
                self.size = min(self.largest, self.size * 2)
        else:
            fit = int(self.window / (took / ran))
            self.size = max(1, min(self.largest, fit))


class JobLoop:
    """One ``Kernel.execute_jobs`` call (see its docstring for the callbacks)."""

    def __init__(
        self,
        *,
        drive: Drive,
        world: OutsideWorld,
        clock: Clock,
        worker_id: str,
        max_jobs: int,
        on_start: Callable[[Job], None] | None,
        on_finish: Callable[[Job, JobExecuteResult], None] | None,
        keep_going: Callable[[], bool] | None,
        sizer: GroupSizer,
    ) -> None:
        self._drive = drive
        self._world = world
        self._clock = clock
        self._worker_id = worker_id
        self._max_jobs = max_jobs
        self._on_start = on_start
        self._on_finish = on_finish
        self._keep_going = keep_going
        self._sizer = sizer
        self.done: Executed = []

    def run(
        self,
        claim_first: RunClaimPending | None,
        on_claimed: Callable[[RunClaimPendingResult], None] | None,
    ) -> Executed:
        """Lease the first group (after ``claim_first``, in the same transaction), then
        run groups until none is leased."""
        wanted = min(self._sizer.size, self._max_jobs)
        first: Phase[tuple[Leased, ...]] = lease_up_to(self._worker_id, wanted, Done)
        claimed: list[RunClaimPendingResult] = []
        if claim_first is not None:

            def lease_after(result: RunClaimPendingResult) -> Step[tuple[Leased, ...]]:
                claimed[:] = [result]  # a retried transaction claims anew
                return Within(lease_up_to(self._worker_id, wanted, Done))

            first = Before(TABLE.find(claim_first).begin(claim_first), lease_after)
        group: tuple[Leased, ...] = self._drive(first)
        if claimed and on_claimed is not None:
            on_claimed(claimed[0])
        while group:
            group = self._group(group)
        return self.done

    def _wanted(self, in_flight: int) -> Callable[[], int]:
        """How many jobs to lease next, asked once ``in_flight`` more jobs are done."""

        def ask() -> int:
            left = self._max_jobs - len(self.done) - in_flight
            if left < 1 or (self._keep_going is not None and not self._keep_going()):
                return 0
            return min(self._sizer.size, left)

        return ask

    def _group(self, group: tuple[Leased, ...]) -> tuple[Leased, ...]:
        """Run one group's user code, commit its finishes with the next group's lease;
        returns the next group."""
        skipped = [
            (leased.job, leased.plan.skipped)
            for leased in group
            if leased.plan.execute is None and leased.plan.skipped is not None
        ]
        runnable = [leased for leased in group if leased.plan.execute is not None]
        ran: list[tuple[Job, Ran]] = []
        began = self._clock.now()
        waiting: Sequence[Leased] = ()
        for index, leased in enumerate(runnable):
            if ran and self._clock.now() - began > self._sizer.stall:
                waiting = runnable[index:]
                break
            started = leased.plan.execute
            assert started is not None
            job = started.job or leased.job
            try:
                if self._on_start is not None:
                    self._on_start(job)
                ran.append((job, (started, started.carry_out(self._world))))
            except BaseException:
                # What ran commits, what did not start goes back; the job whose
                # start or code raised stays leased (the caller or the reaper frees it).
                self._settle(ran, skipped, runnable[index + 1 :])
                raise
        took = self._clock.now() - began
        following: tuple[Leased, ...] = ()
        results: tuple[JobExecuteResult | None, ...] = ()
        failure: Exception | None = None
        if ran:
            wanted = self._wanted(len(skipped) + len(ran)) if not waiting else _none
            results, following, failure = self._finish(ran, wanted)
        self._sizer.observed(len(ran), took)
        try:
            if waiting:
                self._release(waiting)
        finally:
            self._report(skipped, ran, results)
        if failure is not None:
            raise failure
        if not ran and not waiting:
            # Only jobs settled without running: ask (outside any transaction, after
            # reporting them) whether to lease more, as after a chain's settled job.
            wanted_now = self._wanted(0)()
            if wanted_now:
                following = self._drive(lease_up_to(self._worker_id, wanted_now, Done))
        return following

    def _finish(
        self, ran: list[tuple[Job, Ran]], wanted: Callable[[], int]
    ) -> tuple[tuple[JobExecuteResult | None, ...], tuple[Leased, ...], Exception | None]:
        """Commit the finishes of ``ran`` with the next lease. If that transaction fails,
        finish each alone. The first error is returned, to raise once the finishes
        that did commit are reported."""
        pairs = tuple(pair for _, pair in ran)
        try:
            results, following = self._drive(finish_all_and_lease(pairs, self._worker_id, wanted))
        except Exception as exc:
            if len(pairs) == 1:
                return (None,), (), exc
            each, failure = self._each(pairs)
            return each, (), failure
        return results, following, None

    def _each(
        self, pairs: tuple[Ran, ...]
    ) -> tuple[tuple[JobExecuteResult | None, ...], Exception | None]:
        """Each finish in a transaction of its own: the results (``None`` where one
        failed) and the first error."""
        results: list[JobExecuteResult | None] = []
        failure: Exception | None = None
        for started, outcome in pairs:
            try:
                results.append(self._drive(finishing(started, outcome)))
            except Exception as exc:
                results.append(None)
                failure = failure or exc
        return tuple(results), failure

    def _settle(
        self,
        ran: list[tuple[Job, Ran]],
        skipped: list[tuple[Job, JobExecuteResult]],
        not_started: Sequence[Leased],
    ) -> None:
        """After a group's outside part raised: commit what ran, give back what did not
        start, and report. Errors here give way to the one being raised."""
        results: tuple[JobExecuteResult | None, ...] = ()
        if ran:
            results, _, _ = self._finish(ran, _none)  # its error gives way to the caller's
        try:
            if not_started:
                self._release(not_started)
        except Exception:  # the reaper frees them; the caller's error wins
            pass
        finally:
            self._report(skipped, ran, results)

    def _release(self, leased: Sequence[Leased]) -> None:
        cmd = LeaseRelease(job_ids=tuple(item.job.id for item in leased), worker_id=self._worker_id)
        self._drive(TABLE.find(cmd).begin(cmd))

    def _report(
        self,
        skipped: list[tuple[Job, JobExecuteResult]],
        ran: list[tuple[Job, Ran]],
        results: Sequence[JobExecuteResult | None],
    ) -> None:
        """Record and report what committed: the jobs settled without running first,
        then those that ran, in order (a host takes the last for its slot's job)."""
        ended = [*skipped]
        ended += [
            (job, result)
            for (job, _), result in zip(ran, results, strict=True)
            if result is not None
        ]
        for job, result in ended:
            self.done.append((job, result))
            if self._on_finish is not None:
                self._on_finish(job, result)


def _none() -> int:
    return 0
