"""The provider ports (SPEC §11, §12): what an AI or batch adapter implements.

They are re-exported from :mod:`kernel.ports`; they live here so that stage
code (``ctx.ai``) can name them without importing the store ports.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from kernel.ai.batch import BatchItem, BatchState, BatchStatus, ItemFailed, ItemSucceeded
from kernel.ai.types import AIRequest, AIResponse, EmbedRequest, EmbedResponse


class Unknown(enum.Enum):
    """ "This provider cannot tell": what :meth:`BatchProvider.find` returns when it
    has no way to look a batch up by its tag."""

    UNKNOWN = "UNKNOWN"


UNKNOWN: Literal[Unknown.UNKNOWN] = Unknown.UNKNOWN
"""The single member of :class:`Unknown`."""


@runtime_checkable
class AIProvider(Protocol):
    """Sends one generation or embedding request to a model provider.

    Implementations raise :class:`kernel.ProviderError` for failures, with
    ``retryable`` true for rate limits, timeouts and 5xx answers.
    """

    name: str
    """The prefix of this provider's models: ``openai`` in ``openai:gpt-4o-mini``."""

    def generate(self, request: AIRequest) -> AIResponse:
        """Generate a reply to ``request`` (whose ``model`` is the bare model name)."""
        ...

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        """One vector per text of ``request``, in order."""
        ...


@runtime_checkable
class BatchProvider(Protocol):
    """A provider's batch API: submit many requests at once, poll, fetch results."""

    name: str
    """The name ``define_llm_batch_stage(provider=...)`` refers to, and the model prefix."""

    max_items: int
    """The most requests one batch may hold."""

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """Submit ``items`` (bare model names) as one batch labelled ``tag``; its id."""
        ...

    def find(self, tag: str) -> str | Literal[Unknown.UNKNOWN] | None:
        """The id of the batch submitted under ``tag``, ``None`` if there is none, or
        :data:`UNKNOWN` if this provider cannot look batches up by tag."""
        ...

    def status(self, batch_id: str) -> BatchStatus:
        """Where the batch is: its state and item counts."""
        ...

    def results(self, batch_id: str) -> Mapping[str, ItemSucceeded | ItemFailed]:
        """Per-item results by ``custom_id`` (partial for a batch that did not end)."""
        ...

    def cancel(self, batch_id: str) -> None:
        """Ask the provider to stop the batch (idempotent)."""
        ...


__all__ = ["UNKNOWN", "AIProvider", "BatchProvider", "BatchState", "Unknown"]
