"""A real headless Chromium for the dashboard's browser tests, and a realistic running
run to look at.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``; ``make test``
installs it when it runs as root), driven by Playwright's Python package:
never a browser Playwright downloads. Without either, the browser tests
skip with the reason, and fail under CI (``$CI`` set).

Regenerate the screenshot of the docs with::

    .venv/bin/python -m tests.ui.browser docs/images/dashboard-run.png
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.memory import InMemoryStore
from adapters.ui import create_app
from kernel import (
    RunCreate,
    Stage,
    StageContext,
    StageResult,
    Workflow,
    WorkflowBuilder,
    define_stage,
)
from kernel.dispatch import Kernel
from tests.ui.server import serving
from tests.ui.workflows import Doc, GatedWork, NoConfig

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the playwright package is not installed ({exc}): pip install -e '.[dev]'"
    if not CHROMIUM.is_file():
        return (
            f"no {CHROMIUM}: install Debian's chromium package (`make test` does, as root: "
            "apt-get install -y chromium)"
        )
    return None


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)


@contextmanager
def worker(kernel: Kernel) -> Iterator[WorkerHost]:
    """A worker host running ``kernel``'s runs in the background, quick to notice work."""
    host = WorkerHost(
        kernel,
        kernel.store,
        worker_id="ui-test",
        orchestration_interval=timedelta(milliseconds=50),
        job_poll_interval=timedelta(milliseconds=20),
        drain_timeout=timedelta(seconds=10),
    )
    host.start()
    try:
        yield host
    finally:
        host.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


Execute = Callable[[StageContext[Doc, NoConfig]], StageResult[Doc]]


def _pause(seconds: float, cost: float = 0.0) -> Execute:
    def execute(ctx: StageContext[Doc, NoConfig]) -> StageResult[Doc]:
        time.sleep(seconds)
        ctx.log("INFO", f"{ctx.stage_id} done", {"seconds": seconds})
        return StageResult(ctx.input, metrics={"total_cost": cost, "total_tokens": int(cost * 1e5)})

    return execute


def _merge(ctx: StageContext[None, NoConfig]) -> Doc:
    time.sleep(0.15)
    return Doc(title=ctx.require("download").title)


def report_workflow(work: GatedWork) -> Workflow[Doc, Doc]:
    """``download → (ocr ∥ classify) → merge → embed``; ``embed`` is ``work``, which the
    caller holds."""

    def stage(stage_id: str, seconds: float, cost: float = 0.0) -> Stage[Doc, Doc, NoConfig]:
        return define_stage(
            id=stage_id,
            name=stage_id.title(),
            input=Doc,
            output=Doc,
            config=NoConfig,
            execute=_pause(seconds, cost),
        )

    return (
        WorkflowBuilder("quarterly-report", "Quarterly report", input=Doc, output=Doc)
        .pipe(stage("download", 0.35))
        .parallel([stage("ocr", 0.9, 0.0123), stage("classify", 0.4, 0.0042)])
        .pipe(
            define_stage(
                id="merge",
                name="Merge",
                input=None,
                output=Doc,
                config=NoConfig,
                execute=_merge,
                dependencies=["download"],
            )
        )
        .pipe(work.stage("embed", "Embed"))
        .build()
    )


@contextmanager
def running_report() -> Iterator[tuple[str, str, GatedWork]]:
    """A dashboard over a run whose last stage is running at 30 %: yields the base URL,
    the run id and the stage's gate (released when the block ends)."""
    work = GatedWork()
    store = InMemoryStore()
    kernel = create_kernel(report_workflow(work), store=store)
    with worker(kernel), serving(create_app(store, kernel=kernel)) as base:
        run_id = kernel.dispatch(
            RunCreate(workflow_id="quarterly-report", input={"title": "Q3 report.pdf"})
        ).workflow_run_id
        try:
            assert work.started.wait(20)
            yield base, run_id, work
        finally:
            work.release()
            wait_for(lambda: (run := store.get_run(run_id)) is not None and run.is_terminal)


def screenshot(browser: Browser, base: str, run_id: str, path: Path) -> None:
    """The run's page as a browser shows it, saved as a PNG at ``path``."""
    page = browser.new_page(viewport={"width": 1200, "height": 860}, device_scale_factor=1)
    page.goto(f"{base}/runs/{run_id}")
    page.wait_for_selector("[data-stage-rows] [data-stage='embed'] [data-progress]:not([hidden])")
    page.wait_for_selector("[data-live-state]:text('live')")
    page.screenshot(path=str(path))
    page.close()


def main(argv: list[str]) -> int:
    """Write the screenshot of a running run's page to ``argv[0]``."""
    if len(argv) != 1:
        print("usage: python -m tests.ui.browser PATH.png", file=sys.stderr)
        return 2
    problem = browser_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    target = Path(argv[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright, running_report() as (base, run_id, _):
        browser = launch(playwright)
        screenshot(browser, base, run_id, target)
        browser.close()
    print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    sys.exit(main(sys.argv[1:]))
