"""The ``wfk`` command line, called as ``main([...])`` on a SQLite file (SPEC §8, §10.1)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import attrs
import pytest

from adapters import create_kernel
from adapters.cli import main
from adapters.cli.errors import CliError
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from kernel import OutboxFlush, Status
from kernel.events import Event
from tests.hosts.apps import start_markers
from tests.hosts.backends import Backend
from tests.hosts.waiting import wait_for

sqlite = pytest.importorskip("adapters.sqlite")

DEMO_APP = "adapters.demo:document_pipeline"
INPUT = json.dumps(attrs.asdict(SAMPLE_DOCUMENTS[0]))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wfk.db'}"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> str:
    """Create a run (and, with ``--create``, the database if it is new); return its id."""
    code, out, _ = run_cli(
        capsys, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--store", url, "--json", "--create", *extra,
    )  # fmt: skip
    assert code == 0
    shown = json.loads(out)
    run_id: str = shown["run"]["id"] if "--wait" in extra else shown["workflow_run_id"]
    return run_id


def test_migrate_creates_the_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'app.db'}"
    code, out, _ = run_cli(capsys, "migrate", "--store", url)
    assert code == 0
    assert out == f"{url}: schema at version {sqlite.schema.LATEST_VERSION}\n"
    assert (tmp_path / "new" / "app.db").exists()


def test_run_create_prints_the_new_run_and_runs_lists_it(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, _ = run_cli(
        capsys, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--priority", "7", "--store", url, "--create",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("created run ") and out.endswith(" (PENDING)\n")
    run_id = out.split()[2]
    code, out, _ = run_cli(capsys, "runs", "--store", url)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["RUN", "WORKFLOW", "VERSION", "STATUS", "CREATED", "DURATION"]
    assert row.split()[:4] == [run_id, "document-pipeline", "1", "PENDING"]
    code, out, _ = run_cli(capsys, "runs", "--status", "completed", "--store", url)
    assert (code, out) == (0, "no runs\n")
    code, out, _ = run_cli(capsys, "runs", "--json", "--store", url)
    assert [(run["id"], run["priority"]) for run in json.loads(out)] == [(run_id, 7)]


def test_the_same_key_creates_one_run(capsys: pytest.CaptureFixture[str], url: str) -> None:
    first = create(capsys, url, "--key", "order-42")
    assert create(capsys, url, "--key", "order-42") == first


def test_run_create_wait_runs_it_here_and_exits_zero_when_it_completes(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, err = run_cli(
        capsys, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--wait", "--store", url, "--create",
    )  # fmt: skip
    assert (code, err) == (0, "")
    run_id = out.split()[2].rstrip(";")
    short = run_id[:8]
    assert f"{short}  extract      RUNNING" in out or f"{short}  extract      COMPLETED" in out
    assert f"{short}  run          COMPLETED" in out
    summary = out[out.index(f"run {run_id}  COMPLETED") :].splitlines()
    # Parallel stages share a line: classify ∥ summarize.
    assert [line.split()[1:-3] + line.split()[-3:-2] for line in summary[1:4]] == [
        ["extract", "COMPLETED"],
        ["classify", "∥", "summarize", "COMPLETED"],
        ["merge", "COMPLETED"],
    ]
    assert summary[4].startswith('  output: {"title": "Quarterly report"')


def test_run_create_wait_exits_non_zero_when_the_run_does_not_complete(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    """Exit 0 only if the run COMPLETED: here it is cancelled while it runs."""
    spec = json.dumps({"marker_dir": str(tmp_path), "seconds": 0.2})
    result: list[int] = []
    waiting = threading.Thread(
        target=lambda: result.append(
            main(["run", "create", "slow", "--app", "tests.hosts.apps:slow_app",
                  "--input", spec, "--wait", "--store", url, "--create"])
        )
    )  # fmt: skip
    waiting.start()
    wait_for("the slow stage to start", lambda: start_markers(tmp_path))
    store = sqlite.SqliteStore(url.removeprefix("sqlite:///"))
    (run,) = store.list_runs()
    store.close()
    assert main(["run", "cancel", run.id, "--reason", "enough", "--store", url]) == 0
    waiting.join(timeout=15)
    assert result == [1]
    out = capsys.readouterr().out
    assert f"run {run.id}  CANCELLED" in out


def test_a_store_url_names_a_sqlite_file_or_a_postgresql_schema(
    capsys: pytest.CaptureFixture[str], backend: Backend
) -> None:
    """``postgresql://...?schema=NAME`` works in the schema it names (here a fresh one)."""
    url = backend.url
    code, out, _ = run_cli(capsys, "migrate", "--store", url)
    assert code == 0
    assert out.startswith(f"{url}: schema at version ")
    run_id = create(capsys, url, "--wait")
    code, out, _ = run_cli(capsys, "runs", "--json", "--store", url)
    assert code == 0
    assert [(run["id"], run["status"]) for run in json.loads(out)] == [(run_id, "COMPLETED")]
    code, out, _ = run_cli(capsys, "run", "show", run_id, "--json", "--store", url)
    shown = json.loads(out)
    assert [(stage["stage_id"], stage["status"]) for stage in shown["stages"]] == [
        ("extract", "COMPLETED"),
        ("classify", "COMPLETED"),
        ("summarize", "COMPLETED"),
        ("merge", "COMPLETED"),
    ]
    code, out, _ = run_cli(capsys, "outbox", "--json", "--store", url)
    counts = json.loads(out)
    assert (counts["pending"], counts["dead_lettered"]) == (0, 0)
    store = backend.open()  # the test's own view of the same database and schema
    assert [run.id for run in store.list_runs()] == [run_id]


def test_run_show_prints_stages_events_and_logs(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    run_id = create(capsys, url, "--wait")
    code, out, _ = run_cli(capsys, "run", "show", run_id[:8], "--logs", "--store", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"run       {run_id}"
    assert lines[2] == "status    COMPLETED"
    # The demo's stages report tokens and cost: the table shows what each spent.
    header = "#  STAGE      STATUS     ATTEMPT  DURATION  COST     TOKENS  CALLS  ERROR"
    stages = lines[lines.index(header) + 1 :][:4]
    assert [line.split()[:4] for line in stages] == [
        ["1", "extract", "COMPLETED", "1"],
        ["2", "classify", "COMPLETED", "1"],
        ["3", "summarize", "COMPLETED", "1"],
        ["4", "merge", "COMPLETED", "1"],
    ]
    assert "last 10 event(s)" in out
    assert lines[-1].split()[2:6] == ["INFO", "summarize", "summarised", '{"digest":']
    code, out, _ = run_cli(capsys, "run", "show", run_id, "--json", "--events", "3", "--store", url)
    shown = json.loads(out)
    assert shown["run"]["status"] == "COMPLETED"
    assert [event["event_type"] for event in shown["events"]] == [
        "stage:started",
        "stage:completed",
        "workflow:completed",
    ]
    assert [event["sequence"] for event in shown["events"]] == [10, 11, 12]


def test_run_cancel_cancels_once(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run_id = create(capsys, url)
    assert run_cli(capsys, "run", "cancel", run_id, "--store", url) == (
        0,
        f"cancelled run {run_id}\n",
        "",
    )
    code, out, err = run_cli(capsys, "run", "cancel", run_id, "--store", url)
    assert (code, out) == (1, "")
    assert err == f"wfk: run {run_id} already ended (CANCELLED): nothing to cancel\n"


def test_run_rerun_runs_a_finished_run_again_from_a_stage(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    run_id = create(capsys, url, "--wait")
    code, out, _ = run_cli(
        capsys, "run", "rerun", run_id, "--from", "merge", "--app", DEMO_APP, "--wait",
        "--store", url,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0] == f"run {run_id} runs again from stage 'merge' (reset: merge)"
    assert f"run {run_id}  COMPLETED" in out


class RefusingSink:
    max_retries = 1

    def emit(self, event: Event) -> None:
        raise ConnectionError("webhook down")


def test_outbox_counts_and_dead_letter_replay(capsys: pytest.CaptureFixture[str], url: str) -> None:
    create(capsys, url)
    code, out, _ = run_cli(capsys, "outbox", "--store", url)
    assert (code, out) == (0, "pending       1\npublished     0\ndead-lettered 0\n")
    store = sqlite.SqliteStore(url.removeprefix("sqlite:///"))
    create_kernel(document_pipeline, store=store, sink=RefusingSink()).dispatch(OutboxFlush())
    store.close()
    code, out, _ = run_cli(capsys, "outbox", "--store", url)
    assert out.splitlines()[:3] == ["pending       0", "published     0", "dead-lettered 1"]
    assert "workflow:created" in out.splitlines()[-1]
    code, out, _ = run_cli(capsys, "outbox", "--json", "--store", url)
    assert json.loads(out)["dead_lettered"] == 1
    code, out, _ = run_cli(capsys, "dlq", "replay", "--max", "10", "--store", url)
    assert code == 0
    assert out.startswith("replayed 1 dead-lettered event(s)")
    code, out, _ = run_cli(capsys, "outbox", "--store", url)
    assert out == "pending       1\npublished     0\ndead-lettered 0\n"


def test_demo_runs_the_document_pipeline_and_creates_its_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "demo")
    assert (code, err) == (0, "")
    assert (tmp_path / ".demo" / "demo.db").exists()
    assert out.count("  COMPLETED in ") == 3
    assert out.count("  output: {") == 3
    assert "3 of 3 runs completed" in out
    store = sqlite.SqliteStore(tmp_path / ".demo" / "demo.db")
    runs = store.list_runs()
    store.close()
    assert [run.status for run in runs] == [Status.COMPLETED] * 3


def test_the_store_comes_from_the_environment_when_no_flag_names_it(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFK_STORE", url)
    run_id = create(capsys, url)
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0 and run_id in out
    code, out, _ = run_cli(capsys, "--store", url, "run", "show", run_id)  # before the command
    assert code == 0 and "status    PENDING" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "show", "nope"], "wfk: workflow run 'nope' does not exist"),
        (
            ["run", "create", "document-pipeline", "--app", DEMO_APP, "--input", "{bad"],
            "wfk: --input is not valid JSON: Expecting property name enclosed in double quotes "
            "(line 1, column 2)",
        ),
        (
            ["run", "create", "nope", "--app", DEMO_APP, "--input", "{}"],
            f"wfk: workflow 'nope' is not registered by {DEMO_APP} (it has: document-pipeline)",
        ),
        (
            ["run", "create", "document-pipeline", "--app", DEMO_APP, "--input", '{"title": 1}'],
            "wfk: invalid input: input.title: expected str, got 1; input.text: required field "
            "missing",
        ),
        (
            ["run", "create", "document-pipeline", "--app", "no.such.module:x", "--input", "{}"],
            "wfk: --app 'no.such.module:x': no module named 'no'",
        ),
        (
            [
                "run",
                "create",
                "document-pipeline",
                "--app",
                "adapters.demo:nothing",
                "--input",
                "{}",
            ],
            "wfk: --app 'adapters.demo:nothing': module 'adapters.demo' has no attribute 'nothing'",
        ),
        (
            [
                "run",
                "create",
                "document-pipeline",
                "--app",
                "adapters.demo:KEYWORDS",
                "--input",
                "{}",
            ],
            "wfk: --app 'adapters.demo:KEYWORDS': expected a Workflow, a Registry, or a list of "
            "workflows (and plugins, an AIConfig, batch providers, a blob store), got str",
        ),
        (
            ["run", "rerun", "RUN", "--from", "merge", "--app", DEMO_APP],
            "wfk: workflow run 'RUN' does not exist",
        ),
    ],
)
def test_errors_are_one_line_on_stderr_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], message: str
) -> None:
    create(capsys, url)  # the database exists
    code, out, err = run_cli(capsys, *argv, "--store", url)
    assert code != 0
    assert (out, err) == ("", message + "\n")


def test_a_missing_database_or_an_unknown_store_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "runs", "--store", f"sqlite:///{tmp_path / 'typo.db'}")
    assert code == 1
    assert err.startswith("wfk: no database at ") and err.count("\n") == 1
    assert not (tmp_path / "typo.db").exists()
    code, _, err = run_cli(capsys, "runs", "--store", "mysql://localhost/db")
    assert (code, err.count("\n")) == (1, 1)
    assert err.startswith("wfk: unsupported store URL 'mysql://localhost/db'")


def test_commands_that_need_workflows_say_so(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, _, err = run_cli(capsys, "worker", "--store", url)
    assert code == 2
    assert err.startswith("wfk: this command needs the workflows: pass --app MODULE:ATTRIBUTE")


def test_debug_shows_the_error_itself(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys, url)
    with pytest.raises(CliError, match="does not exist"):
        main(["--debug", "run", "show", "nope", "--store", url])


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--limit", "many"]) == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "wfk worker --app" in capsys.readouterr().out
