"""``AnthropicProvider``: ``ctx.ai`` and LLM batch stages over Anthropic's official SDK.

Generation uses the Messages API, batches the Message Batches API
(``messages.batches``). Anthropic has no embeddings API and no batch metadata:
``embed`` refuses (not retryable) and ``find`` answers ``UNKNOWN``, so a batch
stage whose submission is uncertain stops with ``BATCH_SUBMIT_UNCERTAIN`` rather
than risk paying twice. ``adapters.ai._anthropic_wire`` holds the mapping rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, cast

import anthropic
from anthropic.types.messages.batch_create_params import Request

from adapters.ai._anthropic_wire import (
    DEFAULT_MAX_TOKENS,
    anthropic_errors,
    bare_model,
    batch_counts,
    batch_result,
    batch_state,
    extra_fields,
    message_body,
    message_response,
    output_config,
    system_prompt,
    turns,
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
    ProviderError,
)
from kernel.ports import UNKNOWN, Unknown


class AnthropicProvider:
    """Anthropic as an ``AIProvider`` and a ``BatchProvider``.

    Args:
        client: the SDK client to use. ``None`` builds ``anthropic.Anthropic()`` on
            the first call, which reads ``ANTHROPIC_API_KEY`` (and
            ``ANTHROPIC_BASE_URL``) from the environment: importing and constructing
            need no key. Pass a client to set the key, base URL, timeout or
            retries yourself.
        name: the model prefix (``anthropic`` in ``anthropic:claude-haiku-4-5``)
            and the batch provider name stages refer to.
        default_max_tokens: the ``max_tokens`` sent when a request sets none; the
            Messages API requires one (1024 unless you say otherwise).
    """

    max_items = 100_000
    """The most requests Anthropic accepts in one Message Batch."""

    def __init__(
        self,
        client: anthropic.Anthropic | None = None,
        *,
        name: str = "anthropic",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if default_max_tokens < 1:
            raise ValueError(f"default_max_tokens: expected >= 1, got {default_max_tokens!r}")
        self.name = name
        self.default_max_tokens = default_max_tokens
        self._client = client

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r})"

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client (built from the environment on first use when none was given).

        Raises:
            ProviderError: no client was given and the SDK cannot build one: not
                retryable.
        """
        if self._client is None:
            with anthropic_errors(self.name):
                client = anthropic.Anthropic()
            # Without credentials the SDK raises a bare TypeError at the first request;
            # say what is missing instead, once, before anything is sent.
            if client.api_key is None and client.auth_token is None and client.credentials is None:
                raise ProviderError(
                    f"{self.name}: no Anthropic credentials: set ANTHROPIC_API_KEY, or pass "
                    "AnthropicProvider(anthropic.Anthropic(api_key=...))",
                    retryable=False,
                )
            self._client = client
        return self._client

    # -- AIProvider ----------------------------------------------------------------

    def generate(self, request: AIRequest) -> AIResponse:
        """One Messages call: ``system`` (and any ``system`` messages) as the
        top-level system prompt; ``max_tokens`` defaulting to ``default_max_tokens``;
        ``json_schema`` as structured output (``output_config.format``);
        ``temperature`` and ``options`` as extra body fields. The text is the
        reply's text blocks, joined."""
        system = system_prompt(request)
        schema = request.json_schema
        extra = extra_fields(request)
        max_tokens = self.default_max_tokens if request.max_tokens is None else request.max_tokens
        with anthropic_errors(self.name):
            message = self.client.messages.create(
                model=bare_model(self.name, request.model),
                max_tokens=max_tokens,
                messages=turns(request),
                system=anthropic.omit if system is None else system,
                output_config=anthropic.omit if schema is None else output_config(dict(schema)),
                extra_body=extra or None,
            )
        return message_response(message)

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        """Always raises: Anthropic has no embeddings API.

        Raises:
            ProviderError: not retryable.
        """
        raise ProviderError(
            f"{self.name}: Anthropic has no embeddings API; embed {request.model!r} "
            "with another provider (OpenAI's text-embedding models, for one)",
            retryable=False,
        )

    # -- BatchProvider ---------------------------------------------------------------

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """One Message Batch with a request per item (``custom_id`` and the body
        ``generate`` would send); returns the batch id. ``tag`` is not sent: Message
        Batches carry no metadata."""
        requests = [
            cast(
                Request,
                {
                    "custom_id": item.custom_id,
                    "params": message_body(
                        item.request,
                        bare_model(self.name, item.request.model),
                        self.default_max_tokens,
                    ),
                },
            )
            for item in items
        ]
        with anthropic_errors(self.name):
            batch = self.client.messages.batches.create(requests=requests)
        return batch.id

    def find(self, tag: str) -> str | Literal[Unknown.UNKNOWN] | None:
        """``UNKNOWN``: Message Batches have no metadata to look a tag up by."""
        return UNKNOWN

    def status(self, batch_id: str) -> BatchStatus:
        """``in_progress``/``canceling`` are ``in_progress``; an ended batch is
        ``cancelled`` (a cancel was asked for), ``expired`` (some requests expired)
        or ``ended``. Counts: ``succeeded``, ``failed`` (errored, canceled and
        expired requests), ``in_progress`` (processing)."""
        with anthropic_errors(self.name):
            batch = self.client.messages.batches.retrieve(batch_id)
        return BatchStatus(state=batch_state(batch), counts=batch_counts(batch))

    def results(self, batch_id: str) -> Mapping[str, ItemSucceeded | ItemFailed]:
        """Every request's result by ``custom_id``, read from the batch's
        ``results_url`` (empty while the batch has not ended: Anthropic publishes
        results only then)."""
        found: dict[str, ItemSucceeded | ItemFailed] = {}
        with anthropic_errors(self.name):
            batch = self.client.messages.batches.retrieve(batch_id)
            if batch.results_url is None:
                return found
            try:
                for line in self.client.messages.batches.results(batch_id):
                    found[line.custom_id] = batch_result(line, self.name)
            except ValueError as invalid:  # a results line that is not JSON
                raise ProviderError(
                    f"{self.name}: the results of {batch_id} are not JSON Lines: {invalid}",
                    retryable=False,
                ) from invalid
        return found

    def cancel(self, batch_id: str) -> None:
        """Ask Anthropic to stop the batch; a batch already ended or canceling is left
        alone, so calling this twice is harmless."""
        with anthropic_errors(self.name):
            batch = self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "in_progress":
                self.client.messages.batches.cancel(batch_id)


__all__ = ["AnthropicProvider"]
