"""``InstrumentedKernel``: a :class:`~kernel.dispatch.Kernel` that opens a span per
command dispatch and a span per stage attempt (:mod:`.stages`).

A ``run.create`` dispatched in a span stores that span's trace context in the
run's metadata (:mod:`.propagation`), so the run's stage spans, wherever a
worker runs them, are its children.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta, tzinfo
from typing import Any, TypeVar, cast

from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from adapters.otel.propagation import trace_keys, with_trace_context
from adapters.otel.stages import RecordingRunner, TracedOutside
from adapters.otel.telemetry import Telemetry
from kernel.ai.config import AIConfig
from kernel.commands import Command, RunCreate, RunCreateResult
from kernel.copying import evolve
from kernel.decisions.context import IDEMPOTENCY_TIMEOUT, utc_only
from kernel.dispatch import Kernel
from kernel.errors import IdempotencyConflictError
from kernel.ports import (
    BatchProvider,
    Clock,
    EventSink,
    IdGenerator,
    StageRunner,
    Store,
    WorkflowRegistry,
)

R = TypeVar("R")

_COMMAND_FIELDS = {
    "workflow_run_id": "wfk.run_id",
    "workflow_id": "wfk.workflow_id",
    "stage_id": "wfk.stage_id",
    "job_id": "wfk.job_id",
    "worker_id": "wfk.worker_id",
}
"""Command fields copied onto the command's span, and their attribute names."""


def command_attributes(cmd: Command[Any]) -> dict[str, AttributeValue]:
    """The span attributes of a command: its type and the ids it names."""
    attributes: dict[str, AttributeValue] = {"wfk.command": cmd.type}
    for field, name in _COMMAND_FIELDS.items():
        value = getattr(cmd, field, None)
        if isinstance(value, str):
            attributes[name] = value
    return attributes


class InstrumentedKernel(Kernel):
    """A kernel that reports to ``telemetry``; otherwise the same as :class:`Kernel`
    (``adapters.create_kernel(..., telemetry=...)`` builds one)."""

    def __init__(
        self,
        *,
        telemetry: Telemetry,
        registry: WorkflowRegistry,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        sink: EventSink,
        runner: StageRunner,
        idempotency_timeout: timedelta = IDEMPOTENCY_TIMEOUT,
        zone_of: Callable[[str], tzinfo | None] = utc_only,
        ai: AIConfig | None = None,
        batch_providers: Sequence[BatchProvider] = (),
    ) -> None:
        if not isinstance(telemetry, Telemetry):
            raise TypeError(f"telemetry: expected a Telemetry, got {telemetry!r}")
        super().__init__(
            registry=registry,
            store=store,
            clock=clock,
            ids=ids,
            sink=sink,
            runner=runner,
            idempotency_timeout=idempotency_timeout,
            zone_of=zone_of,
            ai=ai,
            batch_providers=batch_providers,
        )
        self.telemetry = telemetry
        # The kernel carries out stage code through this object: the one seam
        # where a stage attempt's run, record, job and outcome are all known.
        self._outside = TracedOutside(telemetry, **self._outside_ports(RecordingRunner(runner)))
        telemetry.observe_queue(store)

    def dispatch(self, cmd: Command[R]) -> R:
        """:meth:`Kernel.dispatch` inside a ``wfk <command type>`` span (unless the
        command type is ``untraced``); a failed command's span records the error."""
        kind = getattr(cmd, "type", None)
        if not isinstance(kind, str) or not self.telemetry.traces(kind):
            return super().dispatch(cmd)
        with self.telemetry.tracer.start_as_current_span(
            f"wfk {kind}",
            kind=SpanKind.PRODUCER if isinstance(cmd, RunCreate) else SpanKind.INTERNAL,
            attributes=command_attributes(cmd),
        ) as span:
            if isinstance(cmd, RunCreate):
                return cast("R", self._create(cmd, span))
            return super().dispatch(cmd)

    def _create(self, cmd: RunCreate, span: Span) -> RunCreateResult:
        """``run.create`` with the span's trace context in the run's metadata."""
        traced = evolve(cmd, metadata=with_trace_context(cmd.metadata))
        try:
            result = super().dispatch(traced)
        except IdempotencyConflictError:
            # The key's first create stored another trace context (an idempotency
            # key is checked against the whole payload): replay with that one.
            first = self._as_first_created(cmd)
            if first is None:
                raise
            result = super().dispatch(first)
        span.set_attribute("wfk.run_id", result.workflow_run_id)
        return result

    def _as_first_created(self, cmd: RunCreate) -> RunCreate | None:
        """``cmd`` with the trace keys of the run its idempotency key created, if that
        create completed; ``None`` when there is nothing to replay."""
        if cmd.idempotency_key is None:
            return None
        with self.store.transaction() as tx:
            record = tx.get_idempotency(cmd.idempotency_key, RunCreate.type)
        if record is None or record.state != "COMPLETED" or not isinstance(record.result, dict):
            return None
        run_id = record.result.get("workflow_run_id")
        run = self.store.get_run(run_id) if isinstance(run_id, str) else None
        if run is None:
            return None
        keys = trace_keys(run.metadata)
        if not keys:
            return cmd
        return evolve(cmd, metadata={**(cmd.metadata or {}), **keys})
