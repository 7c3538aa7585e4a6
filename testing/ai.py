"""``FakeAIProvider``: a scripted model provider for tests (SPEC §12.1). It calls no one."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence

from kernel.ai.errors import ProviderError
from kernel.ai.types import AIRequest, AIResponse, EmbedRequest, EmbedResponse, Usage

Reply = str | AIResponse
"""A scripted reply: a text (answered with the fake's ``usage``) or a whole response."""

Replies = Sequence[Reply] | Callable[[AIRequest], Reply]

DEFAULT_USAGE = Usage(10, 5)
"""What each text reply uses unless the fake is given another ``usage``."""

EMBEDDING_SIZE = 8
"""How many numbers each fake embedding has."""


class FakeAIProvider:
    """Answers generation requests from a script and embeds texts deterministically.

    ``replies`` is a sequence of ``str`` or ``AIResponse``, given out in order,
    or a function of the request returning either. A ``str`` reply is
    answered with ``usage``; an ``AIResponse`` is returned as it is. When a
    sequence runs out the next request raises a non-retryable
    :class:`~kernel.ProviderError` naming this provider. ``requests`` lists
    every request it was sent, embeddings included, in order.

    >>> from kernel import Message
    >>> fake = FakeAIProvider(replies=["Hello"])
    >>> fake.generate(AIRequest("any-model", [Message("user", "Hi")])).text
    'Hello'
    >>> fake.generate(AIRequest("any-model", [Message("user", "Again")]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kernel.ai.errors.ProviderError: FakeAIProvider 'fake' has no reply left for request 2 ...
    """

    def __init__(
        self,
        name: str = "fake",
        replies: Replies = (),
        usage: Usage = DEFAULT_USAGE,
    ) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"name: expected a non-empty str without ':', got {name!r}")
        if not callable(replies) and (
            isinstance(replies, str) or not isinstance(replies, Sequence)
        ):
            raise TypeError(
                f"replies: expected a list of str or AIResponse, or a function of the "
                f"request, got {replies!r}"
            )
        if not isinstance(usage, Usage):
            raise TypeError(f"usage: expected a Usage, got {usage!r}")
        self.name = name
        self.usage = usage
        self.requests: list[AIRequest | EmbedRequest] = []
        self._replies = replies
        self._given = 0
        # Stages of parallel groups may call one fake from several threads.
        self._lock = threading.Lock()

    def generate(self, request: AIRequest) -> AIResponse:
        """The next scripted reply to ``request``."""
        with self._lock:
            self.requests.append(request)
            number = sum(1 for seen in self.requests if isinstance(seen, AIRequest))
            if callable(self._replies):
                reply = self._replies(request)
            elif self._given < len(self._replies):
                reply = self._replies[self._given]
                self._given += 1
            else:
                raise ProviderError(
                    f"FakeAIProvider {self.name!r} has no reply left for request {number} "
                    f"(it was given {len(self._replies)})",
                    retryable=False,
                )
        if isinstance(reply, AIResponse):
            return reply
        if not isinstance(reply, str):
            raise TypeError(
                f"FakeAIProvider {self.name!r}: a reply must be a str or an AIResponse, "
                f"got {reply!r}"
            )
        return AIResponse(
            text=reply,
            usage=self.usage,
            model=request.model,
            finish_reason="stop",
            provider_id=f"{self.name}-{number}",
        )

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        """A vector of :data:`EMBEDDING_SIZE` numbers in [-1, 1] per text, the same
        for the same text every time; ``usage.input_tokens`` per text, no output."""
        with self._lock:
            self.requests.append(request)
        vectors = tuple(_vector(text) for text in request.texts)
        used = Usage(self.usage.input_tokens * len(request.texts), 0)
        return EmbedResponse(vectors=vectors, usage=used, model=request.model)

    @property
    def prompts(self) -> list[str]:
        """The last message of each generation request, in order (what was asked)."""
        return [
            request.messages[-1].content
            for request in self.requests
            if isinstance(request, AIRequest) and request.messages
        ]


def _vector(text: str) -> tuple[float, ...]:
    digest = hashlib.sha256(text.encode()).digest()
    return tuple(round(byte / 127.5 - 1, 6) for byte in digest[:EMBEDDING_SIZE])


__all__ = ["EMBEDDING_SIZE", "FakeAIProvider"]
