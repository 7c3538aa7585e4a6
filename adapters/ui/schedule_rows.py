"""Display rows of the schedules page: how each schedule fires and where it stands."""

from __future__ import annotations

from datetime import timedelta

from attrs import frozen

from adapters.cli.render import when
from kernel.records import WorkflowRun
from kernel.schedules import ScheduleRecord


@frozen
class ScheduleRow:
    id: str
    workflow_id: str
    fires: str
    next_fire: str
    last_fire: str
    last_run_id: str
    last_run_status: str
    status: str
    policy: str


def every_text(every: timedelta) -> str:
    """``every 1 h 30 m``, ``every 45 s``."""
    seconds = int(every.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}")
    return "every " + (" ".join(parts) or f"{every.total_seconds()} s")


def schedule_row(record: ScheduleRecord, last_run: WorkflowRun | None) -> ScheduleRow:
    fires = f"cron {record.cron}" if record.cron else every_text(record.every or timedelta())
    return ScheduleRow(
        id=record.id,
        workflow_id=record.workflow_id,
        fires=f"{fires} ({record.timezone})",
        next_fire=when(record.next_fire_at),
        last_fire=when(record.last_fire_at),
        last_run_id=record.last_run_id or "",
        last_run_status="" if last_run is None else str(last_run.status),
        status="enabled" if record.enabled else "paused",
        policy=f"overlap {record.overlap}, catch-up {record.catchup}",
    )
