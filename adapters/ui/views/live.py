"""A run's live stream: Server-Sent Events while the run has not ended.

The server reads the run, its stages and its outbox every ``poll_interval``
seconds and sends what changed since the last read, as JSON:

* ``run``: the run's status, duration, cost, tokens and error;
* ``stage``: one stage's row (status, attempt, duration, bar width, progress
  and its message, what it waits for, its error);
* ``outbox``: an outbox event after the page's last one (``?after=N``), and
  again when its delivery state changes;
* ``end``: the run ended and everything was sent; the stream closes.

A stream that reconnects (``EventSource`` does by itself) starts with the
whole state again, so a client never misses a change, it only may see one
twice. Nothing waits on the browser: it only listens.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from adapters.ui import viewmodel as vm
from adapters.ui.app import ui_state
from kernel.ports import Store

KEEP_ALIVE_S = 15.0
"""Seconds of silence after which a comment line is sent, so proxies keep the stream open
and a client that went away is noticed."""

RETRY_MS = 2000
"""How long ``EventSource`` waits before it reconnects to a stream that broke."""


def message(kind: str, data: dict[str, Any]) -> str:
    """One event of the stream (``data`` as one line of JSON)."""
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Changes:
    """What a stream sent, by key, so each read sends only what changed."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.sent: dict[str, str] = {}

    def read(self, store: Store, run_id: str, now: datetime) -> tuple[list[str], bool]:
        """The messages for what changed since the last read, and whether the run ended.

        ``None`` run (deleted while watched) counts as ended.
        """
        run = store.get_run(run_id)
        if run is None:
            return [message("end", {"status": "GONE"})], True
        stages = store.get_stages(run_id)
        events = store.get_outbox(run_id)
        out = list(self._changed("run", "run", vm.run_row(run, events).live()))
        for row in vm.stage_rows(stages, events, now):
            out.extend(self._changed(f"stage:{row.stage_id}", "stage", row.live()))
        for event in events:
            if event.sequence > self.after:
                shown = vm.event_row(event).live()
                out.extend(self._changed(f"outbox:{event.sequence}", "outbox", shown))
        if run.is_terminal:
            out.append(message("end", {"status": str(run.status)}))
        return out, run.is_terminal

    def _changed(self, key: str, kind: str, data: dict[str, Any]) -> Iterator[str]:
        text = message(kind, data)
        if self.sent.get(key) != text:
            self.sent[key] = text
            yield text


async def events(request: Request, run_id: str, after: int) -> AsyncIterator[str]:
    """The stream: changes until the run ends or the client goes away."""
    ui = ui_state(request)
    changes = Changes(after)
    quiet_since = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        out, ended = await run_in_threadpool(changes.read, ui.store, run_id, datetime.now(UTC))
        for text in out:
            yield text
        if ended:
            return
        if out:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        # Under ASGI 2.4 servers a send to a closed connection is the only other
        # sign the client left, and a quiet run may send nothing for hours.
        if await request.is_disconnected():
            return
        await asyncio.sleep(ui.poll_interval)


async def run_stream(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    after_text = request.query_params.get("after") or "0"
    if not after_text.isdigit():
        raise HTTPException(400, f"after: expected an outbox sequence number, got {after_text!r}")
    store = ui_state(request).store
    if await run_in_threadpool(store.get_run, run_id) is None:
        raise HTTPException(404, f"workflow run {run_id!r} does not exist")
    return StreamingResponse(
        events(request, run_id, int(after_text)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
