"""Driving runs to the end in-process, with a live per-stage progress display.

``wfk run create --wait``, ``wfk run rerun --wait`` and ``wfk demo`` start a
:class:`~adapters.hosts.WorkerHost` in the background and watch the store
until their runs end. On a terminal with ``rich`` installed the display is a
live table; otherwise (a pipe, a test, no ``rich``) it prints one line per
status change.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol, TextIO

from attrs import frozen

from adapters.cli.errors import CliError
from adapters.cli.render import duration
from adapters.hosts import WorkerHost
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import WorkflowRun, WorkflowStage
from kernel.status import Status
from kernel.workflows import Workflow

WATCH_INTERVAL_S = 0.1

GLYPHS = {
    Status.PENDING: "·",
    Status.RUNNING: "▶",
    Status.SUSPENDED: "⏸",
    Status.COMPLETED: "✓",
    Status.FAILED: "✗",
    Status.CANCELLED: "⊘",
    Status.SKIPPED: "-",
}


def default_worker_id(prefix: str = "wfk") -> str:
    """``prefix-host-pid``: unique enough among the workers of one database."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}"


def short(run_id: str) -> str:
    return run_id[:8]


@frozen
class RunView:
    """A run and its stage records, read together."""

    run: WorkflowRun
    stages: tuple[WorkflowStage, ...]


class Display(Protocol):
    def show(self, views: Sequence[RunView]) -> None: ...

    def close(self) -> None: ...


class LineDisplay:
    """Prints a line whenever a run's or a stage's status changes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen: dict[tuple[str, str], tuple[Status, int]] = {}

    def show(self, views: Sequence[RunView]) -> None:
        for view in views:
            # A run's new status comes before its stages' while it goes on, after them at the end.
            run_line = self._run_line(view.run)
            if run_line and not view.run.is_terminal:
                print(run_line, file=self.out)
            for stage in view.stages:
                now = (stage.status, stage.attempt)
                if self.seen.get((view.run.id, stage.stage_id)) == now:
                    continue
                self.seen[(view.run.id, stage.stage_id)] = now
                line = f"{short(view.run.id)}  {stage.stage_id:<12} {stage.status}"
                if stage.attempt > 1:
                    line += f" (attempt {stage.attempt})"
                if stage.completed_at is not None:
                    line += f"  {duration(stage.duration_ms)}"
                print(line, file=self.out)
            if run_line and view.run.is_terminal:
                print(run_line, file=self.out)
            self.out.flush()

    def _run_line(self, run: WorkflowRun) -> str | None:
        now = (run.status, 0)
        if self.seen.get((run.id, "")) == now:
            return None
        self.seen[(run.id, "")] = now
        return f"{short(run.id)}  run          {run.status}"

    def close(self) -> None:
        self.out.flush()


class RichDisplay:
    """A live table: one row per run, one cell per stage of its workflow."""

    def __init__(self, out: TextIO, workflows: Mapping[str, Workflow[Any, Any]]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.workflows = workflows
        self.live = Live(console=Console(file=out), refresh_per_second=10)
        self.live.start()

    def show(self, views: Sequence[RunView]) -> None:
        from rich.table import Table

        grid = Table(box=None, header_style="bold")
        grid.add_column("run")
        grid.add_column("status")
        grid.add_column("stages")
        for view in views:
            workflow = self.workflows.get(view.run.workflow_id)
            records = {stage.stage_id: stage for stage in view.stages}
            order = [s.id for s in workflow.stages] if workflow else list(records)
            cells = []
            for stage_id in order:
                record = records.get(stage_id)
                if record is None:
                    cells.append(f"[dim]· {stage_id}[/dim]")
                    continue
                glyph = GLYPHS.get(record.status, "?")
                style = {"COMPLETED": "green", "FAILED": "red", "RUNNING": "yellow"}.get(
                    record.status, "white"
                )
                cells.append(f"[{style}]{glyph} {stage_id}[/{style}]")
            grid.add_row(short(view.run.id), str(view.run.status), "  ".join(cells))
        self.live.update(grid)

    def close(self) -> None:
        self.live.stop()


def make_display(out: TextIO, workflows: Mapping[str, Workflow[Any, Any]]) -> Display:
    """The rich live table on a terminal, if ``rich`` is installed; else status lines."""
    if out.isatty():
        try:
            return RichDisplay(out, workflows)
        except ImportError:
            pass
    return LineDisplay(out)


def read(store: Store, run_ids: Sequence[str]) -> list[RunView]:
    views = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is None:
            raise CliError(f"workflow run {run_id!r} does not exist")
        views.append(RunView(run, tuple(store.get_stages(run_id))))
    return views


def drive(
    kernel: Kernel,
    store: Store,
    run_ids: Sequence[str],
    *,
    out: TextIO,
    workflows: Sequence[Workflow[Any, Any]],
    timeout: float | None = None,
) -> list[RunView]:
    """Run a worker in the background until every run in ``run_ids`` has ended.

    The worker takes any queued job, not only these runs' (it is a worker).

    Raises:
        CliError: ``timeout`` seconds passed first.
    """
    host = WorkerHost(
        kernel,
        store,
        worker_id=default_worker_id(),
        orchestration_interval=timedelta(milliseconds=100),
        job_poll_interval=timedelta(milliseconds=50),
        drain_timeout=timedelta(seconds=10),
    )
    display = make_display(out, {workflow.id: workflow for workflow in workflows})
    deadline = None if timeout is None else time.monotonic() + timeout
    host.start()
    try:
        while True:
            views = read(store, run_ids)
            display.show(views)
            if all(view.run.is_terminal for view in views):
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(f"timed out after {timeout:g} s; the runs go on with any worker")
            time.sleep(WATCH_INTERVAL_S)
    finally:
        host.stop()
        display.close()
    return read(store, run_ids)
