"""Every SDK or HTTP failure becomes ``kernel.ProviderError``: retryable for rate
limits, timeouts, connection errors and 5xx, not for other 4xx; the message names
the provider, the status and the API's own message. Both adapters, same rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from adapters.ai.anthropic import AnthropicProvider
from adapters.ai.openai import OpenAIProvider
from kernel import AIRequest, BatchItem, Message, ProviderError
from tests.adapters_ai.anthropic_server import AnthropicServer, anthropic_error
from tests.adapters_ai.openai_server import OpenAIServer, openai_error

REQUEST = AIRequest("some-model", [Message("user", "Hi")])


class Stand:
    """One provider's adapter, its stand-in server and its way of writing errors."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: OpenAIServer | AnthropicServer
        self.provider: OpenAIProvider | AnthropicProvider
        self.error: Callable[[int, str], httpx2.Response]
        if name == "openai":
            self.server = OpenAIServer()
            self.provider = OpenAIProvider(self.server.client())
            self.error = openai_error
        else:
            self.server = AnthropicServer()
            self.provider = AnthropicProvider(self.server.client())
            self.error = anthropic_error

    def fail_next(self, answer: httpx2.Response | Exception) -> None:
        self.server.failures.append(answer)


@pytest.fixture(params=["openai", "anthropic"])
def stand(request: pytest.FixtureRequest) -> Stand:
    return Stand(request.param)


@pytest.mark.parametrize(
    "status,retryable",
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_an_http_error_is_retryable_only_for_rate_limits_timeouts_and_5xx(
    stand: Stand, status: int, retryable: bool
) -> None:
    stand.fail_next(stand.error(status, "the API's own words"))
    with pytest.raises(ProviderError) as raised:
        stand.provider.generate(REQUEST)
    assert raised.value.retryable is retryable
    assert str(raised.value).startswith(f"{stand.name}: HTTP {status} ")
    assert str(raised.value).endswith(": the API's own words")


def test_a_rate_limit_message_reads_well(stand: Stand) -> None:
    stand.fail_next(stand.error(429, "Rate limit reached for requests"))
    with pytest.raises(ProviderError, match="HTTP 429 Too Many Requests: Rate limit reached"):
        stand.provider.generate(REQUEST)


def test_anthropics_overloaded_529_is_retryable() -> None:
    stand = Stand("anthropic")
    stand.fail_next(anthropic_error(529, "Overloaded"))
    with pytest.raises(ProviderError) as raised:
        stand.provider.generate(REQUEST)
    assert raised.value.retryable is True
    assert str(raised.value) == "anthropic: HTTP 529: Overloaded"


def _timeout(request: httpx2.Request) -> Exception:
    return httpx2.ReadTimeout("timed out", request=request)


def _refused(request: httpx2.Request) -> Exception:
    return httpx2.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "make,words",
    [(_timeout, "the request timed out"), (_refused, "could not reach the API")],
    ids=["timeout", "connection-refused"],
)
def test_a_timeout_or_a_connection_error_is_retryable(
    stand: Stand, make: Callable[[httpx2.Request], Exception], words: str
) -> None:
    request = httpx2.Request("POST", "https://example.invalid")
    stand.fail_next(make(request))
    with pytest.raises(ProviderError) as raised:
        stand.provider.generate(REQUEST)
    assert raised.value.retryable is True
    assert str(raised.value).startswith(f"{stand.name}: {words}: ")


def test_a_plain_timeout_exception_is_retryable(stand: Stand) -> None:
    """``httpx2.TimeoutException``, the base of every timeout, raised by the transport."""
    stand.fail_next(httpx2.TimeoutException("no answer in time"))
    with pytest.raises(ProviderError) as raised:
        stand.provider.generate(REQUEST)
    assert raised.value.retryable is True


def _batch_calls(stand: Stand) -> list[Callable[[], Any]]:
    provider = stand.provider
    item = BatchItem("a", REQUEST)
    return [
        lambda: provider.submit([item], "tag"),
        lambda: provider.status("batch_x"),
        lambda: provider.results("batch_x"),
        lambda: provider.cancel("batch_x"),
    ]


def test_batch_calls_translate_errors_the_same_way(stand: Stand) -> None:
    for call in _batch_calls(stand):
        stand.fail_next(stand.error(500, "server trouble"))
        with pytest.raises(ProviderError) as raised:
            call()
        assert raised.value.retryable is True, call
        assert "HTTP 500" in str(raised.value)


def test_an_unknown_batch_is_not_retryable(stand: Stand) -> None:
    with pytest.raises(ProviderError) as raised:
        stand.provider.status("batch_missing")
    assert raised.value.retryable is False
    assert "HTTP 404" in str(raised.value)
