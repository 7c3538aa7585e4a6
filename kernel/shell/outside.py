"""Carrying out work outside any transaction: user code through the stage runner,
events through the sink (the :class:`~kernel.effects.OutsideWorld` of a kernel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.ai.client import AI, Offload, stage_failure
from kernel.ai.config import AIConfig
from kernel.ai.prices import PriceTable
from kernel.commands import Dispatch
from kernel.convert import to_json
from kernel.decisions.job_execute.outcome import (
    interpret_check,
    interpret_return,
    timed_out,
    typed_input_and_config,
)
from kernel.effects import CancelBatches, CheckCompletion, Deliver, ExecuteStage
from kernel.events import event_from_payload
from kernel.limits import LIMIT_ERROR
from kernel.outcomes import AwaitSignal, CheckOutcome, Deliveries, Failed, StageRun
from kernel.ports import (
    BatchProvider,
    Clock,
    EventSink,
    IdGenerator,
    Raised,
    Returned,
    StageRunner,
    Store,
    TimedOut,
    WorkflowRegistry,
)
from kernel.records import Json, WorkflowRun, WorkflowStage
from kernel.retry import DEFAULT_RETRY
from kernel.shell.ai_services import StoreAIServices
from kernel.shell.batch_services import StoreBatchServices
from kernel.shell.stage_services import ProgressWriter, StoreStageServices
from kernel.stages import Stage, StageContext
from kernel.workflows import Workflow


class Outside:
    """Runs stage code and publishes events for one kernel; holds no connection.

    ``dispatch`` is the kernel's: work done here that changes state (progress,
    ``ctx.ai``'s ledger writes) does so through commands, each in its own
    transaction. ``ai`` configures ``ctx.ai``; ``offload`` (the stage runner's)
    keeps its async forms off the event loop.
    """

    def __init__(
        self,
        *,
        registry: WorkflowRegistry,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        sink: EventSink,
        runner: StageRunner,
        dispatch: Dispatch,
        ai: AIConfig | None = None,
        batch_providers: Mapping[str, BatchProvider] | None = None,
        offload: Offload | None = None,
    ) -> None:
        self._registry = registry
        self._store = store
        self._clock = clock
        self._ids = ids
        self._sink = sink
        self._runner = runner
        self._dispatch = dispatch
        self._ai = ai
        self._batch_providers: Mapping[str, BatchProvider] = batch_providers or {}
        self._offload = offload

    def _workflow(self, run: WorkflowRun) -> Workflow[Any, Any] | None:
        """The run's own workflow version (SPEC §16)."""
        return self._registry.get_workflow(run.workflow_id, run.workflow_version)

    def _stage(self, run: WorkflowRun, stage_id: str) -> Stage[Any, Any, Any] | None:
        workflow = self._workflow(run)
        return workflow.stage(stage_id) if workflow is not None else None

    def _context(
        self,
        record: WorkflowStage,
        run: WorkflowRun,
        typed_input: Any,
        config: Any,
        progress: ProgressWriter | None,
    ) -> StageContext[Any, Any]:
        workflow = self._workflow(run)
        services = StoreStageServices(
            self._store, self._clock, self._ids, record.workflow_run_id, record.id, progress
        )
        return StageContext(
            ai=self._stage_ai(record),
            workflow_run_id=record.workflow_run_id,
            stage_id=record.stage_id,
            stage_name=record.stage_name,
            stage_number=record.stage_number,
            attempt=record.attempt,
            input=typed_input,
            config=config,
            # A copy: user code changing it in place must not reach a stored record
            # (the in-memory store hands out the records it keeps).
            resume_state=to_json(record.suspended_state),
            services=services,
            stage_types=workflow.output_types if workflow is not None else {},
        )

    def _stage_ai(self, record: WorkflowStage) -> AI:
        """``ctx.ai`` for one attempt: calls are recorded against its run, stage and attempt."""
        services = None
        if self._ai is not None:
            services = StoreAIServices(
                self._store, self._ids, self._dispatch, self._offload, record.workflow_run_id
            )
        return AI(
            self._ai,
            services,
            workflow_run_id=record.workflow_run_id,
            stage_id=record.stage_id,
            attempt=record.attempt,
        )

    def _typed(
        self,
        stage: Stage[Any, Any, Any],
        work: ExecuteStage | CheckCompletion,
        input_json: Json,
        progress: ProgressWriter | None = None,
    ) -> StageContext[Any, Any] | Failed:
        typed = typed_input_and_config(stage, input_json, work.config)
        if isinstance(typed, Failed):
            return typed
        typed_input, config = typed
        return self._context(work.stage, work.run, typed_input, config, progress)

    def _failed(self, run: WorkflowRun, stage: Stage[Any, Any, Any], raised: Raised) -> Failed:
        """What the stage's code raised, as a failure: not retried if its retry policy
        names the exception's class in ``non_retryable``. An AI error leads with its
        code and is retried only if it says so (``ProviderError(retryable=True)``)."""
        workflow = self._workflow(run)
        policy = workflow.retry_for(stage.id) if workflow is not None else DEFAULT_RETRY
        error, retryable = raised.error, not policy.gives_up_on(raised.exception)
        match stage_failure(raised.exception):
            case (coded, may_retry):
                error, retryable = coded, retryable and may_retry
        return Failed(error, retryable=retryable, traceback=raised.traceback)

    def execute_stage(self, work: ExecuteStage) -> StageRun:
        """Run the stage's ``execute``; no transaction is open and no connection is held."""
        stage = self._stage(work.run, work.stage.stage_id)
        if stage is None:
            return StageRun(Failed(f"stage {work.stage.stage_id!r} is not registered here"))
        if stage.signal is not None:
            # No code to run: the finish takes a buffered signal or parks the stage.
            return StageRun(AwaitSignal(stage.signal, stage.signal_timeout))
        if work.job is not None and LIMIT_ERROR in work.job.payload:
            # Its limit's key could not be resolved at enqueue: fail for good, run nothing.
            return StageRun(Failed(str(work.job.payload[LIMIT_ERROR]), retryable=False))
        record = work.stage
        progress = ProgressWriter(
            self._dispatch,
            self._clock,
            record.workflow_run_id,
            record.stage_id,
            record.attempt,
        )
        ctx = self._typed(stage, work, work.input, progress)
        if isinstance(ctx, Failed):
            return StageRun(ctx)
        engine = self._batch_services(stage, record)
        match self._runner.run(stage.execute, ctx, *engine, timeout=stage.timeout):
            case Returned(value):
                return StageRun(interpret_return(stage, value), progress.unwritten())
            case Raised() as raised:
                failed = self._failed(work.run, stage, raised)
                return StageRun(failed, progress.unwritten())
            case TimedOut(after):
                return StageRun(timed_out(stage, record.attempt, after), progress.unwritten())
        raise AssertionError("unreachable")  # pragma: no cover

    def check_completion(self, work: CheckCompletion) -> CheckOutcome:
        """Run an async-batch stage's ``check_completion`` with ``execute``'s typed context."""
        stage = self._stage(work.run, work.stage.stage_id)
        if stage is None or stage.check_completion is None:
            return Failed(f"stage {work.stage.stage_id!r} cannot be polled here")
        ctx = self._typed(stage, work, work.input)
        if isinstance(ctx, Failed):
            return ctx
        engine = self._batch_services(stage, work.stage)
        match self._runner.run(
            stage.check_completion, ctx.resume_state, ctx, *engine, timeout=stage.timeout
        ):
            case Returned(value):
                return interpret_check(stage, value)
            case Raised() as raised:
                return self._failed(work.run, stage, raised)
            case TimedOut(after):
                return timed_out(stage, work.stage.attempt, after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _batch_services(
        self, stage: Stage[Any, Any, Any], record: WorkflowStage
    ) -> tuple[StoreBatchServices, ...]:
        """The extra argument of an LLM batch stage's engine code: the kernel's batch
        providers, prices, spend and dispatch (none for any other stage)."""
        if stage.batch_provider is None:
            return ()
        services = StoreBatchServices(
            store=self._store,
            clock=self._clock,
            dispatch=self._dispatch,
            providers=self._batch_providers,
            prices=self._ai.prices if self._ai is not None else PriceTable(),
            workflow_run_id=record.workflow_run_id,
            stage_record_id=record.id,
        )
        return (services,)

    def cancel_batches(self, work: CancelBatches) -> Mapping[str, str | None]:
        """Ask each batch's provider to cancel it; an error is kept, not raised."""
        outcomes: dict[str, str | None] = {}
        for cancel in work.cancels:
            provider = self._batch_providers.get(cancel.provider)
            if provider is None:
                outcomes[cancel.batch_id] = f"no batch provider named {cancel.provider!r} here"
                continue
            try:
                provider.cancel(cancel.batch_id)
                outcomes[cancel.batch_id] = None
            except Exception as exc:  # any provider failure leaves the cancel pending
                outcomes[cancel.batch_id] = f"{type(exc).__name__}: {exc}"
        return outcomes

    def deliver(self, work: Deliver) -> Deliveries:
        """Emit each event in order; after a failure, skip that run's later events."""
        outcomes: dict[str, str | None] = {}
        failed_runs: set[str] = set()
        for event in work.events:
            if event.workflow_run_id in failed_runs:
                continue
            try:
                self._sink.emit(event_from_payload(event.payload))
                outcomes[event.id] = None
            except Exception as exc:  # any sink failure is a failed delivery
                outcomes[event.id] = f"{type(exc).__name__}: {exc}"
                failed_runs.add(event.workflow_run_id)
        return outcomes
