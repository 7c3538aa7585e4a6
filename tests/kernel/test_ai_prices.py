"""Prices and the cost of a call (SPEC §11, §12.1): exact decimals, rounded once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.ai import ModelPrice, PriceTable, UnpricedModelError, Usage, call_cost

MINI = ModelPrice(Decimal("0.15"), Decimal("0.60"), cached_input=Decimal("0.075"))
TABLE = PriceTable({"openai:gpt-4o-mini": MINI})

tokens = st.integers(min_value=0, max_value=10_000_000)
prices = st.decimals(min_value=0, max_value=100, places=4)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    input_tokens = draw(tokens)
    return Usage(
        input_tokens,
        draw(tokens),
        cached_input_tokens=draw(st.integers(min_value=0, max_value=input_tokens)),
        reasoning_tokens=draw(tokens),
    )


def test_cost_follows_the_formula_per_million_tokens() -> None:
    usage = Usage(1_200_000, 300_000, cached_input_tokens=200_000, reasoning_tokens=100_000)
    # 1.0M fresh input x 0.15 + 0.2M cached x 0.075 + 0.4M output x 0.60
    assert call_cost(MINI, usage) == Decimal("0.15") + Decimal("0.015") + Decimal("0.24")


def test_cached_input_costs_the_input_price_when_the_model_has_no_cached_price() -> None:
    price = ModelPrice(Decimal("2"), Decimal("8"))
    assert call_cost(price, Usage(1_000_000, 0, cached_input_tokens=1_000_000)) == Decimal(2)


def test_batch_items_get_the_batch_discount() -> None:
    assert call_cost(MINI, Usage(1_000_000, 0), batch=True) == Decimal("0.075")
    no_discount = ModelPrice(Decimal(1), Decimal(1), batch_discount=Decimal(0))
    assert call_cost(no_discount, Usage(1_000_000, 0), batch=True) == Decimal(1)


def test_cost_is_rounded_once_half_even_to_1e_8() -> None:
    price = ModelPrice(Decimal("0.000005"), Decimal(0))
    # 1 token x 0.000005 / 1e6 = 5e-12: rounds to zero, not up.
    assert call_cost(price, Usage(1, 0)) == Decimal("0E-8")
    assert call_cost(ModelPrice(Decimal("0.015"), Decimal(0)), Usage(1, 0)) == Decimal("2E-8")
    assert call_cost(ModelPrice(Decimal("0.025"), Decimal(0)), Usage(1, 0)) == Decimal("2E-8")


@given(usages(), prices, prices)
def test_cost_is_never_negative_and_has_eight_places(
    usage: Usage, inp: Decimal, out: Decimal
) -> None:
    cost = call_cost(ModelPrice(inp, out), usage)
    assert cost >= 0
    assert cost.as_tuple().exponent == -8


@given(usages(), usages())
def test_two_calls_cost_the_sum_of_each_within_rounding(a: Usage, b: Usage) -> None:
    apart = call_cost(MINI, a) + call_cost(MINI, b)
    assert abs(call_cost(MINI, a + b) - apart) <= Decimal("1e-8")


@given(usages())
def test_a_batch_item_never_costs_more_than_the_same_call(usage: Usage) -> None:
    assert call_cost(MINI, usage, batch=True) <= call_cost(MINI, usage)


def test_an_unpriced_model_is_refused_naming_it() -> None:
    with pytest.raises(UnpricedModelError, match="'openai:gpt-5'") as caught:
        TABLE.check("openai:gpt-5")
    assert caught.value.code == "UNPRICED_MODEL"
    with pytest.raises(UnpricedModelError):
        TABLE.cost("openai:gpt-5", Usage(1, 1))


def test_a_table_that_allows_unpriced_models_costs_them_nothing() -> None:
    table = PriceTable({}, allow_unpriced=True)
    table.check("local:llama")
    assert table.cost("local:llama", Usage(1_000, 1_000)) == (Decimal(0), False)
    assert TABLE.cost("openai:gpt-4o-mini", Usage(0, 0)) == (Decimal(0), True)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ModelPrice(0.15, Decimal(1)), "ModelPrice.input must be a finite Decimal"),  # type: ignore[arg-type]
        (lambda: ModelPrice(Decimal(1), Decimal(-1)), "ModelPrice.output must be"),
        (lambda: ModelPrice(Decimal(1), Decimal("NaN")), "ModelPrice.output must be"),
        (lambda: ModelPrice(Decimal(1), Decimal(1), cached_input=Decimal(-2)), "cached_input"),
        (
            lambda: ModelPrice(Decimal(1), Decimal(1), batch_discount=Decimal("1.5")),
            "batch_discount must be a Decimal in \\[0, 1\\], got Decimal\\('1.5'\\)",
        ),
        (lambda: PriceTable({"gpt-4o": MINI}), "'provider:model', got 'gpt-4o'"),
        (lambda: PriceTable({"openai:": MINI}), "got 'openai:'"),
    ],
)
def test_bad_prices_are_refused_naming_the_field_and_value(build: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, "input_tokens must be an int >= 0, got -1"),
        ({"input_tokens": 1, "output_tokens": 1.5}, "output_tokens must be an int >= 0, got 1.5"),
        ({"input_tokens": 1, "output_tokens": True}, "output_tokens must be an int >= 0"),
        (
            {"input_tokens": 5, "output_tokens": 0, "cached_input_tokens": 6},
            "cached_input_tokens \\(6\\) cannot exceed input_tokens \\(5\\)",
        ),
    ],
)
def test_bad_usage_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Usage(**kwargs)  # type: ignore[arg-type]


def test_total_tokens_count_input_output_and_reasoning() -> None:
    assert Usage(10, 5, cached_input_tokens=4, reasoning_tokens=3).total_tokens == 18
