"""The workflow the schedule process tests fire, importable by worker subprocesses
(``--app tests.hosts.schedule_apps:beat_app``).

``beat``: one quick stage that hands its input back.

With ``$WFK_TEST_TICK_PAUSE`` set to a file path, importing this module makes
the process pause inside its first ``schedule.tick`` that finds a schedule
due: the stores' ``due_schedules`` (SQLite and PostgreSQL) returns the
locked rows, then writes the file (JSON: the process id and the due
schedules' ids and ``next_fire_at``) and sleeps for an hour, holding the
tick's transaction open, so a test can kill the process right there.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from kernel import StageContext, Workflow, WorkflowBuilder, define_stage
from kernel.schedules import ScheduleRecord

PAUSE_ENV = "WFK_TEST_TICK_PAUSE"
PAUSE_S = 3600.0


@attrs.frozen
class Beat:
    label: str


@attrs.frozen
class NoConfig:
    pass


def echo(ctx: StageContext[Beat, NoConfig]) -> Beat:
    return ctx.input


echo_stage = define_stage(
    id="echo", name="Echo", input=Beat, output=Beat, config=NoConfig, execute=echo
)

beat_workflow: Workflow[Beat, Beat] = (
    WorkflowBuilder("beat", "Beat", "one quick stage, fired by a schedule", input=Beat, output=Beat)
    .pipe(echo_stage)
    .build()
)

beat_app = [beat_workflow]
"""What ``--app tests.hosts.schedule_apps:beat_app`` loads."""


DueSchedules = Callable[[Any, datetime, int, Collection[str] | None], list[ScheduleRecord]]


def read_pause_marker(path: Path) -> dict[str, Any] | None:
    """What a paused process wrote, or ``None`` before it paused."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def install_tick_pause(marker: Path) -> None:
    """Make this process's first tick that finds a schedule due stop inside its transaction."""
    from adapters.postgres.transaction import PostgresTransaction
    from adapters.sqlite.transaction import SqliteTransaction

    paused = threading.Event()

    def pausing(original: DueSchedules) -> DueSchedules:
        def due_schedules(
            tx: Any, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
        ) -> list[ScheduleRecord]:
            due = original(tx, now, limit, workflow_ids)
            if due and not paused.is_set():
                paused.set()
                found = [
                    {"id": r.id, "next_fire_at": r.next_fire_at and r.next_fire_at.isoformat()}
                    for r in due
                ]
                written = marker.with_suffix(".tmp")
                written.write_text(json.dumps({"pid": os.getpid(), "due": found}))
                written.replace(marker)  # the test never reads half a file
                time.sleep(PAUSE_S)
            return due

        return due_schedules

    for transaction in (SqliteTransaction, PostgresTransaction):
        setattr(transaction, "due_schedules", pausing(transaction.due_schedules))  # noqa: B010


if os.environ.get(PAUSE_ENV):
    install_tick_pause(Path(os.environ[PAUSE_ENV]))
