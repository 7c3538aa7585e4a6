"""Driving runs to the end in-process, with a live per-stage progress display.

``wfk run create --wait``, ``wfk run rerun --wait`` and ``wfk demo`` start a
:class:`~adapters.hosts.WorkerHost` in the background and watch the store
until their runs end. On a terminal with ``rich`` installed the display is a
live table; otherwise (a pipe, a test, no ``rich``) it prints one line per
event of the run's outbox, in the order the changes committed (each run's
lines as one block when several runs are watched).

Ctrl-C drains the worker (running stages finish, no new one starts); a
second Ctrl-C gives the running jobs back to the queue
(:mod:`adapters.cli.interrupts`). Either way the command exits 130 unless
its runs ended meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol, TextIO

from attrs import frozen

from adapters.cli.errors import CliError
from adapters.cli.interrupts import DRAINING, Interrupts, Stopping, abandon
from adapters.cli.show import waits_for_signals
from adapters.cli.timeline import LineWriter, Progress, in_order, latest_progress
from adapters.hosts import WorkerHost
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import OutboxEvent, WorkflowRun, WorkflowStage
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


INTERRUPTED = 130
"""The exit code after Ctrl-C, as for any command killed by SIGINT."""


@frozen
class RunView:
    """A run, its stage records and its outbox events, read together."""

    run: WorkflowRun
    stages: tuple[WorkflowStage, ...]
    events: tuple[OutboxEvent, ...] = ()

    @property
    def waits_for_signals(self) -> list[str]:
        """The signals the run cannot go on without (see :func:`show.waits_for_signals`)."""
        return waits_for_signals(self.run, self.stages)

    @property
    def progress(self) -> dict[str, Progress]:
        """The latest progress report of each running stage, by stage id."""
        return latest_progress(self.events)


class Display(Protocol):
    def show(self, views: Sequence[RunView]) -> None: ...

    def close(self) -> None: ...


class LineDisplay:
    """Prints a line per event of each run's outbox, in sequence (causal) order.

    ``after``: by run id, the last sequence already shown (a rerun starts
    after the events of the runs before it). ``blocks``: hold each run's
    lines until it ends and print them together, so that several runs
    watched at once do not interleave.
    """

    def __init__(
        self, out: TextIO, after: Mapping[str, int] | None = None, blocks: bool = False
    ) -> None:
        self.out = out
        self.blocks = blocks
        self.shown: dict[str, int] = dict(after or {})
        self.writers: dict[str, LineWriter] = {}
        self.held: dict[str, list[str]] = {}

    def show(self, views: Sequence[RunView]) -> None:
        for view in views:
            run_id = view.run.id
            writer = self.writers.setdefault(run_id, LineWriter(run_id))
            last = self.shown.get(run_id, 0)
            lines = []
            for event in in_order(view.events):
                if event.sequence > last:
                    last = event.sequence
                    line = writer.line(event)
                    if line is not None:
                        lines.append(line)
            self.shown[run_id] = last
            if not self.blocks:
                self._print(lines)
                continue
            self.held.setdefault(run_id, []).extend(lines)
            if view.run.is_terminal:
                self._print(self.held.pop(run_id))
        self.out.flush()

    def _print(self, lines: Sequence[str]) -> None:
        for line in lines:
            print(line, file=self.out)

    def close(self) -> None:
        for run_id in list(self.held):
            self._print(self.held.pop(run_id))
        self.out.flush()


class RichDisplay:
    """A live table: one row per run, one cell per stage of its workflow."""

    def __init__(
        self, out: TextIO, workflows: Mapping[tuple[str, str], Workflow[Any, Any]]
    ) -> None:
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
            workflow = self.workflows.get((view.run.workflow_id, view.run.workflow_version))
            records = {stage.stage_id: stage for stage in view.stages}
            groups = (
                [[stage.id for stage in group] for group in workflow.groups]
                if workflow
                else [[stage_id] for stage_id in records]
            )
            progress = view.progress
            cells = []
            for group in groups:  # parallel stages share a cell: a ∥ b
                parts = []
                for stage_id in group:
                    record = records.get(stage_id)
                    if record is None:
                        parts.append(f"[dim]· {stage_id}[/dim]")
                        continue
                    glyph = GLYPHS.get(record.status, "?")
                    style = {"COMPLETED": "green", "FAILED": "red", "RUNNING": "yellow"}.get(
                        record.status, "white"
                    )
                    report = progress.get(stage_id) if record.status == Status.RUNNING else None
                    label = f"{stage_id} {report.percent}" if report is not None else stage_id
                    parts.append(f"[{style}]{glyph} {label}[/{style}]")
                cells.append(" ∥ ".join(parts))
            grid.add_row(short(view.run.id), str(view.run.status), "  ".join(cells))
        self.live.update(grid)

    def close(self) -> None:
        self.live.stop()


def make_display(
    out: TextIO,
    workflows: Mapping[tuple[str, str], Workflow[Any, Any]],
    *,
    after: Mapping[str, int] | None = None,
    blocks: bool = False,
) -> Display:
    """The rich live table on a terminal, if ``rich`` is installed; else event lines."""
    if out.isatty():
        try:
            return RichDisplay(out, workflows)
        except ImportError:
            pass
    return LineDisplay(out, after=after, blocks=blocks)


def read(store: Store, run_ids: Sequence[str]) -> list[RunView]:
    views = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is None:
            raise CliError(f"workflow run {run_id!r} does not exist")
        stages = tuple(store.get_stages(run_id))
        views.append(RunView(run, stages, tuple(store.get_outbox(run_id))))
    return views


def last_sequence(store: Store, run_id: str) -> int:
    """The sequence of the run's latest outbox event (0: none)."""
    return max((event.sequence for event in store.get_outbox(run_id)), default=0)


def drive(
    kernel: Kernel,
    store: Store,
    run_ids: Sequence[str],
    *,
    out: TextIO,
    workflows: Sequence[Workflow[Any, Any]],
    timeout: float | None = None,
    after: Mapping[str, int] | None = None,
) -> list[RunView]:
    """Run a worker in the background until every run in ``run_ids`` has ended, or
    waits for a signal (``wfk run signal``) with nothing else left to do.

    The worker takes any queued job, not only these runs' (it is a worker).
    ``after``: by run id, the last outbox sequence not to show again.

    On the main thread, Ctrl-C drains the worker (prints :data:`DRAINING`);
    a second one releases the jobs it still runs.

    Raises:
        CliError: ``timeout`` seconds passed first, or Ctrl-C stopped the
            worker before the runs ended (exit code 130).
    """
    host = WorkerHost(
        kernel,
        store,
        worker_id=default_worker_id(),
        orchestration_interval=timedelta(milliseconds=100),
        job_poll_interval=timedelta(milliseconds=50),
        drain_timeout=timedelta(seconds=10),
    )
    display = make_display(
        out,
        {(workflow.id, workflow.version): workflow for workflow in workflows},
        after=after,
        blocks=len(run_ids) > 1,
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    interrupts = Interrupts()
    stopping = Stopping(host)
    with interrupts.catching(), only_errors_logged():
        host.start()
        try:
            while True:
                drained = stopping.drained  # before reading: the read sees what it left
                views = read(store, run_ids)
                display.show(views)
                if all(view.run.is_terminal or view.waits_for_signals for view in views):
                    break  # a run waiting for the outside world ends nothing here
                if interrupts.count >= 2:
                    released = abandon(kernel, store, host, run_ids)
                    raise CliError(
                        f"abandoned: {released} running job(s) went back to the queue; "
                        f"{_unfinished(views)}",
                        exit_code=INTERRUPTED,
                    )
                if drained:
                    raise CliError(
                        f"interrupted: the running stages finished; {_unfinished(views)}",
                        exit_code=INTERRUPTED,
                    )
                if interrupts.count == 1 and not stopping.draining:
                    print(DRAINING, file=sys.stderr, flush=True)
                    stopping.drain()
                if deadline is not None and time.monotonic() >= deadline:
                    raise CliError(f"timed out after {timeout:g} s; the runs go on with any worker")
                interrupts.wait(WATCH_INTERVAL_S)
        finally:
            stopping.stop(interrupts)
            display.close()
    return read(store, run_ids)


@contextmanager
def only_errors_logged() -> Iterator[None]:
    """While logging is not configured, let only errors of the worker's loggers through.

    Without a handler, a warning (a stage failed, a job was released)
    reaches stderr through logging's last resort, repeating what the display
    shows; errors (a tick or the worker failing) still get through.
    """
    logger = logging.getLogger("workflow_kernel")
    if logging.getLogger().handlers or logger.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("wfk: %(name)s: %(message)s"))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _unfinished(views: Sequence[RunView]) -> str:
    """``run 1be61171 (RUNNING) goes on with any worker (`wfk worker`)``."""
    left = [
        f"{short(view.run.id)} ({view.run.status})" for view in views if not view.run.is_terminal
    ]
    runs = f"run {left[0]} goes" if len(left) == 1 else f"runs {', '.join(left)} go"
    return f"{runs} on with any worker (`wfk worker`)"
