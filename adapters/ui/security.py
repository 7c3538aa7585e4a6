"""Who may talk to the dashboard: the bind check, the token, allowed hosts, security headers.

* Bound to a loopback address, the dashboard is for this machine's users:
  no token needed. Binding any other address needs a token
  (:func:`check_binding`).
* With a token, every request must carry it: ``Authorization: Bearer T``,
  or the cookie that ``?token=T`` sets once (``HttpOnly``,
  ``SameSite=Strict``), so a browser needs the token in a URL only once.
* ``allowed_hosts`` refuses requests whose ``Host`` is another name (a web
  page on another site that resolves its own name to 127.0.0.1, "DNS
  rebinding", then reads the dashboard as its own origin).
* Every response forbids framing, inline scripts and sniffing, and sends a
  referrer to the dashboard only (a URL may carry the token; ``no-referrer``
  would make browsers send ``Origin: null`` with the action forms).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_COOKIE = "wfk_ui_token"
TOKEN_MIN_LENGTH = 16
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=-]+")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Sent with every response. Inline ``style`` attributes are allowed (the timeline's bar
widths); inline scripts are not, so markup that slipped through escaping could not run."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """Refuse a token too short to guess at.

    Raises:
        ValueError: the token has fewer than :data:`TOKEN_MIN_LENGTH` characters, or
            characters a cookie cannot carry as they are.
    """
    if token is None:
        return
    if len(token) < TOKEN_MIN_LENGTH:
        raise ValueError(
            f"token: expected at least {TOKEN_MIN_LENGTH} characters, got {len(token)}"
        )
    if not TOKEN_CHARACTERS.fullmatch(token):
        raise ValueError(
            "token: expected letters, digits and -._~+/= only (it goes in a cookie and a URL), "
            f"got a token with {sorted(set(TOKEN_CHARACTERS.sub('', token)))}"
        )


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token.

    Raises:
        ValueError: ``host`` is not a loopback address and there is no token,
            or the token is too short.
    """
    check_token(token)
    if token is None and not is_loopback(host):
        raise ValueError(
            f"host {host!r} is not a loopback address: anyone who can reach it could read "
            "every run, so binding it needs --token (or $WFK_UI_TOKEN) of at least "
            f"{TOKEN_MIN_LENGTH} characters; or bind 127.0.0.1"
        )


def loopback_hosts(host: str, port: int) -> list[str]:
    """The ``Host`` names a browser on this machine uses to reach ``host:port``."""
    names = {*LOOPBACK_NAMES, host.strip("[]")}
    return sorted(names | {f"{name}:{port}" for name in names} | {f"[::1]:{port}", "[::1]"})


class Guard:
    """ASGI middleware: allowed hosts, the token (and its cookie), security headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_hosts: Collection[str] | None,
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            response = PlainTextResponse(
                f"unknown host {host!r}: open the dashboard as http://127.0.0.1:PORT/",
                status_code=400,
            )
            await response(scope, receive, self._headers(send, set_cookie=False))
            return
        set_cookie = False
        if self.token is not None:
            if self._carries_token(request):
                pass
            elif self._matches(request.query_params.get("token")):
                set_cookie = True  # the one visit with ?token=: from now on, the cookie
            else:
                response = PlainTextResponse(
                    "401: this dashboard needs its token: send 'Authorization: Bearer TOKEN', "
                    "or open it once as /?token=TOKEN",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, self._headers(send, set_cookie=False))
                return
        await self.app(scope, receive, self._headers(send, set_cookie=set_cookie))

    def _matches(self, given: str | None) -> bool:
        assert self.token is not None
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _carries_token(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(value.strip()):
            return True
        return self._matches(request.cookies.get(TOKEN_COOKIE))

    def _headers(self, send: Send, *, set_cookie: bool) -> Send:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if set_cookie and self.token is not None:
                    headers.append(
                        "set-cookie",
                        f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict",
                    )
            await send(message)

        return with_headers
