"""``AnthropicProvider`` as a ``BatchProvider``: a Message Batch with one request per
item, polled, its results read from the ``results_url`` Anthropic publishes once
it has ended, and cancelled. Message Batches carry no metadata, so ``find`` cannot
tell."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.ai.anthropic import AnthropicProvider
from kernel import (
    AIRequest,
    BatchItem,
    BatchStatus,
    ItemFailed,
    ItemSucceeded,
    Message,
    Usage,
)
from kernel.ports import UNKNOWN
from tests.adapters_ai.anthropic_server import RESULTS_PATH, AnthropicServer, message, usage

ITEMS = [
    BatchItem("doc-1", AIRequest("claude-haiku-4-5", [Message("user", "Sum up doc 1")])),
    BatchItem(
        "doc-2",
        AIRequest("claude-haiku-4-5", [Message("user", "Sum up doc 2")], system="Be brief."),
    ),
    BatchItem("doc-3", AIRequest("claude-haiku-4-5", [Message("user", "Sum up doc 3")])),
    BatchItem("doc-4", AIRequest("claude-haiku-4-5", [Message("user", "Sum up doc 4")])),
]


def succeeded(custom_id: str, text: str, tokens: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "result": {"type": "succeeded", "message": message(text, usage=tokens)},
    }


def errored(custom_id: str, kind: str, text: str) -> dict[str, Any]:
    error = {"type": "error", "error": {"type": kind, "message": text}, "request_id": None}
    return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}


def stopped(custom_id: str, kind: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "result": {"type": kind}}


def test_submit_sends_one_request_per_item_with_the_body_generate_sends(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    batch_id = anthropic_provider.submit(ITEMS[:2], "tag-abc")
    [create] = anthropic_server.bodies("/v1/messages/batches")
    assert create == {
        "requests": [
            {
                "custom_id": "doc-1",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "Sum up doc 1"}],
                },
            },
            {
                "custom_id": "doc-2",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "Sum up doc 2"}],
                    "system": "Be brief.",
                },
            },
        ]
    }
    assert batch_id == "msgbatch_1"
    assert "tag-abc" not in anthropic_server.requests[0].content.decode()


def test_a_batch_request_carries_the_body_generate_sends(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    request = AIRequest(
        "claude-haiku-4-5",
        [Message("user", "x")],
        system="s",
        max_tokens=5,
        temperature=0.5,
        json_schema={"type": "object"},
        options={"top_k": 3},
    )
    anthropic_provider.generate(request)
    anthropic_provider.submit([BatchItem("only", request)], "t")
    [sent] = anthropic_server.bodies("/v1/messages")
    [create] = anthropic_server.bodies("/v1/messages/batches")
    assert create["requests"][0]["params"] == sent


def test_find_cannot_tell(anthropic_provider: AnthropicProvider) -> None:
    """The kernel then stops a stage whose submission is uncertain rather than pay twice."""
    anthropic_provider.submit(ITEMS, "tag-abc")
    assert anthropic_provider.find("tag-abc") is UNKNOWN


def test_status_while_processing_and_while_canceling_is_in_progress(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    batch_id = anthropic_provider.submit(ITEMS, "t")
    assert anthropic_provider.status(batch_id) == BatchStatus(
        "in_progress", {"succeeded": 0, "failed": 0, "in_progress": 4}
    )
    anthropic_server.batches[batch_id]["processing_status"] = "canceling"
    assert anthropic_provider.status(batch_id).state == "in_progress"


def test_results_follow_results_url_and_map_every_kind_of_result(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    batch_id = anthropic_provider.submit(ITEMS, "t")
    anthropic_server.end_batch(
        batch_id,
        [
            errored("doc-2", "invalid_request_error", "max_tokens: too large"),
            succeeded("doc-1", "Summary 1", usage(40, 9, cache_read=60)),
            stopped("doc-3", "canceled"),
            stopped("doc-4", "expired"),
        ],
    )

    assert anthropic_provider.status(batch_id) == BatchStatus(
        "expired", {"succeeded": 1, "failed": 3, "in_progress": 0}
    )
    results = anthropic_provider.results(batch_id)
    first = results["doc-1"]
    assert isinstance(first, ItemSucceeded)
    assert first.response.text == "Summary 1"
    assert first.response.usage == Usage(100, 9, cached_input_tokens=60)
    assert results["doc-2"] == ItemFailed(
        "INVALID_REQUEST_ERROR", "anthropic: max_tokens: too large"
    )
    assert results["doc-3"] == ItemFailed(
        "BATCH_CANCELLED", "anthropic: the batch was cancelled first"
    )
    assert results["doc-4"] == ItemFailed(
        "BATCH_EXPIRED", "anthropic: the batch expired before this request ran"
    )
    assert f"GET {RESULTS_PATH.format(batch_id=batch_id)}" in anthropic_server.calls()


@pytest.mark.parametrize(
    "lines,cancel_asked,state",
    [
        ([succeeded("doc-1", "S", usage(1, 1))], False, "ended"),
        ([errored("doc-1", "overloaded_error", "busy")], False, "ended"),
        ([stopped("doc-1", "expired")], False, "expired"),
        ([succeeded("doc-1", "S", usage(1, 1))], True, "cancelled"),
    ],
    ids=["all-succeeded", "some-errored", "some-expired", "cancel-was-asked"],
)
def test_an_ended_batch_says_whether_it_was_cancelled_or_expired(
    anthropic_server: AnthropicServer,
    anthropic_provider: AnthropicProvider,
    lines: list[dict[str, Any]],
    cancel_asked: bool,
    state: str,
) -> None:
    """Like OpenAI's: ``cancelled`` once a cancel was asked for, ``expired`` when some
    requests ran out of time; each item's result says what became of it either way."""
    batch_id = anthropic_provider.submit(ITEMS[:1], "t")
    if cancel_asked:
        anthropic_provider.cancel(batch_id)
    anthropic_server.end_batch(batch_id, lines)
    assert anthropic_provider.status(batch_id).state == state


def test_results_before_the_batch_ends_are_empty(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    """Anthropic publishes results only once a batch has ended."""
    batch_id = anthropic_provider.submit(ITEMS, "t")
    assert anthropic_provider.results(batch_id) == {}
    assert not any("results" in call for call in anthropic_server.calls())


def test_cancel_asks_once_and_leaves_an_ended_batch_alone(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    running = anthropic_provider.submit(ITEMS, "a")
    anthropic_provider.cancel(running)
    anthropic_provider.cancel(running)  # already canceling: nothing more to ask
    assert anthropic_server.batches[running]["processing_status"] == "canceling"
    done = anthropic_provider.submit(ITEMS[:1], "b")
    anthropic_server.end_batch(done, [succeeded("doc-1", "S", usage(1, 1))])
    anthropic_provider.cancel(done)
    cancels = [call for call in anthropic_server.calls() if call.endswith("/cancel")]
    assert cancels == [f"POST /v1/messages/batches/{running}/cancel"]
