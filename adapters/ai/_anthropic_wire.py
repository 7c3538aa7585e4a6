"""What the Anthropic adapter sends and how it reads the answers: Messages API
bodies, usage normalisation, batch statuses and per-item batch results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
from anthropic.types import Message, MessageParam, OutputConfigParam, TextBlock
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from adapters.ai._errors import (
    api_message,
    client_error,
    connection_error,
    status_error,
    timeout_error,
)
from kernel import AIRequest, AIResponse, ItemFailed, ItemSucceeded, Usage
from kernel.ai import BatchState

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` when the request sets none: the Messages API requires one."""

NO_USAGE = "provider reported no usage"
"""The ``usage_note`` of a reply without token counts (recorded as 0 tokens)."""


@contextmanager
def anthropic_errors(provider: str) -> Iterator[None]:
    """Re-raise every ``anthropic`` SDK error as a ``kernel.ProviderError`` (see
    :mod:`adapters.ai._errors` for which are retryable)."""
    try:
        yield
    except anthropic.APIStatusError as error:
        message = error.api_message or api_message(error.body, error.message)
        raise status_error(provider, error.status_code, message) from error
    except anthropic.APITimeoutError as error:
        raise timeout_error(provider, error.message) from error
    except anthropic.APIConnectionError as error:
        raise connection_error(provider, error.message) from error
    except anthropic.AnthropicError as error:
        raise client_error(provider, error) from error


def bare_model(provider: str, model: str) -> str:
    """The model name Anthropic knows (a leftover ``anthropic:`` prefix is dropped).

    >>> bare_model("anthropic", "anthropic:claude-haiku-4-5")
    'claude-haiku-4-5'
    """
    prefix = f"{provider}:"
    return model[len(prefix) :] if model.startswith(prefix) else model


def system_prompt(request: AIRequest) -> str | None:
    """The top-level ``system`` text: ``request.system``, then the text of any
    ``system`` messages of the conversation (the Messages API takes the system
    prompt apart from the turns), separated by blank lines."""
    parts = [request.system] if request.system is not None else []
    parts += [message.content for message in request.messages if message.role == "system"]
    return "\n\n".join(parts) if parts else None


def turns(request: AIRequest) -> list[MessageParam]:
    """The ``user`` and ``assistant`` turns, in order."""
    messages: list[MessageParam] = []
    for message in request.messages:
        if message.role == "user":
            messages.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            messages.append({"role": "assistant", "content": message.content})
    return messages


def output_config(schema: dict[str, object]) -> OutputConfigParam:
    """Structured outputs: the model's answer is JSON following ``schema``."""
    return {"format": {"type": "json_schema", "schema": schema}}


def extra_fields(request: AIRequest) -> dict[str, Any]:
    """Body fields the SDK has no parameter for: ``temperature`` (the installed SDK's
    ``messages.create`` does not take one; it is sent as it is and the API decides)
    and ``request.options``."""
    extra: dict[str, Any] = {}
    if request.temperature is not None:
        extra["temperature"] = request.temperature
    extra.update(request.options)
    return extra


def message_body(request: AIRequest, model: str, default_max_tokens: int) -> dict[str, Any]:
    """The Messages API body for ``request`` (what a batch request's ``params``
    carry; ``generate`` sends the same through the SDK)."""
    max_tokens = default_max_tokens if request.max_tokens is None else request.max_tokens
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns(request)}
    system = system_prompt(request)
    if system is not None:
        body["system"] = system
    if request.json_schema is not None:
        body["output_config"] = output_config(dict(request.json_schema))
    body.update(extra_fields(request))
    return body


def message_usage(message: Message) -> tuple[Usage, str | None]:
    """Anthropic's usage in the kernel's terms, and a note when it was missing.

    ``input`` = ``input_tokens`` + ``cache_read_input_tokens`` +
    ``cache_creation_input_tokens`` (Anthropic counts only the uncached rest in
    ``input_tokens``), ``cached`` = ``cache_read_input_tokens``, ``output`` =
    ``output_tokens`` (thinking included: Anthropic does not split it out).
    """
    usage = getattr(message, "usage", None)
    if usage is None:
        return Usage(0, 0), NO_USAGE
    uncached = getattr(usage, "input_tokens", None)
    output = getattr(usage, "output_tokens", None)
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    counted = (("input_tokens", uncached), ("output_tokens", output))
    missing = [name for name, count in counted if count is None]
    note = f"provider reported partial usage: {', '.join(missing)} missing" if missing else None
    return Usage((uncached or 0) + read + written, output or 0, read), note


def message_response(message: Message) -> AIResponse:
    """The text blocks of the reply, joined; ``stop_reason`` as ``finish_reason``."""
    text = "".join(block.text for block in message.content if isinstance(block, TextBlock))
    usage, note = message_usage(message)
    return AIResponse(
        text=text,
        usage=usage,
        model=message.model,
        finish_reason=message.stop_reason,
        provider_id=message.id,
        usage_note=note,
    )


def batch_state(batch: MessageBatch) -> BatchState:
    """``in_progress`` and ``canceling`` are ``in_progress`` (results come only once a
    batch has ended). An ended batch is ``cancelled`` if a cancel was asked for,
    ``expired`` if some of its requests expired, else ``ended``; in every case each
    item's result says what became of it."""
    if batch.processing_status != "ended":
        return "in_progress"
    if batch.cancel_initiated_at is not None:
        return "cancelled"
    if batch.request_counts.expired:
        return "expired"
    return "ended"


def batch_counts(batch: MessageBatch) -> dict[str, int]:
    """``succeeded``; ``failed`` = errored + canceled + expired; ``in_progress`` =
    processing."""
    counts = batch.request_counts
    failed = counts.errored + counts.canceled + counts.expired
    return {"succeeded": counts.succeeded, "failed": failed, "in_progress": counts.processing}


def batch_result(line: MessageBatchIndividualResponse, provider: str) -> ItemSucceeded | ItemFailed:
    """One line of a batch's results: ``succeeded`` is the message; ``errored`` fails
    with the error's type (``INVALID_REQUEST_ERROR``, ``OVERLOADED_ERROR``, ...);
    ``canceled`` and ``expired`` fail with ``BATCH_CANCELLED`` and ``BATCH_EXPIRED``,
    the codes the kernel gives items missing from a stopped batch."""
    result = line.result
    if result.type == "succeeded":
        return ItemSucceeded(message_response(result.message))
    if result.type == "errored":
        error = getattr(getattr(result, "error", None), "error", None)
        kind, message = getattr(error, "type", None), getattr(error, "message", None)
        code = kind.upper() if isinstance(kind, str) and kind else "ERRORED"
        return ItemFailed(code, f"{provider}: {message or 'the request errored'}")
    if result.type == "canceled":
        return ItemFailed("BATCH_CANCELLED", f"{provider}: the batch was cancelled first")
    if result.type == "expired":
        return ItemFailed("BATCH_EXPIRED", f"{provider}: the batch expired before this request ran")
    return ItemFailed("INVALID_RESULT", f"{provider}: unknown result type {result.type!r}")


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "NO_USAGE",
    "anthropic_errors",
    "bare_model",
    "batch_counts",
    "batch_result",
    "batch_state",
    "extra_fields",
    "message_body",
    "message_response",
    "message_usage",
    "output_config",
    "system_prompt",
    "turns",
]
