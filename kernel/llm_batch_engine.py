"""The engine code of an LLM batch stage: its ``execute`` (build, record the intent,
submit or adopt, suspend) and its ``check_completion`` (status, results, usage,
resubmission, ``collect``). Both run outside any transaction, like user code; each
state change they make is a command (``batch.intent``, ``usage.record``) in its own
transaction, or the outcome the shell records after them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kernel.ai.batch import BatchItem, BatchResults, BatchState, ItemFailed, ItemSucceeded
from kernel.ai.errors import (
    BatchSubmitUncertainError,
    BudgetExceededError,
    InvalidBatchError,
    ProviderError,
)
from kernel.ai.ports import UNKNOWN, BatchProvider
from kernel.commands import BatchIntent, BatchIntentResult, UsageRecord
from kernel.copying import evolve
from kernel.llm_batch import BatchServices, LLMBatch
from kernel.llm_batch_state import (
    BatchProgress,
    batch_tag,
    generation_results,
    merged,
    next_gap,
    read_progress,
)
from kernel.stages import CompletionCheck, StageContext, Suspend
from kernel.status import LogLevel


class StaleAttemptError(RuntimeError):
    """The stage moved on while this attempt ran (``batch.intent`` was refused): it must
    not submit anything."""


class _Attempt:
    """One execute or check of one LLM batch stage: its spec, context and services."""

    def __init__(
        self, spec: LLMBatch, ctx: StageContext[Any, Any], services: BatchServices | None
    ) -> None:
        if services is None:
            raise RuntimeError(
                f"stage {spec.stage_id!r} is an LLM batch stage: it runs only in a kernel "
                "built with batch_providers=[...]"
            )
        provider = services.provider(spec.provider)
        if provider is None:
            raise RuntimeError(f"this kernel has no batch provider named {spec.provider!r}")
        self.spec = spec
        self.ctx = ctx
        self.services = services
        self._services = services
        self.provider: BatchProvider = provider
        self._items: list[BatchItem] | None = None

    # -- items ---------------------------------------------------------------------

    def items(self) -> list[BatchItem]:
        """``build``'s items, checked (once per attempt)."""
        if self._items is None:
            self._items = self._checked(list(self.spec.build(self.ctx)))
        return self._items

    def _checked(self, items: list[BatchItem]) -> list[BatchItem]:
        spec, provider = self.spec, self.provider
        if not items:
            raise InvalidBatchError("build returned no items")
        seen: set[str] = set()
        for index, item in enumerate(items):
            if not isinstance(item, BatchItem):
                raise InvalidBatchError(f"item {index} is not a BatchItem, got {item!r}")
            if item.custom_id in seen:
                raise InvalidBatchError(f"custom_id {item.custom_id!r} is used more than once")
            seen.add(item.custom_id)
            prefix, _, model = item.request.model.partition(":")
            if prefix != spec.provider or not model:
                raise InvalidBatchError(
                    f"item {item.custom_id!r} asks for model "
                    f"{item.request.model!r}; this stage's models are "
                    f"'{spec.provider}:<model>'"
                )
        if len(items) > provider.max_items:
            raise InvalidBatchError(
                f"{len(items)} items, more than the {provider.max_items} "
                f"one {spec.provider!r} batch may hold"
            )
        prices = self.services.prices()
        for model in sorted({item.request.model for item in items}):
            prices.check(model)
        return items

    def ids_of(self, custom_ids: list[str] | None) -> list[str]:
        """A generation's custom ids (``None``: every item's)."""
        if custom_ids is not None:
            return custom_ids
        return [item.custom_id for item in self.items()]

    def of_generation(self, progress: BatchProgress) -> list[BatchItem]:
        """The items of the progress's current generation."""
        items = self.items()
        if progress.custom_ids is None:
            return items
        wanted = set(progress.custom_ids)
        return [item for item in items if item.custom_id in wanted]

    # -- submitting once -------------------------------------------------------------

    def current_time(self) -> datetime:
        """The kernel clock's time (through the services: the kernel reads no clock)."""
        return self._services.now()

    def tag(self, generation: int) -> str:
        ctx = self.ctx
        return batch_tag(
            ctx.workflow_run_id, ctx.stage_id, self.services.stage_record_id, generation
        )

    def check_budget(self) -> None:
        spent, budget = self.services.spend()
        if budget is not None and spent >= budget:
            raise BudgetExceededError(self.ctx.workflow_run_id, spent, budget)

    def record_intent(self, progress: BatchProgress) -> BatchIntentResult:
        """``batch.intent`` for ``progress``: what is recorded under its tag."""
        ctx = self.ctx
        recorded = self.services.dispatch(
            BatchIntent(
                workflow_run_id=ctx.workflow_run_id,
                stage_id=ctx.stage_id,
                attempt=ctx.attempt,
                provider=progress.provider,
                tag=progress.tag,
                generation=progress.generation,
                state=progress.to_state(),
            )
        )
        if not recorded.recorded:
            raise StaleAttemptError(
                f"stage {ctx.stage_id!r}: batch intent not recorded ({recorded.reason}); "
                "nothing was submitted"
            )
        return recorded

    def submit(self, progress: BatchProgress) -> str:
        """Submit the generation's items under its tag, with bare model names."""
        self.check_budget()
        bare = [
            evolve(item, request=evolve(item.request, model=item.request.model.partition(":")[2]))
            for item in self.of_generation(progress)
        ]
        batch_id = self.provider.submit(bare, progress.tag)
        self.ctx.log(
            LogLevel.INFO,
            f"submitted batch {batch_id} ({len(bare)} items, generation {progress.generation})",
            {"batch_id": batch_id, "tag": progress.tag, "provider": progress.provider},
        )
        return batch_id

    def intend_and_submit(self, progress: BatchProgress) -> str:
        """Record the intent, then submit (or adopt what the intent already holds)."""
        self.items()  # an invalid batch fails before anything is recorded
        self.check_budget()
        recorded = self.record_intent(progress)
        if recorded.batch_id is not None:
            return recorded.batch_id
        if recorded.earlier:
            # Recorded before, by this attempt number on a worker whose lease was
            # reaped: it may have submitted. Ask the provider rather than pay twice.
            return self.adopt_or_submit(progress)
        return self.submit(progress)

    def adopt_or_submit(self, progress: BatchProgress) -> str:
        """An intent without a batch id: an earlier attempt may have submitted. Ask the
        provider for the tag: adopt what it has, submit if it has none, fail if it
        cannot tell."""
        found = self.provider.find(progress.tag)
        if found is UNKNOWN:
            raise BatchSubmitUncertainError(progress.provider, progress.tag)
        if isinstance(found, str):
            self.ctx.log(
                LogLevel.WARN,
                f"adopted batch {found}, submitted under tag {progress.tag} by an attempt "
                "that stopped before recording it",
                {"batch_id": found, "tag": progress.tag},
            )
            return found
        self.items()
        return self.submit(progress)


class BatchExecute:
    """``execute`` of an LLM batch stage: submit the batch exactly once, then suspend."""

    def __init__(self, spec: LLMBatch) -> None:
        self.spec = spec

    def __call__(
        self, ctx: StageContext[Any, Any], services: BatchServices | None = None
    ) -> Suspend:
        attempt = _Attempt(self.spec, ctx, services)
        spec = self.spec
        progress = read_progress(ctx.resume_state)
        if progress is None:
            progress = BatchProgress(provider=spec.provider, tag=attempt.tag(1), generation=1)
            batch_id = attempt.intend_and_submit(progress)
        elif progress.batch_id is None:
            batch_id = attempt.adopt_or_submit(progress)
        else:
            batch_id = progress.batch_id
        now = attempt.current_time()
        if progress.batch_id is None:
            progress = progress.submitted(batch_id, now, spec.poll_interval)
        started = progress.first_submitted_at or now
        left = max(spec.max_wait - (now - started), timedelta(microseconds=1))
        return Suspend(
            state=progress.to_state(),
            poll_interval=spec.poll_interval,
            max_wait=left,
            next_poll_at=(progress.submitted_at or now) + spec.poll_interval,
        )


class BatchCheck:
    """``check_completion`` of an LLM batch stage: one status check, and what follows."""

    def __init__(self, spec: LLMBatch) -> None:
        self.spec = spec

    def __call__(
        self, state: Any, ctx: StageContext[Any, Any], services: BatchServices | None = None
    ) -> CompletionCheck[Any]:
        attempt = _Attempt(self.spec, ctx, services)
        spec = self.spec
        progress = read_progress(state)
        if progress is None:
            return CompletionCheck(ready=False, error=f"stage {spec.stage_id!r} has no batch")
        if progress.batch_id is None:
            # A poll that resubmitted stopped between its intent and recording the id.
            batch_id = attempt.adopt_or_submit(progress)
            progress = progress.submitted(batch_id, attempt.current_time(), spec.poll_interval)
            return CompletionCheck(
                ready=False, next_check_in=spec.poll_interval, state=progress.to_state()
            )
        try:
            status = attempt.provider.status(progress.batch_id)
        except ProviderError as error:
            if not error.retryable:
                raise
            return self._wait(attempt, progress)
        if status.state == "in_progress":
            return self._wait(attempt, progress)
        return self._stopped(attempt, progress, status.state)

    def _stopped(
        self, attempt: _Attempt, progress: BatchProgress, state: BatchState
    ) -> CompletionCheck[Any]:
        """The batch stopped: record what its items used; resubmit the failed ones while
        retries and time remain, else hand every item's result to ``collect``."""
        spec = self.spec
        assert progress.batch_id is not None
        found = attempt.provider.results(progress.batch_id)
        results = generation_results(attempt.ids_of(progress.custom_ids), found, state)
        _record_usage(attempt, progress, results)
        failed = [key for key, result in results.items() if isinstance(result, ItemFailed)]
        now = attempt.current_time()
        in_time = now < (progress.first_submitted_at or now) + spec.max_wait
        if failed and progress.generation <= spec.max_item_retries and in_time:
            retry = progress.next_generation(attempt.tag(progress.generation + 1), failed, state)
            batch_id = attempt.intend_and_submit(retry)
            retry = retry.submitted(batch_id, attempt.current_time(), spec.poll_interval)
            return CompletionCheck(
                ready=False, next_check_in=spec.poll_interval, state=retry.to_state()
            )
        earlier = [
            generation_results(
                attempt.ids_of(g.custom_ids), attempt.provider.results(g.batch_id), g.state
            )
            for g in progress.earlier
        ]
        output = spec.collect(attempt.ctx, BatchResults(items=merged([*earlier, results])))
        return CompletionCheck(ready=True, output=output)

    def _wait(self, attempt: _Attempt, progress: BatchProgress) -> CompletionCheck[Any]:
        interval = self.spec.poll_interval
        previous = timedelta(seconds=progress.gap_seconds or interval.total_seconds())
        gap = next_gap(previous, interval)
        waiting = evolve(progress, gap_seconds=gap.total_seconds())
        return CompletionCheck(ready=False, next_check_in=gap, state=waiting.to_state())


def _record_usage(
    attempt: _Attempt,
    progress: BatchProgress,
    results: dict[str, ItemSucceeded | ItemFailed],
) -> None:
    """``usage.record`` for each succeeded item, at the batch price; the call id is the
    tag and the custom id, so recording a generation twice counts it once."""
    ctx, services = attempt.ctx, attempt.services
    models = {item.custom_id: item.request.model for item in attempt.items()}
    prices = services.prices()
    for custom_id, result in results.items():
        if not isinstance(result, ItemSucceeded):
            continue
        response = result.response
        model = models.get(custom_id, f"{progress.provider}:{response.model}")
        cost, priced = prices.cost(model, response.usage, batch=True)
        services.dispatch(
            UsageRecord(
                call_id=f"{progress.tag}:{custom_id}",
                workflow_run_id=ctx.workflow_run_id,
                stage_id=ctx.stage_id,
                attempt=ctx.attempt,
                model=model,
                kind="batch",
                usage=response.usage,
                cost=cost,
                priced=priced,
                note=response.usage_note,
            )
        )


__all__ = ["BatchCheck", "BatchExecute", "StaleAttemptError"]
