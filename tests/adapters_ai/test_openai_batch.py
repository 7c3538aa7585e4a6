"""``OpenAIProvider`` as a ``BatchProvider``: a JSONL file uploaded for the Batch
API, the batch created with the kernel's tag in its metadata, found again by that
tag, polled, read back from its output and error files, and cancelled."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.ai.openai import OpenAIProvider
from kernel import (
    AIRequest,
    BatchItem,
    BatchStatus,
    ItemFailed,
    ItemSucceeded,
    Message,
    ProviderError,
    Usage,
)
from tests.adapters_ai.openai_server import OpenAIServer, completion, usage

ITEMS = [
    BatchItem("doc-1", AIRequest("gpt-4o-mini", [Message("user", "Sum up doc 1")], max_tokens=64)),
    BatchItem(
        "doc-2",
        AIRequest("gpt-4o-mini", [Message("user", "Sum up doc 2")], system="Be brief."),
    ),
    BatchItem("doc-3", AIRequest("gpt-4o-mini", [Message("user", "Sum up doc 3")])),
]


def output_line(custom_id: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """A line of a batch's output file, as OpenAI writes it."""
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{custom_id}", "body": body},
        "error": None,
    }


def error_line(custom_id: str, code: str, message: str) -> dict[str, Any]:
    """A line of a batch's error file."""
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def test_submit_uploads_one_jsonl_line_per_item_and_tags_the_batch(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    batch_id = openai_provider.submit(ITEMS, "tag-abc")

    assert openai_server.calls() == ["POST /v1/files", "POST /v1/batches"]
    [(file_id, content)] = openai_server.files.items()
    lines = [json.loads(line) for line in content.decode().splitlines()]
    assert lines == [
        {
            "custom_id": "doc-1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Sum up doc 1"}],
                "max_completion_tokens": 64,
            },
        },
        {
            "custom_id": "doc-2",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Sum up doc 2"},
                ],
            },
        },
        {
            "custom_id": "doc-3",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Sum up doc 3"}],
            },
        },
    ]
    [create] = openai_server.bodies("/v1/batches")
    assert create == {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"wfk_tag": "tag-abc"},
    }
    assert batch_id == "batch_1"


def test_the_upload_is_a_batch_purpose_jsonl_file(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    openai_provider.submit(ITEMS[:1], "tag-abc")
    upload = openai_server.requests[0]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert b'name="purpose"\r\n\r\nbatch\r\n' in upload.content
    assert b'filename="wfk-tag-abc.jsonl"' in upload.content


def test_a_batch_line_carries_the_body_generate_sends(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """One request, two ways of sending it: the same Chat Completions body."""
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    request = AIRequest(
        "gpt-4o-mini",
        [Message("user", "x")],
        system="s",
        max_tokens=5,
        temperature=0.0,
        json_schema=schema,
        options={"seed": 1},
    )
    openai_provider.generate(request)
    openai_provider.submit([BatchItem("only", request)], "t")
    [sent] = openai_server.bodies("/v1/chat/completions")
    [line] = openai_server.files.values()
    assert json.loads(line)["body"] == sent


def test_find_returns_the_batch_tagged_so_among_recent_batches(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """``find`` pages through the list (100 a page here: two pages)."""
    wanted = openai_provider.submit(ITEMS[:1], "tag-wanted")
    for number in range(150):
        openai_provider.submit(ITEMS[:1], f"tag-{number}")
    assert openai_provider.find("tag-wanted") == wanted
    assert openai_provider.find("tag-never-submitted") is None
    pages = [r for r in openai_server.requests if r.url.path == "/v1/batches" and r.method == "GET"]
    assert pages[0].url.params["limit"] == "100"
    assert pages[1].url.params["after"]  # the second page starts after the first


def test_find_looks_no_further_than_find_limit(openai_server: OpenAIServer) -> None:
    provider = OpenAIProvider(openai_server.client(), find_limit=2)
    provider.submit(ITEMS[:1], "old")
    provider.submit(ITEMS[:1], "newer")
    provider.submit(ITEMS[:1], "newest")
    assert provider.find("newer") == "batch_2"
    assert provider.find("old") is None


@pytest.mark.parametrize(
    "openai_status,state",
    [
        ("validating", "in_progress"),
        ("in_progress", "in_progress"),
        ("finalizing", "in_progress"),
        ("cancelling", "in_progress"),
        ("completed", "ended"),
        ("cancelled", "cancelled"),
        ("expired", "expired"),
        ("failed", "failed"),
    ],
)
def test_status_maps_openai_statuses(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider, openai_status: str, state: str
) -> None:
    """``cancelling`` is still in progress: the partial results of a cancelled batch
    are written only once it is ``cancelled``."""
    batch_id = openai_provider.submit(ITEMS, "t")
    openai_server.batches[batch_id]["status"] = openai_status
    assert openai_provider.status(batch_id).state == state


def test_status_counts_come_from_request_counts(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    batch_id = openai_provider.submit(ITEMS, "t")
    openai_server.batches[batch_id].update(
        status="in_progress", request_counts={"total": 3, "completed": 1, "failed": 1}
    )
    assert openai_provider.status(batch_id) == BatchStatus(
        "in_progress", {"succeeded": 1, "failed": 1, "in_progress": 1}
    )


def test_results_map_output_and_error_lines_by_custom_id(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    batch_id = openai_provider.submit(ITEMS, "t")
    bad_request = {"error": {"message": "Invalid max_tokens", "code": "invalid_value"}}
    openai_server.finish_batch(
        batch_id,
        output=[
            output_line("doc-2", 400, bad_request),
            output_line("doc-1", 200, completion("Summary 1", id="c1", usage=usage(50, 10))),
        ],
        errors=[error_line("doc-3", "batch_expired", "This request could not be executed.")],
    )

    assert openai_provider.status(batch_id) == BatchStatus(
        "ended", {"succeeded": 1, "failed": 2, "in_progress": 0}
    )
    results = openai_provider.results(batch_id)
    assert set(results) == {"doc-1", "doc-2", "doc-3"}
    first = results["doc-1"]
    assert isinstance(first, ItemSucceeded)
    assert (first.response.text, first.response.provider_id) == ("Summary 1", "c1")
    assert first.response.usage == Usage(50, 10)
    assert results["doc-2"] == ItemFailed("INVALID_VALUE", "openai: HTTP 400: Invalid max_tokens")
    assert results["doc-3"] == ItemFailed("BATCH_EXPIRED", "This request could not be executed.")


def test_a_non_200_line_without_a_code_fails_with_the_status(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    batch_id = openai_provider.submit(ITEMS[:1], "t")
    openai_server.finish_batch(
        batch_id, output=[output_line("doc-1", 500, {"error": {"message": "oops"}})]
    )
    assert openai_provider.results(batch_id) == {
        "doc-1": ItemFailed("HTTP_500", "openai: HTTP 500: oops")
    }


def test_results_of_an_unfinished_batch_are_empty(
    openai_provider: OpenAIProvider,
) -> None:
    batch_id = openai_provider.submit(ITEMS, "t")
    assert openai_provider.results(batch_id) == {}


def test_a_cancelled_batch_returns_its_partial_results(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """OpenAI lists what never ran in the error file as ``batch_cancelled``."""
    batch_id = openai_provider.submit(ITEMS[:2], "t")
    openai_server.finish_batch(
        batch_id,
        "cancelled",
        output=[output_line("doc-1", 200, completion("S1", usage=usage(5, 1)))],
        errors=[error_line("doc-2", "batch_cancelled", "Batch was cancelled.")],
    )
    assert openai_provider.status(batch_id).state == "cancelled"
    results = openai_provider.results(batch_id)
    assert isinstance(results["doc-1"], ItemSucceeded)
    assert results["doc-2"] == ItemFailed("BATCH_CANCELLED", "Batch was cancelled.")


def test_cancel_asks_once_and_leaves_a_finished_batch_alone(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    running = openai_provider.submit(ITEMS, "a")
    openai_provider.cancel(running)
    openai_provider.cancel(running)  # already cancelling: nothing more to ask
    assert openai_server.batches[running]["status"] == "cancelling"
    done = openai_provider.submit(ITEMS, "b")
    openai_server.finish_batch(done, output=[])
    openai_provider.cancel(done)
    cancels = [call for call in openai_server.calls() if call.endswith("/cancel")]
    assert cancels == [f"POST /v1/batches/{running}/cancel"]


def test_an_output_file_that_is_not_jsonl_fails_for_good(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    batch_id = openai_provider.submit(ITEMS[:1], "t")
    openai_server.files["file-broken"] = b'{"custom_id": "doc-1"}\nnot json\n'
    openai_server.batches[batch_id].update(status="completed", output_file_id="file-broken")
    with pytest.raises(ProviderError, match="line 2 of the output file of batch_1") as raised:
        openai_provider.results(batch_id)
    assert raised.value.retryable is False
