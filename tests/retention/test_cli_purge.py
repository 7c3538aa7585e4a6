"""``wfk purge --older-than AGE``: finished runs past their age go, in batches, with
everything they own; ``--dry-run`` lists them and deletes nothing (SPEC §16).

The runs are made by a test kernel whose clock stands days in the past, so the
CLI's own clock (the system's) finds them old.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.demo import document_pipeline
from adapters.sqlite import SqliteStore
from kernel import RunCancel, RunCreate
from testing import FakeClock, SequentialIds, create_test_kernel

DAY = timedelta(days=1)
DOC = {"title": "T", "text": "some words"}
KERNELS = itertools.count(1)
"""Numbers the test kernels of one test, so their ids never collide in the shared file."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "wfk.db"


@pytest.fixture
def url(path: Path) -> str:
    return f"sqlite:///{path}"


def runs_finished(path: Path, days_ago: float, count: int = 1, cancel: bool = False) -> list[str]:
    """``count`` runs of the demo pipeline that ended ``days_ago`` days ago (completed,
    or cancelled before they ran), their events published."""
    store = SqliteStore(path)
    try:
        clock = FakeClock(datetime.now(UTC) - timedelta(days=days_ago))
        tk = create_test_kernel(
            document_pipeline, store=store, clock=clock, ids=SequentialIds(f"k{next(KERNELS)}")
        )
        run_ids = []
        for _ in range(count):
            cmd = RunCreate(workflow_id="document-pipeline", input=DOC)
            run_id = tk.dispatch(cmd).workflow_run_id
            if cancel:
                tk.dispatch(RunCancel(workflow_run_id=run_id))
            tk.run_until_idle()
            clock.advance(timedelta(seconds=1))
            run_ids.append(run_id)
        return run_ids
    finally:
        store.close()


def pending_run(path: Path, days_ago: float) -> str:
    """A run created ``days_ago`` days ago that no worker has claimed yet."""
    store = SqliteStore(path)
    try:
        clock = FakeClock(datetime.now(UTC) - timedelta(days=days_ago))
        tk = create_test_kernel(
            document_pipeline, store=store, clock=clock, ids=SequentialIds(f"k{next(KERNELS)}")
        )
        return tk.dispatch(RunCreate(workflow_id="document-pipeline", input=DOC)).workflow_run_id
    finally:
        store.close()


def left(path: Path) -> set[str]:
    store = SqliteStore(path)
    try:
        return {run.id for run in store.list_runs(limit=1000)}
    finally:
        store.close()


def wfk(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_purge_deletes_the_old_finished_runs_and_keeps_the_rest(
    capsys: pytest.CaptureFixture[str], path: Path, url: str
) -> None:
    old = runs_finished(path, 40, count=2)
    recent = runs_finished(path, 5)
    waiting = pending_run(path, 400)

    code, out, err = wfk(capsys, "purge", "--older-than", "30d", "--store", url)

    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "purged 2 run(s) (2 so far)"
    assert out.splitlines()[-1].startswith("done: 2 run(s) that finished before ")
    assert left(path) == {*recent, waiting}
    store = SqliteStore(path)
    try:
        assert [store.get_outbox(run_id) for run_id in old] == [[], []]
        assert [store.get_stages(run_id) for run_id in old] == [[], []]
    finally:
        store.close()


def test_batches_go_until_nothing_is_left_with_a_line_each(
    capsys: pytest.CaptureFixture[str], path: Path, url: str
) -> None:
    runs_finished(path, 40, count=3)
    code, out, _ = wfk(capsys, "purge", "--older-than", "1d", "--batch", "2", "--store", url)
    assert code == 0
    assert out.splitlines()[:2] == ["purged 2 run(s) (2 so far)", "purged 1 run(s) (3 so far)"]
    assert left(path) == set()


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], path: Path, url: str
) -> None:
    old = runs_finished(path, 40, count=2)
    recent = runs_finished(path, 5)

    code, out, err = wfk(capsys, "purge", "--older-than", "30d", "--dry-run", "--store", url)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("dry run: 2 run(s) finished before ")
    assert lines[0].endswith(" UTC would be purged:")
    assert lines[1].split() == ["ID", "WORKFLOW", "STATUS", "FINISHED"]
    assert [line.split()[:3] for line in lines[2:]] == [
        [run_id, "document-pipeline", "COMPLETED"] for run_id in old
    ]
    assert left(path) == {*old, *recent}


def test_a_dry_run_over_more_than_a_batch_says_so(
    capsys: pytest.CaptureFixture[str], path: Path, url: str
) -> None:
    runs_finished(path, 40, count=3)
    _, out, _ = wfk(
        capsys, "purge", "--older-than", "1d", "--dry-run", "--batch", "2", "--store", url
    )
    assert out.splitlines()[0].startswith("dry run: at least 2 run(s) finished before ")
    assert out.splitlines()[-1] == "(the first 2 are listed; --batch sets how many)"
    assert len(left(path)) == 3


def test_status_narrows_the_purge(capsys: pytest.CaptureFixture[str], path: Path, url: str) -> None:
    completed = runs_finished(path, 40)
    cancelled = runs_finished(path, 40, cancel=True)
    code, out, _ = wfk(
        capsys, "purge", "--older-than", "30d", "--status", "cancelled", "--json", "--store", url
    )
    assert code == 0
    shown = json.loads(out)
    assert (shown["dry_run"], shown["purged"], shown["run_ids"]) == (False, 1, cancelled)
    assert datetime.fromisoformat(shown["finished_before"]) < datetime.now(UTC) - 30 * DAY
    assert left(path) == set(completed)


def test_json_dry_run(capsys: pytest.CaptureFixture[str], path: Path, url: str) -> None:
    old = runs_finished(path, 40)
    _, out, _ = wfk(capsys, "purge", "--older-than", "30d", "--dry-run", "--json", "--store", url)
    shown = json.loads(out)
    assert (shown["dry_run"], shown["purged"], shown["run_ids"], shown["more"]) == (
        True,
        0,
        old,
        False,
    )


def test_nothing_to_purge_says_so(capsys: pytest.CaptureFixture[str], path: Path, url: str) -> None:
    runs_finished(path, 1)
    code, out, _ = wfk(capsys, "purge", "--older-than", "30d", "--store", url)
    assert code == 0
    assert out.startswith("no run to purge (none finished before ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--older-than", "0d"],
            "wfk: --older-than '0d': expected a duration > 0 such as 30d, 12h, 90m or 1d12h",
        ),
        (
            ["--older-than", "a month"],
            "wfk: --older-than 'a month': expected a duration > 0 such as 30d, 12h, 90m or 1d12h",
        ),
        (
            ["--older-than", "30d", "--status", "RUNNING"],
            "wfk: invalid input: statuses: only finished runs can be purged, expected some "
            "of COMPLETED, CANCELLED, FAILED, got RUNNING",
        ),
        (
            ["--older-than", "30d", "--status", "old"],
            "wfk: --status 'old': expected one of COMPLETED, CANCELLED, FAILED",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_and_nothing_is_deleted(
    capsys: pytest.CaptureFixture[str], path: Path, url: str, argv: list[str], message: str
) -> None:
    old = runs_finished(path, 40)
    code, out, err = wfk(capsys, "purge", *argv, "--store", url)
    assert (code, out, err) == (1, "", message + "\n")
    assert left(path) == set(old)


def test_the_age_is_required_and_the_batch_is_at_least_one(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, _, err = wfk(capsys, "purge", "--store", url)
    assert code == 2 and "the following arguments are required: --older-than" in err
    code, _, err = wfk(capsys, "purge", "--older-than", "1d", "--batch", "0", "--store", url)
    assert code == 2 and "--batch: expected an int >= 1, got '0'" in err
