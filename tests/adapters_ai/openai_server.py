"""A stand-in for ``https://api.openai.com/v1``: a handler for ``httpx2.MockTransport``
that answers like OpenAI's documented API, so the real ``openai`` client can be
driven offline.

Routes: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``POST /v1/files``
(multipart upload), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches`` (newest first, ``limit``/``after`` pages),
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. Anything else is a 404
in OpenAI's error shape. ``failures`` are answered (or raised) before routing.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Sequence
from typing import Any

import httpx2
import openai

from tests.adapters_ai.mock_server import MockServer


def openai_error(status: int, message: str, code: str | None = None) -> httpx2.Response:
    """An error answer as OpenAI sends them."""
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return httpx2.Response(status, json={"error": error})


def completion(
    text: str | None = "Hello!",
    *,
    id: str = "chatcmpl-1",
    model: str = "gpt-4o-mini-2024-07-18",
    usage: dict[str, Any] | None = None,
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A chat completion object; ``usage=None`` leaves usage out."""
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def usage(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """A ``usage`` object with its details, as OpenAI reports them."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def form_parts(request: httpx2.Request) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, content)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + request.read(), policy=email.policy.HTTP)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes), f"form field {name!r} is not bytes"
        parts[str(name)] = (part.get_filename(), content)
    return parts


class OpenAIServer(MockServer):
    """OpenAI's API in memory: what was asked, the files and the batches."""

    def __init__(self) -> None:
        super().__init__()
        self.completions: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._routes = [
            ("POST", re.compile(r"/v1/chat/completions"), self._chat),
            ("POST", re.compile(r"/v1/embeddings"), self._embeddings),
            ("POST", re.compile(r"/v1/files"), self._upload),
            ("GET", re.compile(r"/v1/files/(?P<file_id>[^/]+)/content"), self._content),
            ("POST", re.compile(r"/v1/batches"), self._create_batch),
            ("GET", re.compile(r"/v1/batches"), self._list_batches),
            ("GET", re.compile(r"/v1/batches/(?P<batch_id>[^/]+)"), self._batch),
            ("POST", re.compile(r"/v1/batches/(?P<batch_id>[^/]+)/cancel"), self._cancel),
        ]

    def client(self) -> openai.OpenAI:
        """The real SDK client, its HTTP going to this server; no retries."""
        transport = httpx2.MockTransport(self.handle)
        return openai.OpenAI(
            api_key="test", http_client=httpx2.Client(transport=transport), max_retries=0
        )

    def not_found(self, request: httpx2.Request) -> httpx2.Response:
        return openai_error(404, f"Invalid URL ({request.method} {request.url.path})")

    # -- what the tests set ---------------------------------------------------------

    def finish_batch(
        self,
        batch_id: str,
        status: str = "completed",
        *,
        output: Sequence[dict[str, Any]] = (),
        errors: Sequence[dict[str, Any]] = (),
    ) -> None:
        """End a batch with these output-file and error-file lines."""
        batch = self.batches[batch_id]
        for key, lines in (("output_file_id", output), ("error_file_id", errors)):
            if lines:
                file_id = f"file-{key[:-8]}-{batch_id}"
                self.files[file_id] = "".join(json.dumps(line) + "\n" for line in lines).encode()
                batch[key] = file_id
        succeeded = sum(1 for line in output if line["response"]["status_code"] == 200)
        total = batch["request_counts"]["total"]
        batch["status"] = status
        batch["request_counts"] = {
            "total": total,
            "completed": succeeded,
            "failed": len(output) - succeeded + len(errors),
        }

    # -- routes -------------------------------------------------------------------------

    def _chat(self, request: httpx2.Request) -> httpx2.Response:
        if self.completions:
            return httpx2.Response(200, json=self.completions.pop(0))
        return httpx2.Response(200, json=completion(usage=usage(12, 3)))

    def _embeddings(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        texts = body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5]}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(text.split()) for text in texts)
        return httpx2.Response(
            200,
            json={
                "object": "list",
                "model": body["model"],
                "data": list(reversed(data)),  # OpenAI's ``index`` says which text is which
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _upload(self, request: httpx2.Request) -> httpx2.Response:
        parts = form_parts(request)
        filename, content = parts["file"]
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return httpx2.Response(
            200,
            json={
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": 1_767_225_600,
                "filename": filename,
                "purpose": parts["purpose"][1].decode(),
            },
        )

    def _content(self, request: httpx2.Request, file_id: str) -> httpx2.Response:
        if file_id not in self.files:
            return openai_error(404, f"No such File object: {file_id}")
        return httpx2.Response(200, content=self.files[file_id])

    def _create_batch(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        lines = self.files[body["input_file_id"]].decode().splitlines()
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": 1_767_225_600 + len(self.batches),
            "metadata": body.get("metadata"),
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        return httpx2.Response(200, json=self.batches[batch_id])

    def _list_batches(self, request: httpx2.Request) -> httpx2.Response:
        newest_first = sorted(self.batches.values(), key=lambda b: -b["created_at"])
        after = request.url.params.get("after")
        if after is not None:
            ids = [batch["id"] for batch in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :]
        limit = int(request.url.params.get("limit", "20"))
        page = newest_first[:limit]
        return httpx2.Response(
            200,
            json={
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            },
        )

    def _batch(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        if batch_id not in self.batches:
            return openai_error(404, f"No batch found with id '{batch_id}'.")
        return httpx2.Response(200, json=self.batches[batch_id])

    def _cancel(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches[batch_id]
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return openai_error(400, f"Cannot cancel a batch with status '{batch['status']}'.")
        batch["status"] = "cancelling"
        return httpx2.Response(200, json=batch)
