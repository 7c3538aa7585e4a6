"""Plain-text rendering for the command line: tables, times, durations, JSON.

Everything here returns strings, so output is the same on a terminal, in a
pipe and in tests; only the live progress display (:mod:`adapters.cli.live`)
uses ``rich``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kernel.convert import to_json
from kernel.records import OutboxEvent, WorkflowRun, WorkflowStage


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


def cost(value: float) -> str:
    """``0.00015`` rather than ``1.5e-04``."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def runs_table(runs: Sequence[WorkflowRun]) -> str:
    rows = [
        [run.id, run.workflow_id, str(run.status), when(run.created_at), run_duration(run)]
        for run in runs
    ]
    return table(["RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"], rows)


def stages_table(stages: Sequence[WorkflowStage], indent: str = "") -> str:
    rows = [
        [
            str(stage.stage_number),
            stage.stage_id,
            str(stage.status),
            str(stage.attempt),
            duration(stage.duration_ms),
            stage.error or "",
        ]
        for stage in stages
    ]
    return table(["#", "STAGE", "STATUS", "ATTEMPT", "DURATION", "ERROR"], rows, indent)


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


def run_header(run: WorkflowRun) -> str:
    lines = [
        f"run       {run.id}",
        f"workflow  {run.workflow_id} ({run.workflow_name})",
        f"status    {run.status}",
        f"created   {when(run.created_at)}    duration {run_duration(run)}",
    ]
    if run.total_cost or run.total_tokens:
        lines.append(f"usage     cost {cost(run.total_cost)}    tokens {run.total_tokens}")
    if run.error:
        lines.append(f"error     {run.error}")
    if run.output is not None:
        lines.append(f"output    {compact_json(run.output, limit=None)}")
    return "\n".join(lines)


def run_summary(run: WorkflowRun, stages: Sequence[WorkflowStage]) -> str:
    """A finished run in a few lines: status, each stage, output or error."""
    lines = [f"run {run.id}  {run.status} in {run_duration(run)}"]
    for stage in stages:
        line = (
            f"  {stage.stage_number}. {stage.stage_id:<12} {stage.status!s:<10} "
            f"{duration(stage.duration_ms)}"
        )
        if stage.error:
            line += f"  {stage.error}"
        lines.append(line.rstrip())
    if run.error:
        lines.append(f"  error: {run.error}")
    if run.output is not None:
        lines.append(f"  output: {compact_json(run.output, limit=None)}")
    return "\n".join(lines)
