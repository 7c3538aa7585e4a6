"""``ctx.ai``: model calls from stage code, priced, budgeted and written to the ledger.

Every call follows the same steps (SPEC §11, §12.1):

1. the arguments are checked (``model`` is ``provider:model`` of a known provider);
2. the model must have a price (``UnpricedModelError``, nothing sent);
3. the run's recorded spend must be below its budget (``BudgetExceededError``,
   nothing sent);
4. the call id is made, *then* the request is sent with the bare model name;
5. the reply is priced and written at once by ``usage.record`` under that id,
   so a call paid for by an attempt that later fails stays in the ledger, and
   recording it again is a no-op.

The ``a``-forms run the same steps away from the event loop (the stage
runner's ``offload``), so an async stage waiting on a model does not hold
up the other async stages sharing the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from returns.result import Failure, Success

from kernel.ai.config import AIConfig
from kernel.ai.errors import (
    AINotConfiguredError,
    AIOutputError,
    BatchSubmitUncertainError,
    BudgetExceededError,
    InvalidAICallError,
    InvalidBatchError,
    ProviderError,
    UnpricedModelError,
)
from kernel.ai.ports import AIProvider
from kernel.ai.replies import (
    check_output,
    check_texts,
    conversation,
    parse_object,
    repair_prompt,
    split_model,
)
from kernel.ai.schema import json_schema
from kernel.ai.types import (
    NO_USAGE,
    AIRequest,
    EmbedRequest,
    EmbedResult,
    Message,
    ObjectResult,
    TextResult,
    Usage,
    UsageKind,
)
from kernel.commands import UsageRecord

T = TypeVar("T")

Offload = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs a blocking function away from the event loop and awaits its result
(``asyncio.to_thread`` in the adapters; the kernel imports no ``asyncio``)."""


class AIServices(Protocol):
    """What ``ctx.ai`` needs from the world; the kernel shell provides it per attempt."""

    def new_call_id(self) -> str:
        """A fresh id for the next call (made before the request is sent)."""
        ...

    def spend(self) -> tuple[Decimal, Decimal | None]:
        """The run's recorded spend and its budget (``None``: no budget)."""
        ...

    def record(self, call: UsageRecord) -> None:
        """Write one completed call to the ledger (``usage.record``)."""
        ...

    def offload(self, fn: Callable[[], T]) -> Awaitable[T]:
        """Await ``fn()`` run away from the event loop."""
        ...


class AI:
    """The model calls of one stage attempt (``ctx.ai``).

    Reading ``ctx.ai`` never fails; on a kernel built without
    ``ai=AIConfig(...)`` each method raises :class:`AINotConfiguredError`.
    """

    def __init__(
        self,
        config: AIConfig | None,
        services: AIServices | None,
        *,
        workflow_run_id: str,
        stage_id: str,
        attempt: int,
    ) -> None:
        self._config = config
        self._services = services
        self._run_id = workflow_run_id
        self._stage_id = stage_id
        self._attempt = attempt

    @property
    def is_configured(self) -> bool:
        """Whether this kernel was built with an ``AIConfig`` (calls can be made)."""
        return self._config is not None and self._services is not None

    # -- sync ------------------------------------------------------------------------

    def generate_text(
        self,
        model: str,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TextResult:
        """Ask ``model`` (``provider:model``) for a text reply to ``prompt`` or ``messages``.

        Raises:
            AINotConfiguredError: the kernel has no ``AIConfig``.
            ValueError, TypeError: a bad argument (named in the message).
            UnpricedModelError: ``model`` has no price; nothing was sent.
            BudgetExceededError: the run has spent its budget; nothing was sent.
            ProviderError: the provider failed the call.
        """
        config, services = self._ready()
        provider, bare = split_model(model, config.by_name)
        request = AIRequest(
            bare,
            conversation(prompt, messages),
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        text, usage, cost = self._generate(config, services, provider, model, "text", request)
        return TextResult(text, usage, cost)

    def generate_object(
        self,
        model: str,
        prompt: str,
        *,
        output: type[T],
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ObjectResult[T]:
        """Ask ``model`` for JSON matching the attrs class ``output``, structured into it.

        The request carries ``output``'s JSON Schema. A reply that is not valid
        JSON for ``output`` is sent back with the problems, up to
        ``AIConfig.repair_attempts`` more times; every try is paid for and
        recorded, and the result's ``usage`` and ``cost`` are their sums.

        Raises:
            AIOutputError: no try gave a valid ``output``; the problems are named.
            TypeError: ``output`` is not an attrs class.
            (and as :meth:`generate_text`)
        """
        config, services = self._ready()
        provider, bare = split_model(model, config.by_name)
        check_output(output)
        messages = list(conversation(prompt, None))
        schema = json_schema(output)
        usage, cost = NO_USAGE, Decimal(0)
        problems: list[str] = []
        for _ in range(1 + config.repair_attempts):
            request = AIRequest(
                bare,
                messages,
                system=system,
                max_tokens=max_tokens,
                temperature=temperature,
                json_schema=schema,
            )
            text, used, paid = self._generate(config, services, provider, model, "object", request)
            usage, cost = usage + used, cost + paid
            match parse_object(text, output):
                case Success(value):
                    return ObjectResult(value, usage, cost)
                case Failure(found):
                    problems = found
            messages += [Message("assistant", text), Message("user", repair_prompt(problems))]
        tries = 1 + config.repair_attempts
        raise AIOutputError(
            f"{model} gave no valid {output.__qualname__} in {tries} "
            f"{'try' if tries == 1 else 'tries'}; the last reply: " + "; ".join(problems)
        )

    def embed(self, model: str, texts: Sequence[str]) -> EmbedResult:
        """One vector per text from the embedding model ``model`` (``provider:model``).

        Raises:
            ProviderError: the provider failed, or returned a vector count that
                does not match ``texts`` (the call is recorded all the same).
            (and as :meth:`generate_text`)
        """
        config, services = self._ready()
        provider, bare = split_model(model, config.by_name)
        request = EmbedRequest(bare, check_texts(texts))
        call_id = self._before_sending(config, services, model)
        response = provider.embed(request)
        note = response.usage_note
        cost = self._record(config, services, call_id, model, "embed", response.usage, note)
        if len(response.vectors) != len(request.texts):
            raise ProviderError(
                f"{provider.name} returned {len(response.vectors)} vectors "
                f"for {len(request.texts)} texts",
                retryable=False,
            )
        return EmbedResult(tuple(tuple(v) for v in response.vectors), response.usage, cost)

    # -- async -----------------------------------------------------------------------

    async def agenerate_text(
        self,
        model: str,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TextResult:
        """:meth:`generate_text` for ``async def`` stages, off the event loop."""
        return await self._offload(
            lambda: self.generate_text(
                model,
                prompt,
                messages=messages,
                system=system,
                max_tokens=max_tokens,
                temperature=temperature,
            )
        )

    async def agenerate_object(
        self,
        model: str,
        prompt: str,
        *,
        output: type[T],
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ObjectResult[T]:
        """:meth:`generate_object` for ``async def`` stages, off the event loop."""
        return await self._offload(
            lambda: self.generate_object(
                model,
                prompt,
                output=output,
                system=system,
                max_tokens=max_tokens,
                temperature=temperature,
            )
        )

    async def aembed(self, model: str, texts: Sequence[str]) -> EmbedResult:
        """:meth:`embed` for ``async def`` stages, off the event loop."""
        return await self._offload(lambda: self.embed(model, texts))

    # -- the steps of a call -----------------------------------------------------------

    def _ready(self) -> tuple[AIConfig, AIServices]:
        if self._config is None or self._services is None:
            raise AINotConfiguredError()
        return self._config, self._services

    def _offload(self, fn: Callable[[], T]) -> Awaitable[T]:
        self._ready()
        assert self._services is not None
        return self._services.offload(fn)

    def _before_sending(self, config: AIConfig, services: AIServices, model: str) -> str:
        """Refuse an unpriced model or a spent budget; else the new call's id."""
        config.prices.check(model)
        spent, budget = services.spend()
        if budget is not None and spent >= budget:
            raise BudgetExceededError(self._run_id, spent, budget)
        return services.new_call_id()

    def _generate(
        self,
        config: AIConfig,
        services: AIServices,
        provider: AIProvider,
        model: str,
        kind: UsageKind,
        request: AIRequest,
    ) -> tuple[str, Usage, Decimal]:
        call_id = self._before_sending(config, services, model)
        response = provider.generate(request)
        cost = self._record(
            config, services, call_id, model, kind, response.usage, response.usage_note
        )
        return response.text, response.usage, cost

    def _record(
        self,
        config: AIConfig,
        services: AIServices,
        call_id: str,
        model: str,
        kind: UsageKind,
        usage: Usage,
        note: str | None,
    ) -> Decimal:
        cost, priced = config.prices.cost(model, usage)
        services.record(
            UsageRecord(
                call_id=call_id,
                workflow_run_id=self._run_id,
                stage_id=self._stage_id,
                attempt=self._attempt,
                model=model,
                kind=kind,
                usage=usage,
                cost=cost,
                priced=priced,
                note=note,
            )
        )
        return cost


NEVER_RETRIED = (
    AINotConfiguredError,
    InvalidAICallError,
    AIOutputError,
    BudgetExceededError,
    UnpricedModelError,
    InvalidBatchError,
    BatchSubmitUncertainError,
)
"""Errors another attempt cannot help with (SPEC §12.1)."""


def stage_failure(exc: BaseException | None) -> tuple[str, bool] | None:
    """How an AI error raised by stage code fails the stage: the error text, led by
    the error's ``code`` (``"BUDGET_EXCEEDED: ..."``), and whether another attempt
    may help; ``None`` for any other exception.

    >>> stage_failure(ProviderError("429 Too Many Requests", retryable=True))
    ('PROVIDER_ERROR: 429 Too Many Requests', True)
    >>> stage_failure(AINotConfiguredError())[1]
    False
    >>> stage_failure(ValueError("x")) is None
    True
    """
    if isinstance(exc, ProviderError):
        return f"{exc.code}: {exc}", exc.retryable
    if isinstance(exc, NEVER_RETRIED):
        return f"{exc.code}: {exc}", False
    return None


__all__ = ["AI", "NEVER_RETRIED", "AIServices", "Offload", "stage_failure"]
