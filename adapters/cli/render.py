"""Plain-text rendering for the command line: tables, times, durations, JSON.

Everything here returns strings, so output is the same on a terminal, in a
pipe and in tests; only the live progress display (:mod:`adapters.cli.live`)
uses ``rich``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from kernel.convert import to_json
from kernel.decisions.totals import as_cost, as_count
from kernel.records import OutboxEvent, WorkflowRun, WorkflowStage
from kernel.status import Status

TRACEBACK_HINT = "(--traceback to see where)"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def when(moment: datetime | None) -> str:
    """``2025-01-01 12:00:00`` (UTC), or ``-``."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 m 05 s``, ``2 h 03 m``, or ``-``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {second:02d} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} m"


def compact_json(value: Any, limit: int | None = 200) -> str:
    """One-line JSON, cut to ``limit`` characters."""
    text = json.dumps(to_json(value), ensure_ascii=False, separators=(", ", ": "))
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def dump(value: Any) -> str:
    """Indented JSON of records and results, for ``--json``."""
    return json.dumps(to_json(value), ensure_ascii=False, indent=2)


def run_duration(run: WorkflowRun) -> str:
    """How long the run took, ``-`` while it has not ended or if it never started."""
    return duration(run.duration_ms) if run.started_at and run.completed_at else "-"


def cost(value: Decimal) -> str:
    """Money, exactly: every digit it has, no exponent, no trailing zeros, ``0`` for nothing.

    The one formatter of money in the command line and the dashboard.

    >>> cost(Decimal("0.00015000")), cost(Decimal("1E-8")), cost(Decimal("12.50"))
    ('0.00015', '0.00000001', '12.5')
    >>> cost(Decimal("0E-8")), cost(Decimal("1E+2")), cost(Decimal("-0.25"))
    ('0', '100', '-0.25')
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def stage_usage(stage: WorkflowStage) -> tuple[Decimal | None, int | None, int | None]:
    """A stage's ``(total_cost, total_tokens, calls)`` from its metrics (``None``: not
    reported). ``total_cost`` is a decimal string there (a number in older records)."""
    metrics = stage.metrics
    return (
        as_cost(metrics.get("total_cost")),
        as_count(metrics.get("total_tokens")),
        as_count(metrics.get("calls")),
    )


def run_usage(run: WorkflowRun) -> str | None:
    """``cost 0.0123 of budget 5    tokens 1234``: what a run spent; ``None`` if nothing
    and it has no budget."""
    if not (run.total_cost or run.total_tokens or run.budget is not None):
        return None
    spent = f"cost {cost(run.total_cost)}"
    if run.budget is not None:
        spent += f" of budget {cost(run.budget)} ({cost(run.budget - run.total_cost)} left)"
    return f"{spent}    tokens {run.total_tokens}"


def runs_table(runs: Sequence[WorkflowRun]) -> str:
    rows = [
        [
            run.id,
            run.workflow_id,
            run.workflow_version,
            str(run.status),
            when(run.created_at),
            run_duration(run),
        ]
        for run in runs
    ]
    return table(["RUN", "WORKFLOW", "VERSION", "STATUS", "CREATED", "DURATION"], rows)


def stages_table(
    stages: Sequence[WorkflowStage],
    indent: str = "",
    progress: Mapping[str, object] | None = None,
    notes: Mapping[str, str] | None = None,
) -> str:
    """One row per stage; a failed stage with a stored traceback hints ``--traceback``.

    ``progress``: by stage id, what to show under a RUNNING stage's row (its
    latest ``ctx.progress`` report, as text). ``notes``: by stage id, a line
    to show under the stage's row whatever its status (what it waits for).
    """
    usage = [stage_usage(stage) for stage in stages]
    # What stages spent, only when some stage reported it: AI calls recorded on
    # the ledger (total_cost, total_tokens, calls) or the stage's own metrics.
    spent = any(value is not None for figures in usage for value in figures)
    headers = ["#", "STAGE", "STATUS", "ATTEMPT", "DURATION"]
    if spent:
        headers += ["COST", "TOKENS", "CALLS"]
    rows = []
    for stage, (spent_cost, tokens, calls) in zip(stages, usage, strict=True):
        row = [
            str(stage.stage_number),
            stage.stage_id,
            str(stage.status),
            str(stage.attempt),
            duration(stage.duration_ms),
        ]
        if spent:
            row += [
                "-" if spent_cost is None else cost(spent_cost),
                "-" if tokens is None else str(tokens),
                "-" if calls is None else str(calls),
            ]
        error = stage.error or ""
        rows.append(
            [*row, error + (f"  {TRACEBACK_HINT}" if error and stage.error_traceback else "")]
        )
    lines = table([*headers, "ERROR"], rows, indent).split("\n")
    if progress or notes:
        # A running stage's progress, or what a stage waits for, goes on a line
        # of its own, under its name.
        under = indent + " " * (max(len(row[0]) for row in rows) + 2)
        shown = [lines[0]]
        for stage, line in zip(stages, lines[1:], strict=True):
            shown.append(line)
            report = (progress or {}).get(stage.stage_id)
            if stage.status == Status.RUNNING and report is not None:
                shown.append(f"{under}{report}".rstrip())
            note = (notes or {}).get(stage.stage_id)
            if note:
                shown.append(f"{under}{note}".rstrip())
        lines = shown
    return "\n".join(lines)


def events_table(events: Sequence[OutboxEvent], indent: str = "") -> str:
    rows = [
        [
            str(event.sequence),
            event.event_type,
            str(event.payload.get("stage_id") or ""),
            when(event.occurred_at),
            "dead-lettered"
            if event.dlq_at is not None
            else ("published" if event.published_at else "pending"),
        ]
        for event in events
    ]
    return table(["SEQ", "EVENT", "STAGE", "AT", "DELIVERY"], rows, indent)


def run_header(run: WorkflowRun, took: str | None = None) -> str:
    """The run's id, workflow, status, times, usage, error and output.

    ``took``: the duration to show instead of :func:`run_duration`'s (after a
    rerun, the time in all and the rerun's).
    """
    lines = [
        f"run       {run.id}",
        f"workflow  {run.workflow_id} ({run.workflow_name})    version {run.workflow_version}",
        f"status    {run.status}",
        f"created   {when(run.created_at)}    duration {took or run_duration(run)}",
    ]
    usage = run_usage(run)
    if usage is not None:
        lines.append(f"usage     {usage}")
    if run.error:
        lines.append(f"error     {run.error}")
    if run.output is not None:
        lines.append(f"output    {compact_json(run.output, limit=None)}")
    return "\n".join(lines)


def run_summary(run: WorkflowRun, stages: Sequence[WorkflowStage], took: str | None = None) -> str:
    """A finished run in a few lines: status, each step, output or error.

    Parallel stages (one execution group) share a line, ``classify ∥ summarize``,
    with the group's wall time, when they ended alike; otherwise each gets a
    line of its own under the group. ``took`` as for :func:`run_header`.
    """
    lines = [f"run {run.id}  {run.status} in {took or run_duration(run)}"]
    groups = stage_groups(stages)
    names = [" ∥ ".join(stage.stage_id for stage in group) for group in groups]
    width = max([12, *(len(name) for name in names)])
    for number, (group, name) in enumerate(zip(groups, names, strict=True), start=1):
        statuses = {stage.status for stage in group}
        if len(statuses) == 1:
            line = f"  {number}. {name:<{width}}  {group[0].status!s:<10} {group_duration(group)}"
            errors = "; ".join(stage.error for stage in group if stage.error)
            lines.append((line + (f"  {errors}" if errors else "")).rstrip())
            continue
        lines.append(f"  {number}. {name}")
        inner = max(len(stage.stage_id) for stage in group)
        for stage in group:
            line = (
                f"       {stage.stage_id:<{inner}}  {stage.status!s:<10} "
                f"{duration(stage.duration_ms)}"
            )
            lines.append((line + (f"  {stage.error}" if stage.error else "")).rstrip())
    if run.error:
        lines.append(f"  error: {run.error}")
    if any(stage.error_traceback for stage in stages):
        lines.append(f"  see where it failed: wfk run show {run.id[:8]} --traceback")
    if run.output is not None:
        lines.append(f"  output: {compact_json(run.output, limit=None)}")
    return "\n".join(lines)


def stage_groups(stages: Sequence[WorkflowStage]) -> list[list[WorkflowStage]]:
    """The stages by execution group (parallel stages together), in stage-number order."""
    groups: dict[int, list[WorkflowStage]] = {}
    for stage in sorted(stages, key=lambda s: (s.execution_group, s.stage_number)):
        groups.setdefault(stage.execution_group, []).append(stage)
    return list(groups.values())


def group_duration(group: Sequence[WorkflowStage]) -> str:
    """A group's wall time: first start to last end (a lone stage: its duration)."""
    if len(group) == 1:
        return duration(group[0].duration_ms)
    starts = [stage.started_at for stage in group]
    ends = [stage.completed_at for stage in group]
    if any(moment is None for moment in (*starts, *ends)):
        return "-"
    first = min(start for start in starts if start is not None)
    last = max(end for end in ends if end is not None)
    return duration(max(int((last - first).total_seconds() * 1000), 0))
