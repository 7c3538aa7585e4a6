"""Properties that hold for every input, checked with hypothesis (SPEC §4.3, §5.6, §6.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from kernel.convert import fingerprint
from kernel.decisions.context import BACKOFF_CAP, next_attempt_at
from tests.harness import T0
from tests.workflows import Calls, linear

LINEAR = linear(Calls())
STAGE_IDS = ["first", "second", "third"]

attempts = st.integers(min_value=1, max_value=10_000)


@given(attempts, attempts)
def test_backoff_never_shrinks_as_attempts_grow(a: int, b: int) -> None:
    """SPEC §5.6: a later attempt never waits less than an earlier one."""
    low, high = sorted((a, b))
    assert next_attempt_at(low, T0) <= next_attempt_at(high, T0)


@given(attempts)
def test_backoff_waits_at_least_a_second_and_at_most_the_cap(attempt: int) -> None:
    """SPEC §5.6: retries back off from 1 s and never beyond 5 minutes."""
    delay = next_attempt_at(attempt, T0) - T0
    assert timedelta(seconds=1) <= delay <= BACKOFF_CAP


@given(st.fixed_dictionaries({}, optional={s: st.integers() for s in STAGE_IDS}))
def test_any_valid_config_validates_and_is_completed(amounts: dict[str, int]) -> None:
    """SPEC §4.3: defaults are merged under the given values for every stage."""
    config = {stage_id: {"amount": amount} for stage_id, amount in amounts.items()}

    result = LINEAR.validate_config(config)

    assert result == Success(
        {stage_id: {"amount": amounts.get(stage_id, 1)} for stage_id in STAGE_IDS}
    )


@given(st.sampled_from(STAGE_IDS), st.text(min_size=1).filter(lambda key: key != "amount"))
def test_an_unknown_config_key_is_always_rejected(stage_id: str, key: str) -> None:
    """SPEC §4.3: unknown keys are refused, never silently dropped; the path names them."""
    result = LINEAR.validate_config({stage_id: {key: 1}})

    assert result == Failure([f"config.{stage_id}: unknown field {key!r}"])


@given(st.text(min_size=1).filter(lambda key: key not in STAGE_IDS))
def test_an_unknown_stage_in_config_is_always_rejected(stage_id: str) -> None:
    """SPEC §4.3: config for a stage the workflow lacks is an error naming the stage."""
    result = LINEAR.validate_config({stage_id: {}})

    assert isinstance(result, Failure)
    assert result.failure()[0].startswith(f"config: unknown stage {stage_id!r}")


@given(
    st.sampled_from(STAGE_IDS),
    st.one_of(st.text(), st.floats(), st.booleans(), st.none(), st.lists(st.integers())),
)
def test_a_config_value_of_the_wrong_type_is_always_rejected(stage_id: str, value: Any) -> None:
    """SPEC §4.3, §10.1: the message names the field path and the bad value."""
    result = LINEAR.validate_config({stage_id: {"amount": value}})

    assert result == Failure([f"config.{stage_id}.amount: expected int, got {value!r}"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_a_fingerprint_ignores_key_order(payload: dict[str, Any]) -> None:
    """SPEC §6.3: the same payload always has the same fingerprint."""
    reordered = dict(reversed(list(payload.items())))

    assert fingerprint(reordered) == fingerprint(payload)


@given(st.dictionaries(st.text(), st.integers(), min_size=1, max_size=5), st.integers())
def test_a_fingerprint_changes_with_the_payload(payload: dict[str, int], extra: int) -> None:
    """SPEC §6.3: a different payload has a different fingerprint (a conflict, not a replay)."""
    changed = {**payload, next(iter(payload)): payload[next(iter(payload))] + 1 + abs(extra)}

    assert fingerprint(changed) != fingerprint(payload)
