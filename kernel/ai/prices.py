"""Prices per million tokens and the cost of a call (SPEC §11, §12.1). Pure.

Cost = input * (input_tokens - cached) + cached_input * cached
       + output * (output_tokens + reasoning_tokens), all / 1,000,000,
times (1 - batch_discount) for batch items, rounded once, half-even, to 1e-8.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from attrs import field, frozen

from kernel.ai.errors import UnpricedModelError
from kernel.ai.types import Usage

MILLION = Decimal(1_000_000)
QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)


def _price(instance: object, attribute: Any, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(
            f"ModelPrice.{attribute.name} must be a finite Decimal >= 0 (per million tokens), "
            f"got {value!r}"
        )


def _optional_price(instance: object, attribute: Any, value: Decimal | None) -> None:
    if value is not None:
        _price(instance, attribute, value)


def _discount(instance: object, attribute: Any, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not ZERO <= value <= 1:
        raise ValueError(f"ModelPrice.batch_discount must be a Decimal in [0, 1], got {value!r}")


@frozen
class ModelPrice:
    """What one model costs, per million tokens.

    >>> ModelPrice(Decimal("0.15"), Decimal("0.60")).cached_input is None
    True
    >>> ModelPrice(0.15, Decimal("0.60"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ModelPrice.input must be a finite Decimal >= 0 (per million tokens), got 0.15
    """

    input: Decimal = field(validator=_price)
    output: Decimal = field(validator=_price)
    cached_input: Decimal | None = field(default=None, validator=_optional_price)
    batch_discount: Decimal = field(default=Decimal("0.5"), validator=_discount)


def _models(value: Mapping[str, ModelPrice]) -> dict[str, ModelPrice]:
    return dict(value)


def _check_models(instance: object, attribute: Any, value: dict[str, ModelPrice]) -> None:
    for name, price in value.items():
        provider, _, model = name.partition(":")
        if not provider or not model:
            raise ValueError(f"PriceTable model names are 'provider:model', got {name!r}")
        if not isinstance(price, ModelPrice):
            raise TypeError(f"PriceTable[{name!r}] must be a ModelPrice, got {price!r}")


@frozen
class PriceTable:
    """Prices by ``provider:model``.

    >>> table = PriceTable({"openai:gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60"))})
    >>> table.cost("openai:gpt-4o-mini", Usage(1_000, 500))
    (Decimal('0.00045000'), True)
    >>> table.cost("openai:gpt-5", Usage(1, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kernel.ai.errors.UnpricedModelError: model 'openai:gpt-5' has no price ...
    """

    models: dict[str, ModelPrice] = field(factory=dict, converter=_models, validator=_check_models)
    allow_unpriced: bool = field(default=False, kw_only=True)

    def check(self, model: str) -> None:
        """Refuse a model without a price (before anything is sent)."""
        if model not in self.models and not self.allow_unpriced:
            raise UnpricedModelError(model)

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> tuple[Decimal, bool]:
        """The cost of one call and whether it was priced (``False``: cost 0)."""
        price = self.models.get(model)
        if price is None:
            self.check(model)
            return ZERO.quantize(QUANTUM), False
        return call_cost(price, usage, batch=batch), True


def call_cost(price: ModelPrice, usage: Usage, *, batch: bool = False) -> Decimal:
    """The cost of ``usage`` at ``price``, rounded once to 1e-8.

    >>> price = ModelPrice(Decimal("2"), Decimal("8"), cached_input=Decimal("0.5"))
    >>> call_cost(price, Usage(1_000_000, 0, cached_input_tokens=400_000))
    Decimal('1.40000000')
    >>> call_cost(price, Usage(0, 100, reasoning_tokens=100), batch=True)
    Decimal('0.00080000')
    """
    cached = usage.cached_input_tokens
    cached_price = price.input if price.cached_input is None else price.cached_input
    raw = (
        price.input * (usage.input_tokens - cached)
        + cached_price * cached
        + price.output * (usage.output_tokens + usage.reasoning_tokens)
    ) / MILLION
    if batch:
        raw *= 1 - price.batch_discount
    return raw.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
