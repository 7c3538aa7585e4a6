"""Every page of the dashboard renders what the store holds: the runs list, a run (its
timeline, stages, progress, waits, last error, attempts, logs, events), the outbox and
the schedules."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from adapters.sqlite import SqliteStore
from kernel import RunClaimPending, Schedule, ScheduleTick, ScheduleUpsert
from testing import FakeClock, TestKernel, create_test_kernel
from tests.harness import T0, RefusingSink
from tests.ui.conftest import Client, create
from tests.ui.html import Element, parse
from tests.ui.workflows import GatedWork, approval, exploding, pipeline


def stage_rows(page: Element) -> dict[str, Element]:
    """The stages table's rows by stage id (the row template left out)."""
    body = page.one(data_stage_rows=None)
    return {row.attrs["data-stage"]: row for row in body.find("tr", data_stage=None)}


def test_the_runs_page_lists_runs_newest_first_with_status_workflow_created_duration_and_cost(
    tk: TestKernel, client: Client
) -> None:
    done = create(tk, "pipeline")
    tk.run_until_idle()
    tk.clock.advance(timedelta(minutes=1))
    waiting = create(tk, "approval")

    page = parse(client().get("/").text)

    rows = page.one("table", **{"class": "runs"}).find("tr", data_run=None)
    assert [row.attrs["data-run"] for row in rows] == [waiting, done]
    cells = [cell.text for cell in rows[1].find("td")]
    assert cells == [done, "COMPLETED", "pipeline", "2025-01-01 00:00:00", "0 ms", "0"]
    assert [cell.text for cell in rows[0].find("td")][1:4] == [
        "PENDING",
        "approval",
        "2025-01-01 00:01:00",
    ]


def test_a_run_shows_its_stages_as_a_timeline_of_groups_side_by_side(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    tk.run_until_idle()

    page = parse(client().get(f"/runs/{run_id}").text)

    groups = page.one(data_timeline=None).find(data_group=None)
    lanes = [[lane.attrs["data-stage"] for lane in g.find(data_stage=None)] for g in groups]
    assert lanes == [["fetch"], ["parse", "index"], ["publish"]]
    bar = groups[1].find(data_stage="index")[0].one(data_field_width=None)
    assert "status-COMPLETED" in bar.attrs["class"]
    assert bar.attrs["style"].startswith("width: ")
    rows = stage_rows(page)
    assert list(rows) == ["fetch", "parse", "index", "publish"]
    assert rows["index"].one(data_field="status").text == "COMPLETED"
    assert rows["index"].one(data_field="attempt").text == "1"
    assert page.one(data_run_field="status").text == "COMPLETED"
    assert page.find(data_live=None) == []  # an ended run has no live stream


def test_a_run_page_shows_attempts_logs_outbox_events_and_input_and_output(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline", title="annual report")
    tk.run_until_idle()

    page = parse(client().get(f"/runs/{run_id}").text)

    logs = page.one("table", **{"class": "logs"}).find("td")
    assert [cell.text for cell in logs[1:5]] == [
        "INFO",
        "index",
        "indexed annual report",
        '{"pages": 3}',
    ]
    events = page.one(data_event_rows=None).find("tr", data_event=None)
    assert [row.one(data_field="type").text for row in events][:3] == [
        "workflow:created",
        "workflow:started",
        "stage:started",
    ]
    assert {row.one(data_field="delivery").text for row in events} == {"published"}
    attempts = next(section for section in page.find("section") if "Attempts" in section.text)
    assert len(attempts.find("tbody")[0].find("tr")) == 4
    assert "annual report" in page.find("pre", **{"class": "json"})[0].text
    assert len(page.find("pre", **{"class": "json"})) == 2  # input and output


def test_a_failed_run_shows_its_last_error_with_the_traceback(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "exploding", title="scan.pdf")
    tk.run_until_idle()

    page = parse(client().get(f"/runs/{run_id}").text)

    section = page.one("section", **{"class": "last-error"})
    assert "stage explode (attempt 1, FAILED)" in section.text
    assert "RuntimeError: cannot read scan.pdf" in section.text
    traceback = section.one("pre", **{"class": "traceback"}).text
    assert "Traceback (most recent call last)" in traceback
    assert "in _explode" in traceback
    assert stage_rows(page)["explode"].one(data_field="error").text.startswith("RuntimeError")


def test_a_stage_waiting_for_a_signal_says_for_which_since_when_and_until_when(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "approval")
    tk.run_until_idle()

    page = parse(client().get(f"/runs/{run_id}").text)

    waiting = stage_rows(page)["approve"].one(data_field="waiting")
    assert waiting.text == (
        "waiting for signal approve since 2025-01-01 00:00:00 (times out at 2025-01-01 01:00:00)"
    )
    assert "hidden" not in waiting.attrs
    assert page.one(data_live=None).attrs["data-live"].startswith(f"/runs/{run_id}/live?after=")


def test_a_running_stage_shows_its_latest_progress_and_message(client: Client) -> None:
    clock = FakeClock(T0)
    work = GatedWork(clock)
    tk = create_test_kernel(work.workflow(), clock=clock)
    run_id = create(tk, "gated")
    tk.dispatch(RunClaimPending(worker_id="w"))
    worker = threading.Thread(target=tk.kernel.execute_jobs, args=("w", 10))
    worker.start()
    try:
        assert work.started.wait(10)
        page = parse(client(kernel=tk.kernel).get(f"/runs/{run_id}").text)
    finally:
        work.release()
        worker.join(10)

    row = stage_rows(page)["work"]
    assert row.one(data_field="status").text == "RUNNING"
    box = row.one(data_progress=None)
    assert "hidden" not in box.attrs
    assert box.one("progress").attrs["value"] == "0.3"
    assert (row.one(data_field="percent").text, row.one(data_field="message").text) == (
        "30%",
        "reading pages",
    )


def test_the_outbox_page_counts_events_by_delivery_and_lists_the_dead_letters(
    client: Client,
) -> None:
    sink = RefusingSink({"workflow:completed"}, max_retries=1)
    tk = create_test_kernel(pipeline, sink=sink, clock=FakeClock(T0))
    dead_run = create(tk, "pipeline")
    tk.run_until_idle()
    create(tk, "pipeline")  # its workflow:created is not flushed: pending

    page = parse(client(kernel=tk.kernel).get("/outbox").text)

    counts = {dd.attrs["data-count"]: int(dd.text) for dd in page.find("dd", data_count=None)}
    published = len(tk.store.get_outbox(dead_run)) - 1
    assert counts == {"pending": 1, "published": published, "dead-lettered": 1}
    [dead] = page.one("table", **{"class": "dead-letters"}).find("tbody")[0].find("tr")
    cells = [cell.text for cell in dead.find("td")]
    assert cells[0] == dead_run
    assert cells[2] == "workflow:completed"


def test_the_schedules_page_shows_next_fire_last_run_and_status(
    tk: TestKernel, client: Client
) -> None:
    tk.dispatch(
        ScheduleUpsert(
            Schedule("hourly", "pipeline", every=timedelta(hours=1), input={"title": "t"})
        )
    )
    tk.dispatch(
        ScheduleUpsert(
            Schedule("nightly", "pipeline", cron="0 3 * * *", input={"title": "t"}, enabled=False)
        )
    )
    tk.clock.advance(timedelta(hours=1))
    [fired] = tk.dispatch(ScheduleTick()).created

    page = parse(client().get("/schedules").text)

    rows = {row.attrs["data-schedule"]: row for row in page.find("tr", data_schedule=None)}
    hourly = [cell.text for cell in rows["hourly"].find("td")]
    assert hourly[:5] == [
        "hourly",
        "pipeline",
        "every 1 h (UTC)",
        "2025-01-01 02:00:00",
        "2025-01-01 01:00:00",
    ]
    assert hourly[5] == f"{fired[:8]} PENDING"
    assert hourly[6] == "enabled"
    nightly = [cell.text for cell in rows["nightly"].find("td")]
    assert nightly[2:4] == ["cron 0 3 * * * (UTC)", "-"]
    assert nightly[5:7] == ["-", "paused"]


def test_an_unknown_run_is_a_404_page_that_names_it(client: Client) -> None:
    response = client().get("/runs/no-such-run")

    assert response.status_code == 404
    assert "workflow run &#39;no-such-run&#39; does not exist" in response.text


def test_every_page_renders_over_a_sqlite_store(tmp_path: Path, client: Client) -> None:
    store = SqliteStore(tmp_path / "ui.db")
    tk = create_test_kernel(pipeline, exploding, approval, store=store, clock=FakeClock(T0))
    ids = [
        create(tk, "pipeline"),
        create(tk, "exploding"),
        create(tk, "approval", idempotency_key="k"),
    ]
    tk.run_until_idle()
    web = client(kernel=tk.kernel)

    pages = ["/", "/outbox", "/schedules", "/?status=FAILED", *(f"/runs/{i}" for i in ids)]
    assert {page: web.get(page).status_code for page in pages} == dict.fromkeys(pages, 200)
    assert web.get("/?q=k", follow_redirects=False).headers["location"] == f"/runs/{ids[2]}"
    store.close()
