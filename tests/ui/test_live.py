"""A run's live stream (Server-Sent Events): what changed, as JSON, while a stage runs;
it ends once the run is terminal and everything was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from adapters.ui.views.live import Changes
from kernel import RunClaimPending
from testing import FakeClock, TestKernel, create_test_kernel
from tests.harness import T0
from tests.ui.conftest import Client, create
from tests.ui.workflows import GatedWork


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind, data)`` of each event of an SSE response, as it arrives."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


def test_the_stream_sends_progress_while_the_stage_runs_then_ends_with_the_run(
    client: Client,
) -> None:
    clock = FakeClock(T0)
    work = GatedWork(clock)
    tk = create_test_kernel(work.workflow(), clock=clock)
    run_id = create(tk, "gated")
    tk.dispatch(RunClaimPending(worker_id="w"))
    worker = threading.Thread(target=tk.kernel.execute_jobs, args=("w", 10), daemon=True)
    worker.start()
    assert work.started.wait(10)
    web = client(kernel=tk.kernel, poll_interval=0.05)
    seen: list[tuple[str, dict[str, Any]]] = []
    try:
        with web.stream("GET", f"/runs/{run_id}/live") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for kind, data in events(response.iter_lines()):
                seen.append((kind, data))
                if kind == "stage" and data["stage_id"] == "work" and data["progress"] == 0.3:
                    work.gate.set()  # the stage goes on to 70 %
                if kind == "stage" and data["stage_id"] == "work" and data["progress"] == 0.7:
                    work.finish.set()  # and ends, which ends the run
    finally:
        work.release()
        worker.join(10)

    work_updates = [d for kind, d in seen if kind == "stage" and d["stage_id"] == "work"]
    reports = [(d["percent"], d["message"]) for d in work_updates if d["progress"] is not None]
    assert reports[0] == ("30%", "reading pages")
    assert ("70%", "writing the index") in reports
    assert work_updates[-1]["status"] == "COMPLETED"
    assert work_updates[-1]["progress"] is None  # a finished stage shows no progress bar
    assert [kind for kind, _ in seen][-1] == "end"
    assert seen[-1][1] == {"status": "COMPLETED"}
    assert [d["status"] for kind, d in seen if kind == "run"][-1] == "COMPLETED"
    progress_events = [d for kind, d in seen if kind == "outbox" and d["type"] == "stage:progress"]
    assert [json.loads("{" + d["details"][1:-1] + "}") for d in progress_events] == [
        {"progress": 0.3, "message": "reading pages", "details": None},
        {"progress": 0.7, "message": "writing the index", "details": None},
    ]


def test_the_stream_of_an_ended_run_sends_its_state_and_ends(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    tk.run_until_idle()

    with client().stream("GET", f"/runs/{run_id}/live?after=1000") as response:
        seen = list(events(response.iter_lines()))

    assert [kind for kind, _ in seen] == ["run", "stage", "stage", "stage", "stage", "end"]


def test_each_read_sends_only_what_changed(tk: TestKernel) -> None:
    run_id = create(tk, "approval")
    changes = Changes(after=0)

    first, _ = changes.read(tk.store, run_id, tk.clock.now())
    again, _ = changes.read(tk.store, run_id, tk.clock.now())
    tk.run_until_idle()  # fetch completes, approve waits for its signal
    later, ended = changes.read(tk.store, run_id, tk.clock.now())

    assert [m.split("\n")[0] for m in first] == ["event: run", "event: outbox"]
    assert again == []
    kinds = [m.split("\n")[0] for m in later]
    assert kinds.count("event: stage") == 2 and "event: end" not in kinds
    assert not ended


def test_an_unknown_run_has_no_stream(client: Client) -> None:
    assert client().get("/runs/nope/live").status_code == 404
    assert client().get("/runs/nope/live?after=x").status_code == 400
