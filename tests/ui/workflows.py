"""Workflows the dashboard tests run: a pipeline with a parallel group, one that fails
with a traceback, one that waits for a signal, and one whose stage the test holds.

``GatedWork`` is a stage that reports progress, then blocks until the test
opens its gate, so a test watches a stage that is really running.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import attrs

from kernel import (
    Retry,
    Stage,
    StageContext,
    Workflow,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from testing import FakeClock


@attrs.frozen
class Doc:
    title: str


@attrs.frozen
class Approval:
    approved: bool


@attrs.frozen
class NoConfig:
    pass


def _copy(ctx: StageContext[Doc, NoConfig]) -> Doc:
    return ctx.input


def _logged(ctx: StageContext[Doc, NoConfig]) -> Doc:
    ctx.log("INFO", f"indexed {ctx.input.title}", {"pages": 3})
    return ctx.input


def _copy_earlier(ctx: StageContext[None, NoConfig]) -> Doc:
    return Doc(title=ctx.require("fetch").title)


fetch = define_stage(
    id="fetch", name="Fetch", input=Doc, output=Doc, config=NoConfig, execute=_copy
)
parse = define_stage(
    id="parse",
    name="Parse",
    input=Doc,
    output=Doc,
    config=NoConfig,
    execute=_copy,
    dependencies=["fetch"],
)
index = define_stage(
    id="index",
    name="Index",
    input=Doc,
    output=Doc,
    config=NoConfig,
    execute=_logged,
    dependencies=["fetch"],
)
publish = define_stage(
    id="publish",
    name="Publish",
    input=None,
    output=Doc,
    config=NoConfig,
    execute=_copy_earlier,
    dependencies=["parse", "index"],
)

pipeline: Workflow[Doc, Doc] = (
    WorkflowBuilder("pipeline", "Pipeline", input=Doc, output=Doc)
    .pipe(fetch)
    .parallel([parse, index])
    .pipe(publish)
    .build()
)
"""``fetch → (parse ∥ index) → publish``: four stages in three groups."""


def _explode(ctx: StageContext[Doc, NoConfig]) -> Doc:
    raise RuntimeError(f"cannot read {ctx.input.title}")


exploding: Workflow[Doc, Doc] = (
    WorkflowBuilder("exploding", "Exploding", input=Doc, output=Doc)
    .pipe(
        define_stage(
            id="explode",
            name="Explode",
            input=Doc,
            output=Doc,
            config=NoConfig,
            execute=_explode,
            retry=Retry(max_attempts=1),
        )
    )
    .build()
)
"""One stage that raises ``RuntimeError("cannot read TITLE")``: the run fails at once."""


def _approved(ctx: StageContext[Approval, NoConfig]) -> Approval:
    return ctx.input


approval: Workflow[Doc, Approval] = (
    WorkflowBuilder("approval", "Approval", input=Doc, output=Approval)
    .pipe(fetch)
    .pipe(
        define_signal_stage(
            id="approve",
            name="Approve",
            signal="approve",
            output=Approval,
            timeout=timedelta(hours=1),
        )
    )
    .pipe(
        define_stage(
            id="record",
            name="Record",
            input=Approval,
            output=Approval,
            config=NoConfig,
            execute=_approved,
        )
    )
    .build()
)
"""``fetch → approve (waits for the signal approve, at most an hour) → record``."""


class GatedWork:
    """A stage the test drives: it reports 30 %, waits for :attr:`gate`, reports 70 %,
    waits for :attr:`finish`, then returns.

    Progress writes are throttled to one per half second (of the kernel's
    clock) per stage, so the stage leaves that much time between its two
    reports: it moves a ``FakeClock`` on, or sleeps on a real one.
    """

    THROTTLE_S = 0.55

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.started = threading.Event()
        self.gate = threading.Event()
        self.finish = threading.Event()

    def release(self) -> None:
        """Let the stage run to its end (the teardown of every test that uses it)."""
        self.gate.set()
        self.finish.set()

    def execute(self, ctx: StageContext[Doc, NoConfig]) -> Doc:
        reported = time.monotonic()
        ctx.progress(0.3, "reading pages")
        self.started.set()
        self.gate.wait(30)
        if self.clock is not None:
            self.clock.advance(timedelta(seconds=self.THROTTLE_S))
        else:
            time.sleep(max(0.0, reported + self.THROTTLE_S - time.monotonic()))
        ctx.progress(0.7, "writing the index")
        self.finish.wait(30)
        return ctx.input

    def stage(self, stage_id: str = "work", name: str = "Work") -> Stage[Doc, Doc, NoConfig]:
        """This stage, as ``stage_id``."""
        return define_stage(
            id=stage_id, name=name, input=Doc, output=Doc, config=NoConfig, execute=self.execute
        )

    def workflow(self) -> Workflow[Doc, Doc]:
        """``fetch → work`` (this stage)."""
        return (
            WorkflowBuilder("gated", "Gated", input=Doc, output=Doc)
            .pipe(fetch)
            .pipe(self.stage())
            .build()
        )
