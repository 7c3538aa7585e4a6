"""Workflows the host tests run, importable by worker subprocesses (``--app tests.hosts.apps:...``).

``slow_app``: ``prepare → slow → finish``. The ``slow`` stage marks each
start with a file in ``input.marker_dir`` (named after the process and the
attempt), so a test can see it began, kill the worker mid-stage, and count
how often it ran; then it sleeps ``input.seconds``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs

from kernel import StageContext, Workflow, WorkflowBuilder, define_stage


@attrs.frozen
class SlowInput:
    marker_dir: str
    seconds: float


@attrs.frozen
class Done:
    marker_dir: str
    seconds: float
    ran_in: int


@attrs.frozen
class NoConfig:
    pass


def start_markers(marker_dir: str | Path, stage_id: str = "slow") -> list[Path]:
    """The files the stage wrote when it started, oldest first."""
    return sorted(Path(marker_dir).glob(f"{stage_id}-*.started"), key=lambda p: p.stat().st_mtime)


def finish_markers(marker_dir: str | Path, stage_id: str = "slow") -> list[Path]:
    return sorted(Path(marker_dir).glob(f"{stage_id}-*.finished"))


def _mark(ctx: StageContext[SlowInput, NoConfig], what: str) -> None:
    name = f"{ctx.stage_id}-{os.getpid()}-{ctx.attempt}-{time.monotonic_ns()}.{what}"
    (Path(ctx.input.marker_dir) / name).touch()


def prepare(ctx: StageContext[SlowInput, NoConfig]) -> SlowInput:
    return ctx.input


def slow(ctx: StageContext[SlowInput, NoConfig]) -> SlowInput:
    _mark(ctx, "started")
    time.sleep(ctx.input.seconds)
    _mark(ctx, "finished")
    return ctx.input


def finish(ctx: StageContext[SlowInput, NoConfig]) -> Done:
    return Done(marker_dir=ctx.input.marker_dir, seconds=ctx.input.seconds, ran_in=os.getpid())


prepare_stage = define_stage(
    id="prepare",
    name="Prepare",
    input=SlowInput,
    output=SlowInput,
    config=NoConfig,
    execute=prepare,
)
slow_stage = define_stage(
    id="slow", name="Slow", input=SlowInput, output=SlowInput, config=NoConfig, execute=slow
)
finish_stage = define_stage(
    id="finish", name="Finish", input=SlowInput, output=Done, config=NoConfig, execute=finish
)

slow_workflow: Workflow[SlowInput, Done] = (
    WorkflowBuilder("slow", "Slow", "a stage that takes its time", input=SlowInput, output=Done)
    .pipe(prepare_stage)
    .pipe(slow_stage)
    .pipe(finish_stage)
    .build()
)

slow_app = [slow_workflow]
"""What ``--app tests.hosts.apps:slow_app`` loads: a list of workflows."""
