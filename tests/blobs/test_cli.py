"""``wfk`` and blobs: an app list may hold the blob store (``wfk worker`` and ``wfk run
create`` then store large values as blobs and load them), and ``wfk purge --blobs DIR``
deletes the purged runs' blobs too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.blobs import FileBlobStore
from adapters.cli import main
from adapters.cli.apps import load_app
from adapters.cli.errors import CliError
from adapters.sqlite import SqliteStore
from testing import FakeClock, create_test_kernel
from tests.blobs import cli_app
from tests.blobs.support import LIMIT, is_ref, run_texts, texts


def test_an_app_list_may_hold_one_blob_store() -> None:
    app = load_app("tests.blobs.cli_app:APP")
    assert app.workflow_ids() == ["texts"]
    assert app.blobs is cli_app.BLOBS
    with pytest.raises(CliError, match="holds 2 blob stores; give one"):
        load_app("tests.blobs.cli_app:TWO_STORES")


def test_run_create_with_the_app_stores_a_large_input_as_a_blob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'wfk.db'}"
    text = "x" * 300_000  # over the default inline limit of 256 KiB
    app = ["--app", "tests.blobs.cli_app:APP", "--store", url, "--create"]
    code = main(["run", "create", "texts", *app, "--input", json.dumps({"text": text}), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_id = json.loads(out)["workflow_run_id"]
    raw = SqliteStore(tmp_path / "wfk.db")
    try:
        run = raw.get_run(run_id)
        assert run is not None and is_ref(run.input)  # the row holds the reference
        assert isinstance(run.input, dict)
        assert json.loads(cli_app.BLOBS.get(str(run.input["$blob"]))) == {"text": text}
    finally:
        raw.close()


def finished_long_ago(path: Path, blobs: FileBlobStore) -> str:
    """A ``texts`` run with blobs that ended 40 days ago."""
    store = SqliteStore(path)
    try:
        clock = FakeClock(datetime.now(UTC) - timedelta(days=40))
        tk = create_test_kernel(texts, store=store, clock=clock, blobs=blobs, inline_limit=LIMIT)
        return run_texts(tk, "y" * 2 * LIMIT)
    finally:
        store.close()


@pytest.mark.parametrize("given", [True, False], ids=["with --blobs", "without"])
def test_purge_with_blobs_deletes_the_purged_runs_blobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: bool
) -> None:
    path, directory = tmp_path / "wfk.db", tmp_path / "blobs"
    blobs = FileBlobStore(directory)
    finished_long_ago(path, blobs)
    assert list(blobs.list_blobs())

    extra = ["--blobs", str(directory)] if given else []
    code = main(["purge", "--older-than", "30d", "--store", f"sqlite:///{path}", *extra])

    assert code == 0, capsys.readouterr().err
    left = list(blobs.list_blobs())
    assert (left == []) if given else (len(left) > 0)  # without it: left for the sweep


def test_purge_refuses_a_blobs_directory_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wfk.db"
    SqliteStore(path).close()
    nowhere = str(tmp_path / "nowhere")
    code = main(
        ["purge", "--older-than", "30d", "--store", f"sqlite:///{path}", "--blobs", nowhere]
    )
    assert code == 2
    assert "--blobs" in capsys.readouterr().err
