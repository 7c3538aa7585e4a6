"""``wfk schedule add|list|remove|pause|resume``: workflows started on a clock (SPEC §14).

A schedule fires on a five-field cron expression (in its time zone) or
every fixed interval; the orchestration tick of any running worker creates
its runs. ``add``, ``pause`` and ``resume`` store the schedule with
``schedule.upsert``, which checks its workflow and input, so they need the
app (``--app`` or ``$WFK_APP``); ``list`` and ``remove`` do not.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from adapters import create_kernel
from adapters.cli.errors import CliError
from adapters.cli.inputs import app_kernel, parse_config, parse_json, registered, shown
from adapters.cli.render import dump, table, when
from adapters.cli.stores import Stores, store_url
from adapters.clocks import system_zone
from kernel.commands import ScheduleDelete, ScheduleUpsert
from kernel.convert import to_json
from kernel.copying import evolve
from kernel.errors import InvalidInputError
from kernel.ports import Store
from kernel.records import WorkflowRun
from kernel.schedules import Catchup, Overlap, Schedule, ScheduleRecord

EVERY = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
UNITS = (("d", timedelta(days=1)), ("h", timedelta(hours=1)), ("m", timedelta(minutes=1)))

FLAGS = {
    "cron": "--cron",
    "every": "--every",
    "timezone": "--tz",
    "workflow_id": "--workflow",
    "overlap": "--overlap",
    "catchup": "--catchup",
}
"""The flag of each schedule field whose name differs from it, for error messages."""


def parse_every(text: str) -> timedelta:
    """``--every``: ``30s``, ``15m``, ``1h``, ``2d``, ``1h30m`` (units in that order).

    >>> parse_every("1h30m")
    datetime.timedelta(seconds=5400)

    Raises:
        CliError: anything else, or a duration of 0.
    """
    found = EVERY.fullmatch(text.strip().lower())
    if text.strip() and found is not None:
        days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
        every = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if every > timedelta(0):
            return every
    raise CliError(
        f"--every {shown(text)}: expected a duration > 0 such as 30s, 15m, 1h, 2d or 1h30m"
    )


def every_text(every: timedelta) -> str:
    """``1h30m``, ``15m``, ``2d``, ``30s`` (``0.5s`` for a fraction of a second).

    >>> every_text(timedelta(minutes=90)), every_text(timedelta(days=2, seconds=30))
    ('1h30m', '2d30s')
    """
    parts: list[str] = []
    left = every
    for unit, size in UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    if left or not parts:
        seconds = left.total_seconds()
        parts.append(f"{seconds:g}s")
    return "".join(parts)


def timing(record: ScheduleRecord | Schedule) -> str:
    """``0 3 * * *`` or ``every 15m``."""
    if record.cron is not None:
        return record.cron
    return f"every {every_text(record.every)}" if record.every is not None else "-"


def fire_text(at: datetime, zone_name: str) -> str:
    """``2026-11-26 01:00:00 UTC``, with the local time in another zone:
    ``2026-11-26 01:00:00 UTC (2026-11-26 03:00:00 Europe/Riga)``."""
    text = f"{when(at.astimezone(UTC))} UTC"
    zone = system_zone(zone_name)
    if zone is None or zone is UTC:
        return text
    return f"{text} ({when(at.astimezone(zone))} {zone_name})"


def _upsert(
    args: argparse.Namespace, store: Store, schedule: Schedule
) -> tuple[bool, datetime | None]:
    """Store the schedule; ``(created, next_fire_at)``. The kernel's problems name flags."""
    app, kernel = app_kernel(args, store)
    registered(app, schedule.workflow_id)
    try:
        result = kernel.dispatch(ScheduleUpsert(schedule))
    except InvalidInputError as exc:
        problems = [_flagged(problem) for problem in exc.problems]
        raise CliError(f"invalid schedule: {'; '.join(problems)}") from exc
    return result.created, result.next_fire_at


def _flagged(problem: str) -> str:
    """``timezone: unknown time zone 'X'`` → ``--tz: unknown time zone 'X'``."""
    field, colon, rest = problem.partition(":")
    return f"{FLAGS[field]}{colon}{rest}" if field in FLAGS else problem


def _stored(store: Store, schedule_id: str) -> ScheduleRecord:
    found = next((s for s in store.get_schedules() if s.id == schedule_id), None)
    if found is None:
        raise CliError(f"schedule {schedule_id!r} does not exist (see `wfk schedule list`)")
    return found


def cmd_schedule_add(args: argparse.Namespace, stores: Stores) -> int:
    every = parse_every(args.every) if args.every is not None else None
    run_input = parse_json(args.input, "--input", quote=True) if args.input is not None else None
    schedule = Schedule(
        args.id,
        args.workflow,
        cron=args.cron,
        every=every,
        input=run_input,
        config=parse_config(args.config, quote=True),
        timezone=args.tz,
        overlap=args.overlap,
        catchup=args.catchup,
        enabled=not args.paused,
    )
    store = stores.open(store_url(args.store), create=False)
    created, next_fire_at = _upsert(args, store, schedule)
    said = f"{'created' if created else 'updated'} schedule {args.id!r} ({timing(schedule)}"
    said += f", {args.tz})" if args.tz != "UTC" else ")"
    if next_fire_at is None:
        print(f"{said}, paused: it fires once resumed (`wfk schedule resume {args.id}`)")
    else:
        print(f"{said}: next fire {fire_text(next_fire_at, args.tz)}")
    return 0


def cmd_schedule_pause(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    record = _stored(store, args.id)
    if not record.enabled:
        print(f"schedule {args.id!r} is paused already")
        return 0
    _upsert(args, store, evolve(record.schedule, enabled=False))
    print(f"paused schedule {args.id!r}: it fires once resumed (`wfk schedule resume {args.id}`)")
    return 0


def cmd_schedule_resume(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    record = _stored(store, args.id)
    was = "is active already" if record.enabled else None
    _, next_fire_at = _upsert(args, store, evolve(record.schedule, enabled=True))
    fire = fire_text(next_fire_at, record.timezone) if next_fire_at is not None else "-"
    said = f"schedule {args.id!r} {was}" if was else f"resumed schedule {args.id!r}"
    print(f"{said}: next fire {fire}")
    return 0


def cmd_schedule_remove(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    if not create_kernel(store=store).dispatch(ScheduleDelete(args.id)).deleted:
        raise CliError(f"schedule {args.id!r} does not exist: nothing to remove")
    print(f"removed schedule {args.id!r} (the runs it started stay)")
    return 0


def cmd_schedule_list(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False, reads_only=True)
    records = store.get_schedules()
    last_runs = {
        record.id: store.get_run(record.last_run_id) if record.last_run_id else None
        for record in records
    }
    if args.json:
        print(
            dump(
                [
                    {
                        **to_json(record),
                        "last_run_status": run.status if (run := last_runs[record.id]) else None,
                    }
                    for record in records
                ]
            )
        )
    elif not records:
        print("no schedules")
    else:
        print(schedules_table(records, last_runs))
    return 0


def schedules_table(
    records: Sequence[ScheduleRecord], last_runs: Mapping[str, WorkflowRun | None]
) -> str:
    """One row per schedule; ``last_runs``: by schedule id, its last run (``None``: none, or
    purged)."""
    rows = []
    for record in records:
        last = "-"
        if record.last_run_id is not None:
            run = last_runs.get(record.id)
            last = f"{record.last_run_id[:8]} ({run.status if run else 'purged'})"
        rows.append(
            [
                record.id,
                record.workflow_id,
                timing(record),
                record.timezone,
                "active" if record.enabled else "paused",
                when(record.next_fire_at),
                when(record.last_fire_at),
                last,
            ]
        )
    headers = ["SCHEDULE", "WORKFLOW", "WHEN", "TZ", "STATUS", "NEXT FIRE", "LAST FIRE", "LAST RUN"]
    return table(headers, rows)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """``schedule add|list|remove|pause|resume``."""
    schedule = commands.add_parser("schedule", help="start workflows on a clock")
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        parents=[common],
        help="add a schedule, or replace the one with this id",
        description="Store a schedule: a running worker starts a run of WORKFLOW at each fire "
        "time (a cron expression in --tz, or every fixed interval).",
    )
    add.add_argument("id", metavar="ID", help="the schedule's id")
    add.add_argument("--workflow", required=True, metavar="W", help="the workflow to start")
    timing_flags = add.add_mutually_exclusive_group(required=True)
    timing_flags.add_argument(
        "--cron", metavar="EXPR", help="five fields: minute hour day month weekday"
    )
    timing_flags.add_argument(
        "--every", metavar="DURATION", help="an interval: 30s, 15m, 1h, 2d, 1h30m"
    )
    add.add_argument("--input", metavar="JSON", help="each run's input (or @file)")
    add.add_argument("--config", metavar="JSON", help="config by stage id (or @file)")
    add.add_argument("--tz", default="UTC", metavar="ZONE", help="the cron's time zone (UTC)")
    add.add_argument(
        "--overlap",
        choices=get_args(Overlap),
        default="skip",
        help="skip: no run while the previous one goes on (default); allow: start it anyway",
    )
    add.add_argument(
        "--catchup",
        choices=get_args(Catchup),
        default="latest",
        help="fire times missed while no worker ran: the latest once (default), all, or none",
    )
    add.add_argument("--paused", action="store_true", help="store it paused")
    add.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    add.set_defaults(handler=cmd_schedule_add)

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list the schedules",
        description="List the schedules with their next and last fire times and last run.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_schedule_list)

    remove = actions.add_parser(
        "remove",
        parents=[common],
        help="remove a schedule (its runs stay)",
        description="Remove a schedule; the runs it started stay.",
    )
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(handler=cmd_schedule_remove)

    for name, handler, what in (
        ("pause", cmd_schedule_pause, "stop a schedule firing until it is resumed"),
        ("resume", cmd_schedule_resume, "let a paused schedule fire again"),
    ):
        action = actions.add_parser(
            name, parents=[common], help=what, description=what[0].upper() + what[1:] + "."
        )
        action.add_argument("id", metavar="ID")
        action.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
        action.set_defaults(handler=handler)
