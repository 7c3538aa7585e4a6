"""``wfk run show`` and ``--wait`` about failures, progress and runs with no stages (issue 10).

* item 1: a failed stage's traceback: ``run show`` hints ``(--traceback to see
  where)`` and ``run show --traceback`` prints it (or says there is none);
* item 3: the latest ``stage:progress`` of a RUNNING stage, in ``run show``
  and live in ``--wait``;
* item 4: a run with no stages is described by its status.

Every command runs through the real ``wfk`` entry point in a subprocess. The
workflows below are what those subprocesses load
(``--app tests.hosts.test_cli_show:explode_app``, ``...:progress_app``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from adapters import create_kernel
from adapters.demo import document_pipeline
from adapters.sqlite import SqliteStore
from kernel import RunCancel, RunCreate, StageContext, Status, WorkflowBuilder
from kernel import define_stage as stage
from kernel.effects import AppendOutbox, UpdateRun
from kernel.events import StageProgress
from kernel.retry import Retry
from tests.hosts.apps import start_markers
from tests.hosts.test_cli_polish import Running, create_demo_run, open_store, start_wfk, wfk
from tests.hosts.waiting import wait_for

pytestmark = pytest.mark.slow  # every test starts wfk processes

HINT = "(--traceback to see where)"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store URL whose database exists (created and migrated here)."""
    SqliteStore(tmp_path / "wfk.db").close()
    return f"sqlite:///{tmp_path / 'wfk.db'}"


@pytest.fixture
def started() -> Iterator[list[Running]]:
    """``wfk`` processes a test starts: killed at the end if still running."""
    processes: list[Running] = []
    yield processes
    for process in processes:
        process.close()


@attrs.frozen
class Marked:
    marker_dir: str


@attrs.frozen
class NoConfig:
    pass


def explode(ctx: StageContext[Marked, NoConfig]) -> Marked:
    raise ValueError("the stage blew up")


explode_workflow = (
    WorkflowBuilder("explode", "Explode", input=Marked, output=Marked)
    .pipe(
        stage(
            id="explode",
            name="Explode",
            input=Marked,
            output=Marked,
            config=NoConfig,
            execute=explode,
            retry=Retry(max_attempts=1),
        )
    )
    .build()
)
explode_app = [explode_workflow]


def report_then_wait(ctx: StageContext[Marked, NoConfig]) -> Marked:
    """Report half way, then wait (at most 30 s) for the test to create ``release``."""
    ctx.progress(0.5, "halfway there")
    (Path(ctx.input.marker_dir) / "report.started").touch()
    deadline = time.monotonic() + 30
    while not (Path(ctx.input.marker_dir) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return ctx.input


progress_workflow = (
    WorkflowBuilder("progress", "Progress", input=Marked, output=Marked)
    .pipe(
        stage(
            id="report",
            name="Report",
            input=Marked,
            output=Marked,
            config=NoConfig,
            execute=report_then_wait,
        )
    )
    .build()
)
progress_app = [progress_workflow]


def show(tmp_path: Path, url: str, run_id: str, *extra: str) -> str:
    done = wfk(tmp_path, "run", "show", run_id, "--store", url, *extra)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def stage_rows(output: str) -> list[str]:
    """The stages table's rows (and the progress lines under them)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#  STAGE"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


# -- item 1: tracebacks ---------------------------------------------------------------------------


def test_a_failed_stage_hints_at_its_traceback_and_shows_it_on_request(
    tmp_path: Path,
    url: str,
) -> None:
    """Needs the kernel to store ``WorkflowStage.error_traceback`` (issue 10, item 1)."""
    done = wfk(
        tmp_path, "run", "create", "explode", "--app", "tests.hosts.test_cli_show:explode_app",
        "--input", json.dumps({"marker_dir": str(tmp_path)}), "--wait", "--store", url,
    )  # fmt: skip
    assert done.returncode == 1
    run_id = done.stdout.split()[2].rstrip(";")
    assert f"{run_id[:8]}  explode      FAILED  " in done.stdout
    assert f"see where it failed: wfk run show {run_id[:8]} --traceback" in done.stdout
    (row,) = stage_rows(show(tmp_path, url, run_id))
    assert row.split()[1:3] == ["explode", "FAILED"]
    assert "the stage blew up" in row and row.endswith(HINT)
    shown = show(tmp_path, url, run_id, "--traceback")
    where = shown[shown.index("stage 'explode' (FAILED, attempt 1): ") :]
    assert "Traceback (most recent call last):" in where
    assert "in explode" in where
    assert where.rstrip().endswith("ValueError: the stage blew up")


def test_traceback_says_plainly_when_there_is_none(
    tmp_path: Path,
    url: str,
) -> None:
    run_id = create_demo_run(tmp_path, url, "--wait")
    shown = show(tmp_path, url, run_id, "--traceback")
    assert HINT not in shown
    assert shown.splitlines()[-1] == "no traceback: no stage of this run failed (it is COMPLETED)"
    failed = failed_before_any_stage(url)
    assert show(tmp_path, url, failed, "--traceback").splitlines()[-1] == (
        f"no traceback: no stage failed; the run itself failed ({NOT_FOUND})"
    )


# -- item 4: no stages, by status -----------------------------------------------------------------


NOT_FOUND = "WORKFLOW_NOT_FOUND: workflow 'document-pipeline' is not registered"


def failed_before_any_stage(url: str) -> str:
    """A run that failed before its first stage, as ``run.claimPending`` fails one whose
    workflow is gone (written here directly: a claim only picks runs it knows)."""
    store = open_store(url)
    try:
        run_id = (
            create_kernel(document_pipeline, store=store)
            .dispatch(RunCreate(workflow_id="document-pipeline", input={"title": "a", "text": "b"}))
            .workflow_run_id
        )
        run = store.get_run(run_id)
        assert run is not None
        now = datetime.now(UTC)
        with store.transaction() as tx:
            tx.apply(
                [
                    UpdateRun(
                        attrs.evolve(
                            run, status=Status.FAILED, error=NOT_FOUND, completed_at=now,
                            version=run.version + 1,
                        ),
                        expected_version=run.version,
                    )
                ]
            )  # fmt: skip
        return run_id
    finally:
        store.close()


def test_a_run_without_stages_is_described_by_its_status(
    tmp_path: Path,
    url: str,
) -> None:
    pending = create_demo_run(tmp_path, url)
    lines = show(tmp_path, url, pending).splitlines()
    assert (
        lines[lines.index("status    PENDING") + 3] == "no stages yet (the run waits for a worker)"
    )
    failed = failed_before_any_stage(url)
    shown = show(tmp_path, url, failed)
    assert "waits for a worker" not in shown
    assert (
        f"no stage ran: the run failed before its first stage ({NOT_FOUND})" in shown.splitlines()
    )
    cancelled = create_demo_run(tmp_path, url)
    store = open_store(url)
    create_kernel(store=store).dispatch(RunCancel(workflow_run_id=cancelled, reason="no"))
    store.close()
    shown = show(tmp_path, url, cancelled)
    assert "waits for a worker" not in shown
    assert "no stage ran: the run was cancelled before any stage ran" in shown.splitlines()


# -- item 3: progress -----------------------------------------------------------------------------


def add_progress(url: str, run_id: str, stage_id: str, progress: float, message: str) -> None:
    """Write a ``stage:progress`` event to the run's outbox, as a running stage's report does."""
    store = open_store(url)
    event = StageProgress(
        workflow_run_id=run_id,
        timestamp=datetime.now(UTC),
        stage_id=stage_id,
        progress=progress,
        message=message,
    )
    try:
        with store.transaction() as tx:
            tx.apply([AppendOutbox(event, str(uuid.uuid4()), "test")])
    finally:
        store.close()


def test_show_and_wait_give_the_latest_progress_of_a_running_stage(
    started: list[Running],
    tmp_path: Path,
    url: str,
) -> None:
    """Progress events written while the stage runs (here by the test) show at once."""
    spec = json.dumps({"marker_dir": str(tmp_path), "seconds": 60})
    waiting = start_wfk(
        started, tmp_path, "run", "create", "slow", "--app", "tests.hosts.apps:slow_app",
        "--input", spec, "--wait", "--store", url,
    )  # fmt: skip
    wait_for("the slow stage to start", lambda: start_markers(tmp_path), timeout=30)
    run_id = waiting.out.split()[2].rstrip(";")
    add_progress(url, run_id, "slow", 0.25, "a quarter")
    add_progress(url, run_id, "slow", 0.5, "halfway there")
    wait_for(
        "--wait to show the progress",
        lambda: f"{run_id[:8]}  slow         50%  halfway there" in waiting.out,
    )
    assert f"{run_id[:8]}  slow         25%  a quarter" in waiting.out
    rows = stage_rows(show(tmp_path, url, run_id))
    slow_row = next(i for i, row in enumerate(rows) if row.split()[1] == "slow")
    assert rows[slow_row].split()[2] == "RUNNING"
    assert rows[slow_row + 1] == "   50%  halfway there"
    assert len(rows) == 3  # prepare, slow and its progress: COMPLETED stages have none
    waiting.interrupt()
    waiting.interrupt()
    assert waiting.wait() == 130


def test_ctx_progress_shows_while_the_stage_runs(
    started: list[Running],
    tmp_path: Path,
    url: str,
) -> None:
    """Needs the kernel to write ``ctx.progress`` while the stage runs (issue 10, item 3)."""
    waiting = start_wfk(
        started, tmp_path, "run", "create", "progress",
        "--app", "tests.hosts.test_cli_show:progress_app",
        "--input", json.dumps({"marker_dir": str(tmp_path)}), "--wait", "--store", url,
    )  # fmt: skip
    wait_for("the stage to report", lambda: (tmp_path / "report.started").exists(), timeout=30)
    run_id = waiting.out.split()[2].rstrip(";")
    try:
        wait_for(
            "--wait to show the progress",
            lambda: f"{run_id[:8]}  report       50%  halfway there" in waiting.out,
        )
        (row, progress) = stage_rows(show(tmp_path, url, run_id))
        assert row.split()[1:3] == ["report", "RUNNING"]
        assert progress == "   50%  halfway there"
    finally:
        (tmp_path / "release").touch()
    assert waiting.wait() == 0
    assert f"run {run_id}  COMPLETED in " in waiting.out
