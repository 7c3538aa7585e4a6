"""The records of LLM batch stages (SPEC §12): items, per-item results, status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field, frozen

from kernel.ai.types import AIRequest, AIResponse

BatchState = Literal["in_progress", "ended", "cancelled", "expired", "failed"]
"""Where a provider batch is; only ``in_progress`` is not final."""


@frozen
class BatchItem:
    """One request of a batch; ``custom_id`` names its result and must be unique.
    ``request.model`` is ``provider:model`` with the stage's batch provider as prefix."""

    custom_id: str
    request: AIRequest


@frozen
class ItemSucceeded:
    """A batch item the provider answered."""

    response: AIResponse


@frozen
class ItemFailed:
    """A batch item the provider did not answer: ``code`` says why
    (``BATCH_EXPIRED`` and the like for items missing from a batch that stopped)."""

    code: str
    message: str


@frozen
class BatchStatus:
    """A provider batch's state and item counts (``succeeded``, ``failed``,
    ``in_progress``)."""

    state: BatchState
    counts: Mapping[str, int] = field(factory=dict)


@frozen
class BatchResults:
    """What ``collect`` receives: every ``custom_id`` the stage built, with its result."""

    items: Mapping[str, ItemSucceeded | ItemFailed]

    @property
    def succeeded(self) -> dict[str, AIResponse]:
        """The responses of the items that succeeded, by ``custom_id``."""
        items = self.items.items()
        return {key: item.response for key, item in items if isinstance(item, ItemSucceeded)}

    @property
    def failed(self) -> dict[str, ItemFailed]:
        """The items that failed for good, by ``custom_id``."""
        return {key: item for key, item in self.items.items() if isinstance(item, ItemFailed)}


__all__ = ["BatchItem", "BatchResults", "BatchState", "BatchStatus", "ItemFailed", "ItemSucceeded"]
