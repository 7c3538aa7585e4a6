"""Checking what stage code passes to ``ctx.ai`` and reading what models answer.

Pure helpers of :mod:`kernel.ai.client`: argument checks that name the
argument and the value, and the parsing of a ``generate_object`` reply into
the output class (or the problems to send back in a repair try).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs
from returns.result import Failure, Result

from kernel.ai.errors import InvalidAICallError
from kernel.ai.ports import AIProvider
from kernel.ai.types import Message
from kernel.convert import structure

T = TypeVar("T")


def split_model(model: object, providers: Mapping[str, AIProvider]) -> tuple[AIProvider, str]:
    """The provider of ``provider:model`` and the bare model name it receives.

    >>> split_model("gpt-4o", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kernel.ai.errors.InvalidAICallError: model: expected 'provider:model' (...), got 'gpt-4o'
    """
    if not isinstance(model, str):
        raise InvalidAICallError(f"model: expected a str 'provider:model', got {model!r}")
    prefix, _, bare = model.partition(":")
    if not prefix or not bare:
        raise InvalidAICallError(
            f"model: expected 'provider:model' (like 'openai:gpt-4o-mini'), got {model!r}"
        )
    provider = providers.get(prefix)
    if provider is None:
        known = ", ".join(repr(name) for name in sorted(providers)) or "none"
        raise InvalidAICallError(
            f"model: no provider named {prefix!r} for {model!r}; known providers: {known}"
        )
    return provider, bare


def conversation(prompt: object, messages: object) -> tuple[Message, ...]:
    """The messages of a call given ``prompt`` or ``messages`` (exactly one)."""
    if (prompt is None) == (messages is None):
        raise InvalidAICallError("pass exactly one of prompt= or messages=")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidAICallError(f"prompt: expected a str, got {prompt!r}")
        return (Message("user", prompt),)
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidAICallError(
            f"messages: expected a non-empty list of Message, got {messages!r}"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidAICallError(
                f"messages[{index}]: expected a Message(role, content), got {message!r}"
            )
    return tuple(messages)


def check_output(output: object) -> None:
    """Refuse an ``output=`` that is not an attrs class."""
    if not (isinstance(output, type) and attrs.has(output)):
        raise InvalidAICallError(f"output: expected an attrs class, got {output!r}")


def check_texts(texts: object) -> tuple[str, ...]:
    """The texts of an ``embed`` call: a non-empty list of str."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence) or not texts:
        raise InvalidAICallError(f"texts: expected a non-empty list of str, got {texts!r}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidAICallError(f"texts[{index}]: expected a str, got {text!r}")
    return tuple(texts)


def parse_object(text: str, output: type[T]) -> Result[T, list[str]]:
    """Structure a model's JSON reply into ``output``, or the problems with it.

    A reply wrapped in a Markdown code fence is unwrapped first: models do that.

    >>> @attrs.frozen
    ... class Tag:
    ...     name: str
    >>> parse_object('```json\\n{"name": "x"}\\n```', Tag)
    <Success: Tag(name='x')>
    >>> parse_object('{"name": 1}', Tag)
    <Failure: ['output.name: expected str, got 1']>
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.partition("\n")[2].rstrip()
        body = body.removesuffix("```").rstrip()
    try:
        raw: Any = json.loads(body)
    except ValueError as exc:
        return Failure([f"the reply is not valid JSON ({exc})"])
    return structure(raw, output, "output")


def repair_prompt(problems: Sequence[str]) -> str:
    """The user message of a repair try: what was wrong, and what to send instead."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        "Your reply could not be used:\n"
        f"{listed}\n"
        "Reply again with only a JSON object that matches the schema."
    )


__all__ = [
    "check_output",
    "check_texts",
    "conversation",
    "parse_object",
    "repair_prompt",
    "split_model",
]
