"""AI calls: request and response records, prices and errors (SPEC §11, §12)."""

from kernel.ai.batch import (
    BatchItem,
    BatchResults,
    BatchState,
    BatchStatus,
    ItemFailed,
    ItemSucceeded,
)
from kernel.ai.config import AIConfig
from kernel.ai.errors import (
    AINotConfiguredError,
    AIOutputError,
    BudgetExceededError,
    ProviderError,
    UnpricedModelError,
)
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.ai.ports import UNKNOWN, AIProvider, BatchProvider, Unknown
from kernel.ai.prices import ModelPrice, PriceTable, call_cost
from kernel.ai.types import (
    AIRequest,
    AIResponse,
    EmbedRequest,
    EmbedResponse,
    EmbedResult,
    Message,
    ObjectResult,
    TextResult,
    Usage,
    UsageKind,
)

__all__ = [
    "UNKNOWN",
    "AIConfig",
    "AIProvider",
    "BatchCancel",
    "BatchItem",
    "BatchProvider",
    "BatchResults",
    "BatchState",
    "BatchStatus",
    "ItemFailed",
    "ItemSucceeded",
    "Unknown",
    "UsageEntry",
    "AINotConfiguredError",
    "AIOutputError",
    "AIRequest",
    "AIResponse",
    "BudgetExceededError",
    "EmbedRequest",
    "EmbedResponse",
    "EmbedResult",
    "Message",
    "ModelPrice",
    "ObjectResult",
    "PriceTable",
    "ProviderError",
    "TextResult",
    "UnpricedModelError",
    "Usage",
    "UsageKind",
    "call_cost",
]
