"""The orchestration tick: the periodic commands that keep runs moving (SPEC §8).

One tick: fire due schedules (at most once a second), claim pending runs, poll
due suspended stages (and transition the
runs they resume), reap stale leases, cancel provider batches left pending (with
batch providers), transition RUNNING runs left with no
active stage (the safety net, on sweeping ticks only), flush the outbox, and,
with ``purge_after``, purge runs finished longer ago (at most once a minute).
Each part is its own command, so a failing part is logged and the others
still run; the next tick tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from adapters.hosts.logs import HostLog
from adapters.runner import describe
from kernel.commands import (
    BatchCancelPending,
    LeaseReapStale,
    OutboxFlush,
    RunClaimPending,
    RunClaimPendingResult,
    RunsPurge,
    RunTransition,
    ScheduleTick,
    StagePollSuspended,
)
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.status import Status

SWEEP_LIMIT = 500
"""RUNNING runs the safety net looks at per sweep (newest first): it is a net, not a scan."""

SWEEP_PAGE = 50
"""RUNNING runs the safety net reads at a time: a worker's memory needs no room for
all of them at once (what a process once held, it keeps)."""

SCHEDULE_EVERY = timedelta(seconds=1)
"""How often a host's ticks fire due schedules: the finest schedule a host serves
fires on time to within this (plus the tick interval)."""

PURGE_EVERY = timedelta(minutes=1)
"""How often a host with ``purge_after`` purges finished runs (each purge takes the
write lock on SQLite)."""

PURGE_BATCH = 100
"""Runs one purge deletes; a purge that deleted this many goes again at the next tick."""

FLUSH_BATCH = 100
FLUSH_ROUNDS = 10
"""A tick publishes at most ``FLUSH_BATCH * FLUSH_ROUNDS`` events; a tick that did asks
for the next one ``notified_tick_gap`` later (``TickReport.backlog``), so events made
faster than that a second are not left waiting for the interval."""


@frozen(kw_only=True)
class TickReport:
    """What one orchestration tick did."""

    fired: int = 0
    """Runs created by due schedules."""
    claimed: int = 0
    checked: int = 0
    resumed: int = 0
    transitioned: int = 0
    reaped: int = 0
    published: int = 0
    purged: int = 0
    """Finished runs deleted by the retention purge (``purge_after``)."""
    backlog: bool = False
    """The claim took as many runs as it may, or the flush published as many events as a
    tick may: more PENDING runs, or more events, may be waiting."""
    errors: tuple[str, ...] = ()
    """``"part: Error: message"`` for each part of the tick that raised."""

    @property
    def ok(self) -> bool:
        """Whether every part of the tick ran without an exception."""
        return not self.errors

    @property
    def found_work(self) -> bool:
        """Whether the tick may have queued jobs (claimed, resumed, moved or reaped something)."""
        return bool(self.fired or self.claimed or self.resumed or self.transitioned or self.reaped)


class Orchestrator:
    """Runs ticks for one worker id."""

    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        *,
        worker_id: str,
        stale_lease_threshold: timedelta,
        max_claims: int,
        log: HostLog,
        purge_after: timedelta | None = None,
    ) -> None:
        self.kernel = kernel
        self.store = store
        self.worker_id = worker_id
        self.stale_threshold_ms = int(stale_lease_threshold.total_seconds() * 1000)
        self.max_claims = max_claims
        self.log = log
        self._schedules_due: datetime | None = None
        """When this host next fires schedules (``None``: at the next tick)."""
        self.purge_after = purge_after
        self._purge_due: datetime | None = None
        """When this host next purges finished runs (``None``: at the next tick)."""

    def tick(self, sweep: bool) -> TickReport:
        """Run one tick; ``sweep`` adds the safety net. Never raises: failures are in ``errors``."""
        counts = dict.fromkeys(("fired", "claimed", "checked", "resumed", "transitioned"), 0)
        counts["reaped"] = counts["purged"] = 0
        errors: list[str] = []

        def part(
            name: str, body: Callable[..., object], *args: Any, run_id: str | None = None
        ) -> None:
            try:
                body(*args)
            except Exception as exc:  # a failing part must not stop the others
                errors.append(f"{name}: {describe(exc)}")
                self.log.exception("tick: %s failed", name, extra={"workflow_run_id": run_id})

        def claim() -> None:
            counts["claimed"] = self._claim()

        def poll() -> None:
            polled = self.kernel.dispatch(StagePollSuspended())
            counts["checked"], counts["resumed"] = polled.checked, polled.resumed
            for run_id in polled.resumed_workflow_run_ids:
                part("transition", self._transition, run_id, counts, run_id=run_id)

        def reap() -> None:
            released = self.kernel.dispatch(
                LeaseReapStale(stale_threshold_ms=self.stale_threshold_ms)
            ).released
            counts["reaped"] = released
            if released:
                self.log.warning(
                    "reaped %d stale lease(s): their workers stopped renewing", released
                )

        def safety_net() -> None:
            seen, before = 0, None
            while seen < SWEEP_LIMIT:
                wanted = min(SWEEP_PAGE, SWEEP_LIMIT - seen)
                page = self.store.list_runs(status=Status.RUNNING, limit=wanted, before=before)
                for run in page:
                    stages = self.store.get_stages(run.id)
                    if stages and not any(stage.is_active for stage in stages):
                        part("transition", self._transition, run.id, counts, run_id=run.id)
                if len(page) < wanted:
                    return
                seen, before = seen + len(page), page[-1].id

        part("schedules", self._fire_schedules, counts)
        part("claim", claim)
        part("poll", poll)
        part("reap", reap)
        if self.kernel.batch_providers:
            part("batch cancels", self._cancel_batches)
        if sweep:
            part("safety net", safety_net)
        published: list[int] = []
        part("flush", lambda: published.append(self.flush()))
        if self.purge_after is not None:
            part("purge", self._purge, self.purge_after, counts)
        return TickReport(
            **counts,
            published=sum(published),
            backlog=counts["claimed"] >= self.max_claims
            or sum(published) >= FLUSH_BATCH * FLUSH_ROUNDS,
            errors=tuple(errors),
        )

    def _claim(self) -> int:
        claimed = self.kernel.dispatch(self.claim_command())
        self.log_claimed(claimed)
        return len(claimed.claimed)

    def claim_command(self) -> RunClaimPending:
        """The claim a tick makes, for a dequeue that claims before its first lease."""
        return RunClaimPending(worker_id=self.worker_id, max_claims=self.max_claims)

    def log_claimed(self, result: RunClaimPendingResult) -> None:
        """Log each run a claim took."""
        for run in result.claimed:
            self.log.info(
                "claimed run %s (%s), %d job(s) queued",
                run.workflow_run_id,
                run.workflow_id,
                len(run.job_ids),
                extra={"workflow_run_id": run.workflow_run_id},
            )

    def flush(self) -> int:
        """Publish outbox events in batches until a batch comes back short; returns how many."""
        total = 0
        for _ in range(FLUSH_ROUNDS):
            published = self.kernel.dispatch(OutboxFlush(max_events=FLUSH_BATCH)).published
            total += published
            if published < FLUSH_BATCH:
                break
        return total

    def _fire_schedules(self, counts: dict[str, int]) -> None:
        """``schedule.tick``, at most once per :data:`SCHEDULE_EVERY` of the kernel's clock
        (each takes the write lock on SQLite); a tick that fired its limit goes again
        at the next tick."""
        now = self.kernel.clock.now()
        if self._schedules_due is not None and now < self._schedules_due:
            return
        ticked = self.kernel.dispatch(ScheduleTick())
        fires = len(ticked.created) + ticked.skipped + len(ticked.problems)
        full = fires >= ScheduleTick().max_fires
        self._schedules_due = None if full else now + SCHEDULE_EVERY
        counts["fired"] = len(ticked.created)
        for run_id in ticked.created:
            run = self.store.get_run(run_id)
            schedule_id = run.metadata.get("schedule_id") if run is not None else None
            self.log.info(
                "schedule %s fired: run %s", schedule_id, run_id, extra={"workflow_run_id": run_id}
            )
        if ticked.skipped:
            self.log.info(
                "schedules: %d fire(s) skipped, their previous run still going", ticked.skipped
            )
        for problem in ticked.problems:
            self.log.warning("schedules: %s", problem)

    def _purge(self, older_than: timedelta, counts: dict[str, int]) -> None:
        """``runs.purge``, at most once per :data:`PURGE_EVERY` of the kernel's clock; a
        purge that deleted a full batch goes again at the next tick."""
        now = self.kernel.clock.now()
        if self._purge_due is not None and now < self._purge_due:
            return
        purged = self.kernel.dispatch(RunsPurge(older_than=older_than, limit=PURGE_BATCH)).purged
        self._purge_due = None if purged >= PURGE_BATCH else now + PURGE_EVERY
        counts["purged"] = purged
        if purged:
            self.log.info("purged %d run(s) finished more than %s ago", purged, older_than)

    def _cancel_batches(self) -> None:
        """Call the providers' ``cancel`` for pending batch cancels; a failed call stays
        pending for the next tick."""
        done = self.kernel.dispatch(BatchCancelPending())
        if done.cancelled:
            self.log.info("cancelled %d provider batch(es)", done.cancelled)
        if done.failed:
            self.log.warning(
                "%d provider batch cancel(s) failed; retried at the next tick", done.failed
            )

    def _transition(self, run_id: str, counts: dict[str, int]) -> None:
        result = self.kernel.dispatch(RunTransition(workflow_run_id=run_id))
        if result.action != "noop":
            counts["transitioned"] += 1
            self.log.info("run %s %s", run_id, result.action, extra={"workflow_run_id": run_id})
