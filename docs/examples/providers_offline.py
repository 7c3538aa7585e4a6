"""Provider adapters, offline: the real SDK client over an ``httpx2.MockTransport``
that answers like the provider's documented API."""

from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from adapters.ai.openai import OpenAIProvider
from kernel import AIRequest, Message, ProviderError, Usage


# --8<-- [start:mock]
def chat_completion(request: httpx2.Request) -> httpx2.Response:
    """POST /v1/chat/completions, answered as OpenAI documents it."""
    assert (request.method, request.url.path) == ("POST", "/v1/chat/completions")
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello!"},
            }
        ],
        "usage": {
            "prompt_tokens": 1_000,
            "completion_tokens": 300,
            "total_tokens": 1_300,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 100},
        },
    }
    return httpx2.Response(200, json=body)


def offline(handler: Callable[[httpx2.Request], httpx2.Response]) -> OpenAIProvider:
    """The adapter over the real SDK, its HTTP answered by ``handler``."""
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return OpenAIProvider(openai.OpenAI(api_key="test", http_client=http, max_retries=0))


def test_usage_is_normalised() -> None:
    provider = offline(chat_completion)
    response = provider.generate(AIRequest("gpt-4o-mini", [Message("user", "Hi")]))
    assert response.text == "Hello!"
    # cached tokens stay in the input; reasoning tokens leave the output
    assert response.usage == Usage(
        input_tokens=1_000, output_tokens=200, cached_input_tokens=400, reasoning_tokens=100
    )
    # --8<-- [end:mock]


# --8<-- [start:errors]
def rate_limited(request: httpx2.Request) -> httpx2.Response:
    error = {"message": "Rate limit reached for gpt-4o-mini", "code": "rate_limit_exceeded"}
    return httpx2.Response(429, json={"error": error})


def test_a_rate_limit_is_a_retryable_provider_error() -> None:
    provider = offline(rate_limited)
    with pytest.raises(ProviderError) as raised:
        provider.generate(AIRequest("gpt-4o-mini", [Message("user", "Hi")]))
    assert raised.value.retryable  # the stage's retry policy decides what happens next
    assert str(raised.value) == (
        "openai: HTTP 429 Too Many Requests: Rate limit reached for gpt-4o-mini"
    )
    # --8<-- [end:errors]
