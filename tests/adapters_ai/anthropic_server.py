"""A stand-in for ``https://api.anthropic.com``: a handler for ``httpx2.MockTransport``
that answers like Anthropic's documented API, so the real ``anthropic`` client can
be driven offline.

Routes: ``POST /v1/messages``, ``POST /v1/messages/batches``,
``GET /v1/messages/batches/{id}``, ``POST /v1/messages/batches/{id}/cancel`` and
each ended batch's ``results_url`` (JSON Lines, served at a path of its own so
that a client that guessed the URL instead of following it would miss it).
Anything else is a 404 in Anthropic's error shape. ``failures`` are answered (or
raised) before routing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import anthropic
import httpx2

from tests.adapters_ai.mock_server import MockServer

RESULTS_PATH = "/v1/messages/batches/{batch_id}/results-download"
CREATED_AT = "2026-01-01T00:00:00Z"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> httpx2.Response:
    """An error answer as Anthropic sends them."""
    error = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    return httpx2.Response(status, json={"type": "error", "error": error, "request_id": "req_1"})


def message(
    *texts: str,
    id: str = "msg_1",
    model: str = "claude-haiku-4-5-20251001",
    usage: dict[str, Any] | None = None,
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    """A Message object with these text blocks (and a thinking block first, which the
    adapter must skip); ``usage=None`` leaves usage out."""
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": "hmm", "signature": "s"}]
    content += [{"type": "text", "text": text, "citations": None} for text in texts or ("Hi!",)]
    body: dict[str, Any] = {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def usage(
    input: int, output: int, *, cache_read: int = 0, cache_creation: int = 0
) -> dict[str, Any]:
    """A ``usage`` object as Anthropic reports it (``input_tokens`` excludes the
    cached ones)."""
    return {
        "input_tokens": input,
        "output_tokens": output,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
    }


class AnthropicServer(MockServer):
    """Anthropic's API in memory: what was asked and the message batches."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_requests: dict[str, list[dict[str, Any]]] = {}
        self.results: dict[str, list[dict[str, Any]]] = {}
        self._routes = [
            ("POST", re.compile(r"/v1/messages"), self._message),
            ("POST", re.compile(r"/v1/messages/batches"), self._create_batch),
            ("GET", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)"), self._batch),
            ("POST", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)/cancel"), self._cancel),
            (
                "GET",
                re.compile(RESULTS_PATH.replace("{batch_id}", r"(?P<batch_id>[^/]+)")),
                self._results,
            ),
        ]

    def client(self) -> anthropic.Anthropic:
        """The real SDK client, its HTTP going to this server; no retries."""
        transport = httpx2.MockTransport(self.handle)
        return anthropic.Anthropic(
            api_key="test", http_client=httpx2.Client(transport=transport), max_retries=0
        )

    def not_found(self, request: httpx2.Request) -> httpx2.Response:
        return anthropic_error(404, f"Not found: {request.method} {request.url.path}")

    # -- what the tests set ---------------------------------------------------------

    def end_batch(self, batch_id: str, results: Sequence[dict[str, Any]]) -> None:
        """End a batch with these result lines (``{"custom_id", "result"}``)."""
        batch = self.batches[batch_id]
        kinds = [line["result"]["type"] for line in results]
        batch["processing_status"] = "ended"
        batch["ended_at"] = CREATED_AT
        batch["results_url"] = "https://api.anthropic.com" + RESULTS_PATH.format(batch_id=batch_id)
        batch["request_counts"] = {
            "processing": 0,
            "succeeded": kinds.count("succeeded"),
            "errored": kinds.count("errored"),
            "canceled": kinds.count("canceled"),
            "expired": kinds.count("expired"),
        }
        self.results[batch_id] = list(results)

    # -- routes -------------------------------------------------------------------------

    def _message(self, request: httpx2.Request) -> httpx2.Response:
        if self.messages:
            return httpx2.Response(200, json=self.messages.pop(0))
        return httpx2.Response(200, json=message(usage=usage(12, 3)))

    def _create_batch(self, request: httpx2.Request) -> httpx2.Response:
        requests = json.loads(request.content)["requests"]
        batch_id = f"msgbatch_{len(self.batches) + 1}"
        self.batch_requests[batch_id] = requests
        self.batches[batch_id] = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": len(requests),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": CREATED_AT,
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": None,
        }
        return httpx2.Response(200, json=self.batches[batch_id])

    def _batch(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        if batch_id not in self.batches:
            return anthropic_error(404, f"message batch {batch_id} not found")
        return httpx2.Response(200, json=self.batches[batch_id])

    def _cancel(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches[batch_id]
        if batch["processing_status"] == "ended":
            return anthropic_error(400, "the batch has already ended")
        batch["processing_status"] = "canceling"
        batch["cancel_initiated_at"] = CREATED_AT
        return httpx2.Response(200, json=batch)

    def _results(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        lines = "".join(json.dumps(line) + "\n" for line in self.results[batch_id])
        return httpx2.Response(200, content=lines.encode())
