"""What commands read from their flags: JSON values, run ids, and the app's kernel."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from adapters import create_kernel
from adapters.cli.apps import App, app_spec, load_app
from adapters.cli.errors import CliError
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import WorkflowRun

PREFIX_MIN = 4
"""The shortest run-id prefix ``wfk run show`` and friends accept for a full id."""

SHOWN_MAX = 60
"""The most characters of a flag's value an error message repeats."""


def shown(text: str) -> str:
    """A flag's value as an error message repeats it: quoted, cut to :data:`SHOWN_MAX`."""
    return repr(text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…")


def parse_json(text: str, flag: str, quote: bool = False) -> Any:
    """JSON from a flag's value, or from a file with ``@path``.

    ``quote``: the error repeats the value (``--payload '{bad': not valid
    JSON: ...``), as the newer commands' errors do.
    """
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{flag}: cannot read {text[1:]!r}: {exc.strerror}") from exc
        quote = False  # the file's content may be long: its name was given
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
        if quote:
            raise CliError(f"{flag} {shown(text)}: not valid JSON: {where}") from exc
        raise CliError(f"{flag} is not valid JSON: {where}") from exc


def parse_config(text: str | None, quote: bool = False) -> dict[str, Any] | None:
    """``--config``: a JSON object by stage id (or ``@file``), or ``None`` when not given."""
    if text is None:
        return None
    config = parse_json(text, "--config", quote)
    if config is not None and not isinstance(config, dict):
        raise CliError(f"--config: expected a JSON object {{stage_id: {{...}}}}, got {text}")
    return config


def find_run(store: Store, run_id: str) -> WorkflowRun:
    """The run with this id, or the one run whose id starts with it."""
    run = store.get_run(run_id)
    if run is not None:
        return run
    if len(run_id) >= PREFIX_MIN:
        matches = [r for r in store.list_runs(limit=100_000) if r.id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            some = ", ".join(r.id for r in matches[:3])
            raise CliError(f"run id prefix {run_id!r} is ambiguous: {some}, ...")
    raise CliError(f"workflow run {run_id!r} does not exist")


def app_kernel(args: argparse.Namespace, store: Store) -> tuple[App, Kernel]:
    """The app ``--app`` (or ``$WFK_APP``) names, and a kernel over its workflows."""
    app = load_app(app_spec(args.app))
    return app, create_kernel(
        *app.workflows,
        store=store,
        plugins=app.plugins,
        ai=app.ai,
        batch_providers=app.batch_providers,
        blobs=app.blobs,
    )


def registered(app: App, workflow_id: str, what: str | None = None) -> None:
    """Refuse a workflow the app does not register.

    ``what``: whose workflow it is (``run 1be61171...``), for the message.
    """
    if workflow_id in app.workflow_ids():
        return
    known = ", ".join(app.workflow_ids())
    subject = (
        f"workflow {workflow_id!r}"
        if what is None
        else f"{what} is of workflow {workflow_id!r}, which"
    )
    raise CliError(f"{subject} is not registered by {app.spec} (it has: {known})")
