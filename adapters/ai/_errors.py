"""One translation point for provider failures: every SDK or HTTP error becomes a
``kernel.ProviderError`` whose ``retryable`` says whether another attempt may help.

Retryable: rate limits (429), request timeouts (408 and client-side timeouts),
connection errors and 5xx (including Anthropic's 529 "overloaded"). Not
retryable: every other 4xx (a bad request, a bad key, a missing model or batch
fails the same way every time) and errors the SDK raises before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from kernel import ProviderError

RETRYABLE_4XX = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP error status may succeed on a later attempt.

    >>> [is_retryable_status(s) for s in (400, 401, 404, 408, 422, 429, 500, 529)]
    [False, False, False, True, False, True, True, True]
    """
    return status in RETRYABLE_4XX or status >= 500


def api_message(body: object, fallback: str) -> str:
    """The API's own error message from an error body (``{"error": {"message": ...}}``,
    the inner ``error`` object, or plain text), else ``fallback``.

    >>> api_message({"error": {"message": "model not found", "type": "x"}}, "?")
    'model not found'
    >>> api_message({"message": "bad schema"}, "?"), api_message(None, "Error code: 500")
    ('bad schema', 'Error code: 500')
    """
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


def status_error(provider: str, status: int, message: str) -> ProviderError:
    """An HTTP error answer: names the provider, the status and the API's message.

    >>> error = status_error("openai", 429, "Rate limit reached for gpt-4o-mini")
    >>> str(error), error.retryable
    ('openai: HTTP 429 Too Many Requests: Rate limit reached for gpt-4o-mini', True)
    """
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:  # 529 and other non-standard statuses
        phrase = ""
    return ProviderError(
        f"{provider}: HTTP {status}{phrase}: {message}", retryable=is_retryable_status(status)
    )


def timeout_error(provider: str, message: str) -> ProviderError:
    """The request timed out before an answer came: retryable."""
    return ProviderError(f"{provider}: the request timed out: {message}", retryable=True)


def connection_error(provider: str, message: str) -> ProviderError:
    """The API could not be reached: retryable."""
    return ProviderError(f"{provider}: could not reach the API: {message}", retryable=True)


def client_error(provider: str, error: Exception) -> ProviderError:
    """An SDK error raised without an HTTP answer (no API key, an invalid argument, a
    reply the SDK could not read): sending again cannot help."""
    return ProviderError(f"{provider}: {type(error).__name__}: {error}", retryable=False)


__all__ = [
    "api_message",
    "client_error",
    "connection_error",
    "is_retryable_status",
    "status_error",
    "timeout_error",
]
