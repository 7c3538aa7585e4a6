"""The dashboard's ASGI app: :func:`create_app` over any store.

Pages render on the server (Jinja2, autoescaping on) and work without
JavaScript; only a run's live updates use a few lines of script
(``static/live.js``, an ``EventSource`` on the run's stream). Every store
call blocks, so endpoints run them in Starlette's thread pool.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from pathlib import Path
from typing import Any

import jinja2
from attrs import frozen
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from adapters.ui.security import Guard, check_token
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.status import Status

HERE = Path(__file__).parent

STATUSES = [str(status) for status in Status]


@frozen
class UiState:
    """What every endpoint needs; one per app (``request.app.state.ui``)."""

    store: Store
    kernel: Kernel | None
    allow_actions: bool
    csrf_token: str
    """Put in every action form and checked on every POST: another site's page can
    make a browser post here, but cannot read a page to learn the token."""
    templates: Jinja2Templates
    poll_interval: float
    """Seconds between two reads of the store by a run's live stream."""

    def workflow_ids(self) -> list[str]:
        """The workflows the app (``--app``) registers; empty without one."""
        if self.kernel is None:
            return []
        return sorted(self.kernel.registry.workflow_ids())


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page: ``template`` with ``context`` and what every page shows."""
    ui = ui_state(request)
    shared = {
        "allow_actions": ui.allow_actions,
        "csrf_token": ui.csrf_token if ui.allow_actions else "",
        "statuses": STATUSES,
    }
    return ui.templates.TemplateResponse(
        request, template, {**shared, **context}, status_code=status_code
    )


def path_for(request: Request, name: str, /, **params: Any) -> str:
    """The path of a route, behind the ``root_path`` a proxy mounts the dashboard at.

    Paths, not absolute URLs: links and redirects then work whatever host
    name and scheme a reverse proxy shows the browser.
    """
    return str(request.scope.get("root_path", "")) + str(request.app.url_path_for(name, **params))


@jinja2.pass_context
def _path_for(context: Any, name: str, /, **params: Any) -> str:
    return path_for(context["request"], name, **params)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped, whatever the template's name
        undefined=jinja2.StrictUndefined,
    )
    env.globals["path_for"] = _path_for
    return Jinja2Templates(env=env)


def create_app(
    store: Store,
    *,
    kernel: Kernel | None = None,
    token: str | None = None,
    allow_actions: bool = False,
    allowed_hosts: Collection[str] | None = None,
    poll_interval: float = 0.3,
) -> Starlette:
    """The dashboard over ``store``.

    Args:
        store: any store; the dashboard reads it through the ``Store`` port only.
        kernel: a kernel over the same store and the workflows; needed for actions.
        token: every request must carry it (``Authorization: Bearer`` or the cookie
            ``?token=`` sets); ``None``: no token (bind to a loopback address only).
        allow_actions: show cancel, rerun-from and signal buttons and accept their
            POSTs (each with the app's CSRF token); off: the dashboard only reads.
        allowed_hosts: the only ``Host`` header values accepted (``None``: any).
        poll_interval: seconds between two store reads of a run's live stream.

    Raises:
        ValueError: actions without a kernel, a bad token or poll interval.
    """
    from adapters.ui.views import actions, live, pages

    if allow_actions and kernel is None:
        raise ValueError(
            "kernel: allow_actions needs a kernel over the workflows (cancel, rerun-from and "
            "signal are kernel commands), got None"
        )
    check_token(token)
    if not 0 < poll_interval <= 60:
        raise ValueError(f"poll_interval: expected seconds in (0, 60], got {poll_interval!r}")
    routes = [
        Route("/", pages.runs_page, name="runs"),
        Route("/runs/{run_id}", pages.run_page, name="run"),
        Route("/runs/{run_id}/live", live.run_stream, name="live"),
        Route("/runs/{run_id}/cancel", actions.cancel, methods=["POST"], name="cancel"),
        Route("/runs/{run_id}/rerun", actions.rerun, methods=["POST"], name="rerun"),
        Route("/runs/{run_id}/signal", actions.signal, methods=["POST"], name="signal"),
        Route("/outbox", pages.outbox_page, name="outbox"),
        Route("/schedules", pages.schedules_page, name="schedules"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, allowed_hosts=allowed_hosts)],
        exception_handlers={404: pages.not_found},
    )
    app.state.ui = UiState(
        store=store,
        kernel=kernel,
        allow_actions=allow_actions,
        csrf_token=secrets.token_urlsafe(32),
        templates=_templates(),
        poll_interval=poll_interval,
    )
    return app
