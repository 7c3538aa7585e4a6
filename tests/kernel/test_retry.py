"""What a retry policy and a timeout may be, checked when a stage or workflow is
defined (SPEC §19)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kernel import DefinitionError, Retry, WorkflowBuilder, define_stage
from kernel.retry import DEFAULT_RETRY
from tests.workflows import Calls, NoConfig, Num, echo


def define(**options: Any) -> Any:
    return define_stage(
        id="extract",
        name="Extract",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=lambda ctx: ctx.input,
        **options,
    )


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        (Retry(max_attempts=0), "stage 'extract': retry.max_attempts must be an int >= 1, got 0"),
        (
            Retry(backoff=timedelta(0)),
            "stage 'extract': retry.backoff must be a positive timedelta, "
            "got datetime.timedelta(0)",
        ),
        (
            Retry(max_backoff=timedelta(seconds=-1)),
            "stage 'extract': retry.max_backoff must be a positive timedelta, "
            "got datetime.timedelta(days=-1, seconds=86399)",
        ),
        (Retry(factor=0.5), "stage 'extract': retry.factor must be a number >= 1, got 0.5"),
        (
            Retry(non_retryable=(ValueError, "KeyError")),
            "stage 'extract': retry.non_retryable must be a tuple of exception classes",
        ),
        (
            {"max_attempts": 3},
            "stage 'extract': retry must be a Retry(...), got {'max_attempts': 3}",
        ),
    ],
)
def test_a_bad_retry_policy_is_refused_naming_the_stage(retry: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        define(retry=retry)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(seconds=-5), 30, "1m"])
def test_a_bad_timeout_is_refused_naming_the_stage(timeout: Any) -> None:
    with pytest.raises(DefinitionError, match=r"stage 'extract': timeout must be a positive"):
        define(timeout=timeout)


def test_a_bad_workflow_default_is_refused_naming_the_workflow() -> None:
    with pytest.raises(DefinitionError, match=r"workflow 'docs': retry.max_attempts must be"):
        WorkflowBuilder("docs", "Docs", input=Num, output=Num, retry=Retry(max_attempts=-1))


def test_one_exception_class_is_taken_as_a_tuple_of_one() -> None:
    assert Retry(non_retryable=ValueError).non_retryable == (ValueError,)


def test_the_policy_of_a_stage_is_its_own_then_the_workflows_then_the_default() -> None:
    own = Retry(max_attempts=7)
    default = Retry(max_attempts=2)
    stage = define(retry=own)
    plain = echo(Calls(), "plain")
    workflow = (
        WorkflowBuilder("docs", "Docs", input=Num, output=Num, retry=default)
        .pipe(stage)
        .pipe(plain)
        .build()
    )
    bare = WorkflowBuilder("bare", "Bare", input=Num, output=Num).pipe(plain).build()

    assert workflow.retry_for("extract") is own
    assert workflow.retry_for("plain") is default
    assert bare.retry_for("plain") is DEFAULT_RETRY


def test_delays_are_capped_and_never_overflow() -> None:
    policy = Retry(backoff=timedelta(seconds=1), factor=10.0, max_backoff=timedelta(hours=1))
    assert [policy.delay(n) for n in (1, 2, 3, 5, 1_000)] == [
        timedelta(seconds=1),
        timedelta(seconds=10),
        timedelta(seconds=100),
        timedelta(hours=1),
        timedelta(hours=1),
    ]
