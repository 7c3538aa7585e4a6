"""Stage attempt spans and stage metrics: the kernel's outside world, observed.

:class:`TracedOutside` runs a stage's code as the kernel's own
:class:`~kernel.shell.outside.Outside` does, inside a span that is a child of
the trace stored on the run (:mod:`.propagation`), so a worker in another
process continues the trace of the request that created the run. The span is
current while the code runs: spans the stage's code opens nest under it
(async stages and sync stages with a timeout too: the runner carries the
caller's context to where they run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from opentelemetry.trace import Link, Span, SpanKind, StatusCode, get_current_span
from opentelemetry.util.types import AttributeValue

from adapters.otel.propagation import run_context
from adapters.otel.telemetry import Telemetry
from kernel.effects import CheckCompletion, ExecuteStage
from kernel.outcomes import (
    AwaitSignal,
    CheckOutcome,
    Completed,
    Failed,
    NotReady,
    StageOutcome,
    StageRun,
    Suspended,
)
from kernel.ports import Raised, RunnerOutcome, StageRunner
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.shell.outside import Outside


class RecordingRunner:
    """A stage runner that records what the stage's code raised on the current span
    (the stage attempt's), with the user's part of the traceback."""

    def __init__(self, inner: StageRunner) -> None:
        self.inner = inner

    def run(
        self, fn: Callable[..., Any], *args: Any, timeout: timedelta | None = None
    ) -> RunnerOutcome:
        outcome = self.inner.run(fn, *args, timeout=timeout)
        if isinstance(outcome, Raised) and outcome.exception is not None:
            extra = {"exception.stacktrace": outcome.traceback} if outcome.traceback else {}
            get_current_span().record_exception(outcome.exception, attributes=extra)
        return outcome


def will_retry(failed: Failed, job: Job | None) -> bool:
    """Whether the kernel retries the stage after ``failed``: the rule of
    ``kernel.decisions.lifecycle.fail_stage`` (``job`` is the job as started)."""
    return failed.retryable and job is not None and job.attempt < job.max_attempts


def outcome_name(outcome: StageOutcome | CheckOutcome, job: Job | None) -> str:
    """``wfk.outcome`` of an attempt: completed, suspended, waiting (for a signal),
    not_ready (a poll), retry (failed, to be retried) or failed."""
    match outcome:
        case Completed():
            return "completed"
        case Suspended():
            return "suspended"
        case AwaitSignal():
            return "waiting"
        case NotReady():
            return "not_ready"
        case Failed():
            return "retry" if will_retry(outcome, job) else "failed"
    raise AssertionError(f"unknown outcome {outcome!r}")  # pragma: no cover


def _metric_attributes(run: WorkflowRun, stage: WorkflowStage) -> dict[str, AttributeValue]:
    return {"wfk.workflow_id": run.workflow_id, "wfk.stage_id": stage.stage_id}


class TracedOutside(Outside):
    """The kernel's outside world, with a span and metrics per stage attempt and poll."""

    def __init__(self, telemetry: Telemetry, **ports: Any) -> None:
        super().__init__(**ports)
        self._telemetry = telemetry

    def execute_stage(self, work: ExecuteStage) -> StageRun:
        with self._attempt(work.run, work.stage, work.job, "execute") as finish:
            ran = super().execute_stage(work)
            finish(ran.outcome)
            return ran

    def check_completion(self, work: CheckCompletion) -> CheckOutcome:
        with self._attempt(work.run, work.stage, None, "check_completion") as finish:
            checked = super().check_completion(work)
            finish(checked)
            return checked

    @contextmanager
    def _attempt(
        self, run: WorkflowRun, stage: WorkflowStage, job: Job | None, call: str
    ) -> Iterator[Callable[[StageOutcome | CheckOutcome], None]]:
        """A current span for one call of a stage's code; the caller reports the outcome."""
        parent = run_context(run.metadata)
        current = get_current_span().get_span_context()
        # Started by something else (a direct ``job.execute``, a poll tick): linked.
        links = [Link(current)] if parent is not None and current.is_valid else []
        attributes: dict[str, AttributeValue] = {
            "wfk.run_id": run.id,
            "wfk.workflow_id": run.workflow_id,
            "wfk.stage_id": stage.stage_id,
            "wfk.attempt": stage.attempt,
            "wfk.call": call,
        }
        if job is not None:
            attributes["wfk.job_id"] = job.id
        with self._telemetry.tracer.start_as_current_span(
            f"wfk stage {stage.stage_id}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        ) as span:
            began = time.perf_counter()

            def finish(outcome: StageOutcome | CheckOutcome) -> None:
                name = outcome_name(outcome, job)
                self._record(span, _metric_attributes(run, stage), name, outcome)
                self._telemetry.stage_duration.record(
                    time.perf_counter() - began,
                    {**_metric_attributes(run, stage), "wfk.outcome": name},
                )

            yield finish

    def _record(
        self,
        span: Span,
        attributes: dict[str, AttributeValue],
        name: str,
        outcome: StageOutcome | CheckOutcome,
    ) -> None:
        """The outcome on the span (and tokens and cost when known); the counters."""
        span.set_attribute("wfk.outcome", name)
        if isinstance(outcome, Completed):
            tokens, cost = outcome.metrics.get("total_tokens"), outcome.metrics.get("total_cost")
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                span.set_attribute("wfk.tokens", tokens)
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                span.set_attribute("wfk.cost", float(cost))
            self._telemetry.stages_completed.add(1, attributes)
        elif isinstance(outcome, Failed):
            span.set_status(StatusCode.ERROR, outcome.error)
            self._telemetry.stages_failed.add(1, {**attributes, "wfk.outcome": name})
