"""The actions (off unless the app allows them): cancel, rerun-from and signal.

Each is a form POST carrying the app's CSRF token, and each is one kernel
command (``RunCancel``, ``RunRerunFrom``, ``RunSignal``) dispatched in the
thread pool. Success redirects to the run's page (POST, redirect, GET: a
reload does not post again); a refusal shows the run's page with the reason.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from adapters.ui.app import UiState, path_for, ui_state
from adapters.ui.views.pages import show_run
from kernel.commands import Command, RunCancel, RunRerunFrom, RunSignal
from kernel.dispatch import Kernel
from kernel.errors import KernelError

Handler = Callable[[Request], Awaitable[Response]]


class Refused(Exception):
    """An action the dashboard will not perform; ``status_code`` says why."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


MAX_FORM_BYTES = 64 * 1024
"""The largest action form accepted (a signal's payload is most of it)."""

Form = dict[str, str]


async def read_form(request: Request) -> Form:
    """The POST's ``application/x-www-form-urlencoded`` fields (the first of each name).

    The dashboard's forms send nothing else, so no multipart parser is needed.

    Raises:
        Refused: a body of another content type (415), or over :data:`MAX_FORM_BYTES` (413).
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(f"413: a form of more than {MAX_FORM_BYTES} bytes", 413)
    if body and kind != "application/x-www-form-urlencoded":
        raise Refused(
            f"415: expected a form (application/x-www-form-urlencoded), got {kind!r}", 415
        )
    fields: Form = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


async def checked_form(request: Request, ui: UiState) -> Form:
    """The POST's form, once its CSRF token and origin are checked.

    Raises:
        Refused: actions are off (405), or the token is missing or wrong, or the
            request came from another origin (403).
    """
    if not ui.allow_actions:
        raise Refused(
            "405: actions are off: this dashboard only reads (start it with --allow-actions)",
            405,
        )
    origin = request.headers.get("origin")
    # Browsers send Origin with every POST; behind a TLS proxy the scheme differs,
    # the host does not.
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Refused(f"403: a form of {origin!r} cannot act on this dashboard", 403)
    form = await read_form(request)
    given = form.get("csrf_token")
    if not isinstance(given, str) or not given:
        raise Refused("403: CSRF token missing: reload the run's page and try again", 403)
    if not hmac.compare_digest(given.encode(), ui.csrf_token.encode()):
        raise Refused("403: CSRF token wrong (the dashboard restarted?): reload the page", 403)
    return form


def field(form: Form, name: str, *, required: bool = True) -> str | None:
    """A text field of the form, stripped; ``None`` if it is empty and not required.

    Raises:
        Refused: a required field is missing or empty (400).
    """
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise Refused(f"{name}: expected a non-empty value, got {value!r}", 400)
        return None
    return text


def action(
    build: Callable[[str, Form], Command[Any]],
    done: Callable[[Any], str],
) -> Handler:
    """An endpoint that builds one command from the form and dispatches it.

    ``done`` names the notice of the run's page for the command's result.
    """

    async def endpoint(request: Request) -> Response:
        ui = ui_state(request)
        run_id = request.path_params["run_id"]
        try:
            form = await checked_form(request, ui)
            try:
                command = build(run_id, form)
            except ValueError as exc:  # a command's own checks name the field
                raise Refused(str(exc), 400) from exc
            kernel = ui.kernel
            assert kernel is not None  # create_app refuses actions without one
            result = await run_in_threadpool(_dispatch, kernel, command)
            notice = done(result)
        except Refused as refused:
            if refused.status_code in (403, 405, 413, 415):
                return PlainTextResponse(
                    refused.message,
                    status_code=refused.status_code,
                    headers={"Allow": ""} if refused.status_code == 405 else None,
                )
            return await show_run(request, run_id, refused.message, refused.status_code)
        url = f"{path_for(request, 'run', run_id=run_id)}?{urlencode({'done': notice})}"
        return RedirectResponse(url, status_code=303)

    return endpoint


def _dispatch(kernel: Kernel, command: Command[Any]) -> Any:
    try:
        return kernel.dispatch(command)
    except KernelError as exc:
        raise Refused(exc.message, 409) from exc


def _cancel(run_id: str, form: Form) -> RunCancel:
    reason = field(form, "reason", required=False) or "cancelled from the dashboard"
    return RunCancel(workflow_run_id=run_id, reason=reason)


def _cancelled(result: Any) -> str:
    if not result.cancelled:
        raise Refused("the run already ended: nothing to cancel", 409)
    return "cancel"


def _rerun(run_id: str, form: Form) -> RunRerunFrom:
    stage_id = field(form, "from_stage")
    assert stage_id is not None
    return RunRerunFrom(workflow_run_id=run_id, from_stage_id=stage_id)


def _signal(run_id: str, form: Form) -> RunSignal:
    name = field(form, "name")
    assert name is not None
    text = field(form, "payload", required=False) or "null"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(
            f"payload: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", 400
        ) from exc
    return RunSignal(run_id, name, payload)


cancel = action(_cancel, _cancelled)
rerun = action(_rerun, lambda _: "rerun")
signal = action(
    _signal, lambda result: "signal-delivered" if result.delivered else "signal-buffered"
)
