"""The dashboard in a real headless Chromium, served by uvicorn: runs listed, a run's
stages, live progress without a reload, an action, and user data kept inert.

Skipped (with the reason) without ``/usr/bin/chromium`` or Playwright; under
CI (``$CI`` set) that is a failure instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.ui import create_app
from kernel import RunCreate
from tests.ui.browser import browser_problem, launch, running_report, screenshot, wait_for, worker
from tests.ui.server import serving
from tests.ui.workflows import approval, exploding, pipeline

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SCRIPT = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    problem = browser_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run under CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page()
    opened.set_default_timeout(10_000)
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield opened
    opened.close()
    assert dialogs == []  # no script of the page's data ever ran


def test_the_runs_page_lists_the_runs_and_opens_one_with_its_stages(page: Page) -> None:
    store = InMemoryStore()
    kernel = create_kernel(pipeline, store=store)
    with worker(kernel), serving(create_app(store)) as base:
        ids = [
            kernel.dispatch(
                RunCreate(workflow_id="pipeline", input={"title": f"doc {n}"})
            ).workflow_run_id
            for n in range(3)
        ]
        wait_for(lambda: all(store.get_run(i).is_terminal for i in ids))  # type: ignore[union-attr]

        page.goto(base)
        rows = page.locator("tr[data-run]")
        assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.run)")) == sorted(ids)
        assert page.locator("tr[data-run] .badge").all_inner_texts() == ["COMPLETED"] * 3

        page.click(f"a[href='/runs/{ids[0]}']")
        page.wait_for_url(f"{base}/runs/{ids[0]}")
        stages = page.locator("[data-stage-rows] > tr[data-stage]")
        assert stages.evaluate_all("rows => rows.map(r => r.dataset.stage)") == [
            "fetch",
            "parse",
            "index",
            "publish",
        ]
        assert page.locator("[data-timeline] [data-group]").count() == 3


def test_progress_moves_the_bar_without_a_reload_and_the_run_ends_live(
    browser: Browser, page: Page, tmp_path: Path
) -> None:
    with running_report() as (base, run_id, work):
        page.goto(f"{base}/runs/{run_id}")
        page.evaluate("window.sameDocument = true")  # gone if the page reloaded
        bar = page.locator("[data-stage-rows] [data-stage='embed'] progress")
        assert bar.evaluate("el => el.value") == pytest.approx(0.3)
        screenshot(browser, base, run_id, tmp_path / "run.png")

        work.gate.set()
        page.wait_for_function(
            "() => document.querySelector(\"[data-stage-rows] [data-stage='embed'] progress\")"
            ".value > 0.69"
        )
        row = page.locator("[data-stage-rows] [data-stage='embed']")
        assert row.locator("[data-field=percent]").inner_text() == "70%"
        assert row.locator("[data-field=message]").inner_text() == "writing the index"

        work.finish.set()
        page.wait_for_selector("[data-run-field=status]:text('COMPLETED')")
        page.wait_for_selector(".run[data-ended]")
        assert row.locator("[data-field=status]").inner_text() == "COMPLETED"
        assert row.locator("[data-progress]").is_hidden()
        assert page.evaluate("window.sameDocument") is True
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_cancel_posted_from_the_page_shows_the_cancelled_run(page: Page) -> None:
    store = InMemoryStore()
    kernel = create_kernel(approval, store=store)
    with worker(kernel), serving(create_app(store, kernel=kernel, allow_actions=True)) as base:
        run_id = kernel.dispatch(
            RunCreate(workflow_id="approval", input={"title": "contract"})
        ).workflow_run_id
        wait_for(lambda: store.get_run(run_id).status == "SUSPENDED")  # type: ignore[union-attr]

        page.goto(f"{base}/runs/{run_id}")
        page.fill("input[name=reason]", "changed my mind")
        page.click("button:text('Cancel run')")

        page.wait_for_selector("p.notice:text('cancelled the run')")
        assert page.locator("h1 [data-run-field=status]").inner_text() == "CANCELLED"
        assert store.get_run(run_id).status == "CANCELLED"  # type: ignore[union-attr]


def test_markup_in_an_input_and_an_error_stays_text_in_the_page_and_the_live_updates(
    page: Page,
) -> None:
    store = InMemoryStore()
    kernel = create_kernel(exploding, store=store)
    with serving(create_app(store)) as base:
        run_id = kernel.dispatch(
            RunCreate(workflow_id="exploding", input={"title": SCRIPT})
        ).workflow_run_id
        page.goto(f"{base}/runs/{run_id}")  # PENDING: the page listens for changes
        page.wait_for_selector("[data-live-state]:text('live')")

        with worker(kernel):  # the run fails while the page watches
            page.wait_for_selector("[data-run-field=status]:text('FAILED')")

        error = page.locator("[data-stage-rows] [data-stage='explode'] [data-field=error]")
        assert error.inner_text() == f"RuntimeError: cannot read {SCRIPT}"
        assert json.loads(page.locator("pre.json").inner_text()) == {"title": SCRIPT}
        assert page.title() != "pwned"
        assert page.locator("main img, main script").count() == 0
