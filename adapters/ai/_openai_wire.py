"""What the OpenAI adapter sends and how it reads the answers: Chat Completions
bodies, usage normalisation, batch statuses and batch result lines.

Kept apart from :mod:`adapters.ai.openai` (which makes the calls) so that the
mapping rules sit in one place and read as tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import openai
from openai.types import CompletionUsage
from openai.types.batch import Batch
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from adapters.ai._errors import (
    api_message,
    client_error,
    connection_error,
    status_error,
    timeout_error,
)
from kernel import AIRequest, AIResponse, ItemFailed, ItemSucceeded, Usage
from kernel.ai import BatchState

T = TypeVar("T")

NO_USAGE = "provider reported no usage"
"""The ``usage_note`` of a reply without token counts (recorded as 0 tokens)."""

SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What OpenAI accepts as a ``json_schema`` name."""

BATCH_STATES: Mapping[str, BatchState] = {
    "validating": "in_progress",
    "in_progress": "in_progress",
    "finalizing": "in_progress",
    # Still "in progress": OpenAI writes the partial results of a cancelled batch
    # only once it reaches ``cancelled``; reading them earlier would miss items that
    # were answered (and paid for) and resubmit them.
    "cancelling": "in_progress",
    "completed": "ended",
    "cancelled": "cancelled",
    "expired": "expired",
    "failed": "failed",
}
"""OpenAI's batch ``status`` -> the kernel's ``BatchState``."""


@contextmanager
def openai_errors(provider: str) -> Iterator[None]:
    """Re-raise every ``openai`` SDK error as a ``kernel.ProviderError`` (see
    :mod:`adapters.ai._errors` for which are retryable)."""
    try:
        yield
    except openai.APIStatusError as error:
        message = api_message(error.body, error.message)
        raise status_error(provider, error.status_code, message) from error
    except openai.APITimeoutError as error:
        raise timeout_error(provider, error.message) from error
    except openai.APIConnectionError as error:
        raise connection_error(provider, error.message) from error
    except openai.OpenAIError as error:
        raise client_error(provider, error) from error


def bare_model(provider: str, model: str) -> str:
    """The model name OpenAI knows: ``openai:gpt-4o-mini`` -> ``gpt-4o-mini`` (the
    kernel already strips the prefix; a name that still carries it is tolerated).

    >>> bare_model("openai", "openai:gpt-4o-mini"), bare_model("openai", "gpt-4o-mini")
    ('gpt-4o-mini', 'gpt-4o-mini')
    """
    prefix = f"{provider}:"
    return model[len(prefix) :] if model.startswith(prefix) else model


def chat_messages(request: AIRequest) -> list[ChatCompletionMessageParam]:
    """``request.system`` first (as a ``system`` message), then the conversation."""
    messages: list[ChatCompletionMessageParam] = []
    if request.system is not None:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.content})
        elif message.role == "user":
            messages.append({"role": "user", "content": message.content})
        else:
            messages.append({"role": "assistant", "content": message.content})
    return messages


def response_format(schema: Mapping[str, Any]) -> ResponseFormatJSONSchema:
    """Structured Outputs for a JSON Schema: named by its ``title`` (else
    ``output``), ``strict`` when the schema meets strict mode's rules.

    >>> response_format({"type": "object", "properties": {}})["json_schema"]["name"]
    'output'
    """
    title = schema.get("title")
    name = title if isinstance(title, str) and SCHEMA_NAME.match(title) else "output"
    body: dict[str, object] = dict(schema)
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": body, "strict": is_strict_schema(schema)},
    }


def is_strict_schema(schema: object) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object schema in it
    lists all its properties as ``required`` and sets ``additionalProperties: false``
    (so a ``dict[str, T]`` field or one with a default is not strict), and no tuple
    (``prefixItems``) appears.
    Strict mode refuses other schemas with a 400, so they are sent with
    ``strict: false`` (the model is then asked, not forced, to follow them).

    >>> closed = {"type": "object", "properties": {"a": {"type": "string"}},
    ...           "required": ["a"], "additionalProperties": False}
    >>> is_strict_schema(closed), is_strict_schema({**closed, "required": []})
    (True, False)
    """
    if isinstance(schema, list):
        return all(is_strict_schema(item) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    if "prefixItems" in schema:  # tuples: not among strict mode's keywords
        return False
    if schema.get("type") == "object" or isinstance(schema.get("properties"), Mapping):
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if schema.get("additionalProperties") is not False:
            return False
        if not isinstance(properties, Mapping) or not isinstance(required, list):
            return False
        if set(required) != set(properties):
            return False
    return all(is_strict_schema(value) for value in schema.values())


def chat_body(request: AIRequest, model: str) -> dict[str, Any]:
    """The Chat Completions request body for ``request`` (what a batch line carries;
    ``generate`` sends the same through the SDK). ``max_tokens`` becomes
    ``max_completion_tokens`` (``max_tokens`` is deprecated and refused by reasoning
    models); ``request.options`` are merged in as extra body fields."""
    body: dict[str, Any] = {"model": model, "messages": chat_messages(request)}
    if request.max_tokens is not None:
        body["max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.json_schema is not None:
        body["response_format"] = response_format(request.json_schema)
    body.update(request.options)
    return body


def given(value: T | None) -> T | openai.Omit:
    """``value``, or the SDK's "leave this field out" marker for ``None``."""
    return openai.omit if value is None else value


def chat_usage(usage: CompletionUsage | None) -> tuple[Usage, str | None]:
    """OpenAI's usage in the kernel's terms, and a note when it was missing.

    ``input`` = ``prompt_tokens`` (cached ones included), ``cached`` =
    ``prompt_tokens_details.cached_tokens``, ``reasoning`` =
    ``completion_tokens_details.reasoning_tokens``, ``output`` =
    ``completion_tokens`` minus the reasoning tokens (which OpenAI counts in them).
    """
    if usage is None:
        return Usage(0, 0), NO_USAGE
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    counted = (("prompt_tokens", prompt), ("completion_tokens", completion))
    missing = [name for name, count in counted if count is None]
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt_details, "cached_tokens", None) or 0
    reasoning = getattr(completion_details, "reasoning_tokens", None) or 0
    prompt, completion = prompt or 0, completion or 0
    cached, reasoning = min(cached, prompt), min(reasoning, completion)
    note = f"provider reported partial usage: {', '.join(missing)} missing" if missing else None
    return Usage(prompt, completion - reasoning, cached, reasoning), note


def chat_response(completion: ChatCompletion) -> AIResponse:
    """The first choice's text (``""`` when the model refused or answered nothing:
    ``finish_reason`` is then ``refusal`` for a refusal), the normalised usage, the
    model that answered and the completion id."""
    text = ""
    finish_reason: str | None = None
    if completion.choices:
        choice = completion.choices[0]
        text = choice.message.content or ""
        finish_reason = choice.finish_reason
        if choice.message.content is None and choice.message.refusal:
            finish_reason = "refusal"
    usage, note = chat_usage(getattr(completion, "usage", None))
    return AIResponse(
        text=text,
        usage=usage,
        model=completion.model,
        finish_reason=finish_reason,
        provider_id=completion.id,
        usage_note=note,
    )


def batch_counts(batch: Batch) -> dict[str, int]:
    """``request_counts`` as ``succeeded``/``failed``/``in_progress`` (zeros while
    OpenAI has not counted yet)."""
    counts = batch.request_counts
    if counts is None:
        return {"succeeded": 0, "failed": 0, "in_progress": 0}
    pending = max(counts.total - counts.completed - counts.failed, 0)
    return {"succeeded": counts.completed, "failed": counts.failed, "in_progress": pending}


def item_code(code: object, fallback: str) -> str:
    """An item failure code in the kernel's style: OpenAI's ``batch_expired`` is
    ``BATCH_EXPIRED``.

    >>> item_code("batch_expired", "X"), item_code(None, "HTTP_400")
    ('BATCH_EXPIRED', 'HTTP_400')
    """
    return code.upper() if isinstance(code, str) and code else fallback


def batch_line(row: Mapping[str, Any], provider: str) -> tuple[str, ItemSucceeded | ItemFailed]:
    """One line of a batch's output or error file, by ``custom_id``.

    A line with an ``error`` failed (code from the error, e.g. ``BATCH_EXPIRED``);
    a response whose ``status_code`` is not 200 failed with the API's error code
    (else ``HTTP_<status>``) and message; a 200 is the chat completion.
    """
    custom_id = row.get("custom_id")
    if not isinstance(custom_id, str):
        return "", ItemFailed("INVALID_RESULT", f"{provider}: a result line has no custom_id")
    error, response = row.get("error"), row.get("response")
    if isinstance(error, Mapping):
        message = str(error.get("message") or "the item failed")
        return custom_id, ItemFailed(item_code(error.get("code"), "BATCH_ITEM_ERROR"), message)
    if not isinstance(response, Mapping):
        return custom_id, ItemFailed("INVALID_RESULT", f"{provider}: no response and no error")
    status, body = response.get("status_code"), response.get("body")
    if status != 200:
        inner = body.get("error") if isinstance(body, Mapping) else None
        code = inner.get("code") if isinstance(inner, Mapping) else None
        message = f"{provider}: HTTP {status}: {api_message(body, 'no message')}"
        return custom_id, ItemFailed(item_code(code, f"HTTP_{status}"), message)
    try:
        completion = ChatCompletion.model_validate(body)
    except ValueError as invalid:  # pydantic's ValidationError is a ValueError
        return custom_id, ItemFailed("INVALID_RESULT", f"{provider}: {invalid}")
    return custom_id, ItemSucceeded(chat_response(completion))


__all__ = [
    "BATCH_STATES",
    "NO_USAGE",
    "bare_model",
    "batch_counts",
    "batch_line",
    "chat_body",
    "chat_messages",
    "chat_response",
    "chat_usage",
    "given",
    "is_strict_schema",
    "item_code",
    "openai_errors",
    "response_format",
]
