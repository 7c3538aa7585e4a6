"""``OpenAIProvider``: ``ctx.ai`` and LLM batch stages over OpenAI's official SDK.

Generation uses Chat Completions, embeddings the Embeddings API, batches the
Batch API (a JSONL file uploaded with ``purpose="batch"``, then
``batches.create`` with ``metadata={"wfk_tag": tag}`` so that ``find`` can look
the batch up again). Every SDK error becomes a ``kernel.ProviderError``;
``adapters.ai._openai_wire`` holds the mapping rules (bodies, usage, statuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import openai

from adapters.ai._jsonl import decode_jsonl, encode_jsonl
from adapters.ai._openai_wire import (
    BATCH_STATES,
    NO_USAGE,
    bare_model,
    batch_counts,
    batch_line,
    chat_body,
    chat_messages,
    chat_response,
    given,
    openai_errors,
    response_format,
)
from kernel import (
    AIRequest,
    AIResponse,
    BatchItem,
    BatchStatus,
    EmbedRequest,
    EmbedResponse,
    ItemFailed,
    ItemSucceeded,
    Usage,
)
from kernel.ports import Unknown

CHAT_ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
TAG_KEY = "wfk_tag"
"""The batch metadata key that holds the kernel's submission tag."""

FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelling", "cancelled"})
"""Batch statuses that a cancel has nothing left to stop in."""


class OpenAIProvider:
    """OpenAI as an ``AIProvider`` and a ``BatchProvider``.

    Args:
        client: the SDK client to use. ``None`` builds ``openai.OpenAI()`` on the
            first call, which reads ``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``,
            ``OPENAI_ORG_ID``, ...) from the environment: importing and
            constructing need no key. Pass a client to set the key, base URL,
            timeout or retries yourself (the SDK retries twice by default before
            the kernel's own retry policy sees the error).
        name: the model prefix (``openai`` in ``openai:gpt-4o-mini``) and the batch
            provider name stages refer to.
        find_limit: how many of the most recent batches ``find`` looks through.
    """

    max_items = 50_000
    """The most requests OpenAI accepts in one batch file."""

    def __init__(
        self,
        client: openai.OpenAI | None = None,
        *,
        name: str = "openai",
        find_limit: int = 1_000,
    ) -> None:
        if find_limit < 1:
            raise ValueError(f"find_limit: expected >= 1, got {find_limit!r}")
        self.name = name
        self.find_limit = find_limit
        self._client = client

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r})"

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client (built from the environment on first use when none was given).

        Raises:
            ProviderError: no client was given and the SDK cannot build one (no
                ``OPENAI_API_KEY``): not retryable.
        """
        if self._client is None:
            with openai_errors(self.name):
                self._client = openai.OpenAI()
        return self._client

    # -- AIProvider ----------------------------------------------------------------

    def generate(self, request: AIRequest) -> AIResponse:
        """One Chat Completions call: ``system`` first, then the messages;
        ``max_tokens`` as ``max_completion_tokens``; ``json_schema`` as Structured
        Outputs; ``options`` as extra body fields."""
        options = dict(request.options)
        schema = request.json_schema
        with openai_errors(self.name):
            completion = self.client.chat.completions.create(
                model=bare_model(self.name, request.model),
                messages=chat_messages(request),
                max_completion_tokens=given(request.max_tokens),
                temperature=given(request.temperature),
                response_format=openai.omit if schema is None else response_format(schema),
                extra_body=options or None,
            )
        return chat_response(completion)

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        """One Embeddings call; vectors come back in the order of ``request.texts``
        (OpenAI's ``index`` says which text each belongs to). A reply with the wrong
        number of vectors is returned as it is: ``ctx.ai`` records what was paid,
        then refuses it."""
        with openai_errors(self.name):
            answer = self.client.embeddings.create(
                model=bare_model(self.name, request.model),
                input=list(request.texts),
                encoding_format="float",
            )
        ordered = sorted(answer.data, key=lambda item: item.index)
        vectors = tuple(tuple(float(x) for x in item.embedding) for item in ordered)
        usage = getattr(answer, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None)
        return EmbedResponse(
            vectors=vectors,
            usage=Usage(tokens or 0, 0),
            model=answer.model,
            usage_note=NO_USAGE if tokens is None else None,
        )

    # -- BatchProvider ---------------------------------------------------------------

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """Upload one JSONL line per item (``custom_id``, ``POST``,
        ``/v1/chat/completions``, the same body ``generate`` sends), then create the
        batch with ``metadata={"wfk_tag": tag}``; returns the batch id."""
        lines = [
            {
                "custom_id": item.custom_id,
                "method": "POST",
                "url": CHAT_ENDPOINT,
                "body": chat_body(item.request, bare_model(self.name, item.request.model)),
            }
            for item in items
        ]
        with openai_errors(self.name):
            upload = self.client.files.create(
                file=(f"wfk-{tag}.jsonl", encode_jsonl(lines), "application/jsonl"),
                purpose="batch",
            )
            batch = self.client.batches.create(
                input_file_id=upload.id,
                endpoint=CHAT_ENDPOINT,
                completion_window="24h",
                metadata={TAG_KEY: tag},
            )
        return batch.id

    def find(self, tag: str) -> str | Literal[Unknown.UNKNOWN] | None:
        """The id of the newest batch whose metadata holds ``wfk_tag == tag`` among
        the ``find_limit`` most recent ones, else ``None``."""
        with openai_errors(self.name):
            for seen, batch in enumerate(self.client.batches.list(limit=100)):
                if seen >= self.find_limit:
                    break
                if (batch.metadata or {}).get(TAG_KEY) == tag:
                    return batch.id
        return None

    def status(self, batch_id: str) -> BatchStatus:
        """``validating``/``in_progress``/``finalizing``/``cancelling`` are
        ``in_progress``; ``completed`` is ``ended``; ``cancelled``, ``expired`` and
        ``failed`` keep their names. ``request_counts`` become the counts."""
        with openai_errors(self.name):
            batch = self.client.batches.retrieve(batch_id)
        return BatchStatus(state=BATCH_STATES[batch.status], counts=batch_counts(batch))

    def results(self, batch_id: str) -> Mapping[str, ItemSucceeded | ItemFailed]:
        """The items of the batch's output file and error file, by ``custom_id``
        (partial, or empty, for a batch that has not finished)."""
        with openai_errors(self.name):
            batch = self.client.batches.retrieve(batch_id)
            files = [
                (file_id, what)
                for file_id, what in (
                    (batch.output_file_id, "output file"),
                    (batch.error_file_id, "error file"),
                )
                if file_id
            ]
            texts = [(self.client.files.content(file_id).text, what) for file_id, what in files]
        found: dict[str, ItemSucceeded | ItemFailed] = {}
        for text, what in texts:
            for row in decode_jsonl(text, provider=self.name, what=f"{what} of {batch_id}"):
                custom_id, result = batch_line(row, self.name)
                if custom_id:
                    found[custom_id] = result
        return found

    def cancel(self, batch_id: str) -> None:
        """Ask OpenAI to stop the batch; a batch already finished or cancelling is
        left alone, so calling this twice is harmless."""
        with openai_errors(self.name):
            batch = self.client.batches.retrieve(batch_id)
            if batch.status not in FINAL_STATUSES:
                self.client.batches.cancel(batch_id)


__all__ = ["OpenAIProvider"]
