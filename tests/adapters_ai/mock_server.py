"""What both providers' in-memory APIs share: a log of requests, scripted failures
answered first, routing by method and path, and what tests read back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx2

Answer = httpx2.Response | Exception
"""A scripted reply: a response, or an exception the transport raises (a timeout)."""

Route = tuple[str, re.Pattern[str], Callable[..., httpx2.Response]]
"""``(method, path pattern, answer)``; the pattern's named groups become arguments."""


class MockServer:
    """The base of the providers' mock servers: subclasses set ``_routes`` and say
    how their API answers an unknown path (:meth:`not_found`)."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.failures: list[Answer] = []
        """Answered, in order, before any route: rate limits, 5xx, timeouts."""
        self._routes: list[Route] = []

    def not_found(self, request: httpx2.Request) -> httpx2.Response:
        raise NotImplementedError  # pragma: no cover - each provider says it its way

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        for method, path, answer in self._routes:
            found = path.fullmatch(request.url.path)
            if found and request.method == method:
                return answer(request, **found.groupdict())
        return self.not_found(request)

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies sent to ``path``, in order."""
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def calls(self) -> list[str]:
        """``METHOD path`` of every request, in order."""
        return [f"{r.method} {r.url.path}" for r in self.requests]
