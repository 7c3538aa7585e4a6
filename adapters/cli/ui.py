"""``wfk ui``: serve the web dashboard (:mod:`adapters.ui`) over the store.

Read-only unless ``--allow-actions``; bound to 127.0.0.1 unless ``--host``
names another address, which needs ``--token``. The dashboard needs the
``ui`` extra; the rest of ``wfk`` does not, so it is imported here, late.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from adapters.cli.errors import CliError
from adapters.cli.inputs import app_kernel
from adapters.cli.stores import Stores, redact, store_url
from kernel.dispatch import Kernel

TOKEN_ENV = "WFK_UI_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def cmd_ui(args: argparse.Namespace, stores: Stores) -> int:
    try:
        import uvicorn

        from adapters.ui import check_binding, create_app
        from adapters.ui.security import is_loopback, loopback_hosts
    except ImportError as exc:
        raise CliError(
            f"wfk ui needs the ui extra: pip install 'workflow-kernel[ui]' ({exc})"
        ) from exc
    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        check_binding(args.host, token)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port: expected a port from 0 to 65535, got {args.port}", exit_code=2)
    url = store_url(args.store)
    store = stores.open(url, create=False, reads_only=not args.allow_actions, pool_size=4)
    kernel: Kernel | None = None
    if args.allow_actions or args.app:
        _, kernel = app_kernel(args, store)
    app = create_app(
        store,
        kernel=kernel,
        token=token,
        allow_actions=args.allow_actions,
        # On a loopback address, only the names of this machine: another site's
        # page whose name resolves to 127.0.0.1 cannot read the dashboard.
        allowed_hosts=loopback_hosts(args.host, args.port) if is_loopback(args.host) else None,
    )
    mode = "actions on" if args.allow_actions else "read-only"
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"wfk ui: http://{shown_host}:{args.port}/ ({mode}) over {redact(url)}; Ctrl-C stops")
    if token is not None:
        print("wfk ui: requests need the token: open /?token=TOKEN once in a browser")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="debug" if args.debug else "warning",
        timeout_graceful_shutdown=2,  # live streams of runs that do not end
        proxy_headers=False,
    )
    return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``ui``."""
    ui = commands.add_parser(
        "ui",
        parents=[common],
        help="serve a web dashboard of runs, outbox and schedules",
        description="Serve a web dashboard over the store: runs (filters, search, pages), each "
        "run's timeline, attempts, errors, logs and events with live progress, the outbox and "
        "the schedules. Read-only unless --allow-actions.",
    )
    ui.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    ui.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"every request must carry it (${TOKEN_ENV}); needed to bind a non-loopback address",
    )
    ui.add_argument(
        "--allow-actions",
        action="store_true",
        help="show cancel, rerun-from and signal buttons (needs --app)",
    )
    ui.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    ui.set_defaults(handler=cmd_ui)
