"""The errors of AI calls (SPEC §11, §12.1): all ``KernelError``s.

``ProviderError`` is what provider adapters raise; ``retryable`` says whether
another attempt may succeed (rate limits, timeouts, 5xx) or not (other 4xx).
The other four are never retried: sending the same call again cannot help.
"""

from __future__ import annotations

from decimal import Decimal

from kernel.errors import KernelError


class ProviderError(KernelError, RuntimeError):
    """A provider refused or failed a call.

    >>> ProviderError("429 Too Many Requests", retryable=True).retryable
    True
    """

    code = "PROVIDER_ERROR"

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnpricedModelError(KernelError, LookupError):
    """A call to a model the price table does not know: refused before sending."""

    code = "UNPRICED_MODEL"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no price in the PriceTable: add a ModelPrice for it, "
            "or build the table with allow_unpriced=True"
        )
        self.model = model


class AIOutputError(KernelError, ValueError):
    """``generate_object`` got no valid object after every repair try."""

    code = "AI_OUTPUT_INVALID"


class AINotConfiguredError(KernelError, RuntimeError):
    """A method of ``ctx.ai`` was called on a kernel built without ``ai=AIConfig(...)``."""

    code = "AI_NOT_CONFIGURED"

    def __init__(self) -> None:
        super().__init__(
            "ctx.ai is not configured: pass ai=AIConfig(providers=[...], prices=PriceTable(...)) "
            "to create_kernel or create_test_kernel"
        )


class BudgetExceededError(KernelError, RuntimeError):
    """The run has spent its budget: the next call is not sent."""

    code = "BUDGET_EXCEEDED"

    def __init__(self, run_id: str, spent: Decimal, budget: Decimal) -> None:
        super().__init__(
            f"run {run_id!r} has spent {spent} of its budget of {budget}: the call was not sent"
        )
        self.run_id = run_id
        self.spent = spent
        self.budget = budget


class InvalidAICallError(KernelError, ValueError, TypeError):
    """A ``ctx.ai`` call with arguments no provider should get (a model without a
    known ``provider:`` prefix, both or neither of ``prompt`` and ``messages``, a
    non-attrs ``output``): nothing is sent, and it is never retried, since the same
    code would make the same call. It is a ``ValueError`` and a ``TypeError``."""

    code = "INVALID_AI_CALL"


class InvalidBatchError(KernelError, ValueError):
    """An LLM batch stage's ``build`` returned items no provider should get (none,
    duplicate ``custom_id``s, too many, a model of another provider): never retried."""

    code = "INVALID_BATCH"


class BatchSubmitUncertainError(KernelError, RuntimeError):
    """An attempt found a batch intent without a batch id, and the provider cannot tell
    whether that batch was submitted: never retried, since paying twice is worse than
    asking an operator."""

    code = "BATCH_SUBMIT_UNCERTAIN"

    def __init__(self, provider: str, tag: str) -> None:
        super().__init__(
            f"a batch may have been submitted to {provider!r} under tag {tag!r} by an "
            f"attempt that stopped before it recorded the batch id, and {provider!r} cannot "
            "look batches up by tag: check the provider's console, then rerun the stage"
        )
        self.provider = provider
        self.tag = tag
