"""What an AI call sends and gets back (SPEC §11): plain frozen records.

Models are named ``provider:model`` in stage code, prices and the ledger;
the provider receives the bare model name in ``AIRequest.model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from attrs import field, frozen

from kernel.records import Json

T = TypeVar("T")

Role = Literal["system", "user", "assistant"]
UsageKind = Literal["text", "object", "embed", "batch"]


def _non_negative(instance: object, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


@frozen
class Usage:
    """Tokens of one call. ``cached_input_tokens`` are part of ``input_tokens``;
    ``reasoning_tokens`` are not part of ``output_tokens``.

    >>> Usage(100, 20, cached_input_tokens=40).total_tokens
    120
    >>> Usage(-1, 0)
    Traceback (most recent call last):
    ...
    ValueError: input_tokens must be an int >= 0, got -1
    """

    input_tokens: int = field(validator=_non_negative)
    output_tokens: int = field(validator=_non_negative)
    cached_input_tokens: int = field(default=0, validator=_non_negative)
    reasoning_tokens: int = field(default=0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.cached_input_tokens > self.input_tokens:
            raise ValueError(
                f"cached_input_tokens ({self.cached_input_tokens}) cannot exceed "
                f"input_tokens ({self.input_tokens}): cached tokens are part of the input"
            )

    @property
    def total_tokens(self) -> int:
        """Input + output + reasoning tokens."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


NO_USAGE = Usage(0, 0)


@frozen
class Message:
    """One message of a conversation."""

    role: Role
    content: str


def _messages(value: Iterable[Message]) -> tuple[Message, ...]:
    # A typed converter: mypy's attrs plugin reads ``converter=tuple`` as ``Iterable[_T_co]``.
    return tuple(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class AIRequest:
    """A generation request, as a provider adapter receives it (bare model name)."""

    model: str
    messages: tuple[Message, ...] = field(converter=_messages)
    system: str | None = field(default=None, kw_only=True)
    max_tokens: int | None = field(default=None, kw_only=True)
    temperature: float | None = field(default=None, kw_only=True)
    json_schema: Mapping[str, Json] | None = field(default=None, kw_only=True)
    options: Mapping[str, Json] = field(factory=dict, kw_only=True)


@frozen
class AIResponse:
    """What a provider answered to an ``AIRequest``."""

    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    provider_id: str | None = None
    usage_note: str | None = None
    """Set by an adapter whose provider reported no (or partial) token counts:
    the call is recorded with the tokens it has, and the ledger entry says so."""


@frozen
class EmbedRequest:
    """Texts to embed with one model (bare name)."""

    model: str
    texts: tuple[str, ...] = field(converter=_texts)


@frozen
class EmbedResponse:
    """One vector per text, in order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    model: str
    usage_note: str | None = None
    """As :attr:`AIResponse.usage_note`."""


@frozen
class TextResult:
    """``ctx.ai.generate_text``: the text, what it used and what it cost."""

    text: str
    usage: Usage
    cost: Decimal


@frozen
class ObjectResult(Generic[T]):
    """``ctx.ai.generate_object``: the structured value; usage and cost over every try."""

    value: T
    usage: Usage
    cost: Decimal


@frozen
class EmbedResult:
    """``ctx.ai.embed``: the vectors, what they used and what they cost."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    cost: Decimal
