"""``wfk`` and its databases, through the real entry point in a subprocess.

SQLite: only ``wfk migrate``, ``wfk demo`` and ``--create`` create a
database; a missing, empty or foreign file is refused with a line that says
how to create it, and read commands read a read-only file. PostgreSQL: a
server that cannot be reached fails fast with libpq's reason and the command
that failed, and a worker checks its database before it says it started.
(A worker that loses its database: ``test_cli_worker_outage.py``.)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import attrs
import pytest
from psycopg.conninfo import make_conninfo
from sqlite_utils import Database

from adapters.demo import SAMPLE_DOCUMENTS
from adapters.sqlite.schema import LATEST_VERSION, migrate
from tests.adapters.test_postgres_connect import silent_port
from tests.hosts.backends import postgres_url

ROOT = Path(__file__).resolve().parents[2]
WFK = Path(sys.executable).parent / "wfk"
DEMO_APP = "adapters.demo:document_pipeline"
INPUT = str(attrs.asdict(SAMPLE_DOCUMENTS[0])).replace("'", '"')
REFUSED = "postgresql://postgres:s3cret-pw@127.0.0.1:1/test"


def command(*argv: str) -> list[str]:
    """``wfk ARGV``: the installed console script, else ``python -m adapters.cli``."""
    if WFK.exists():
        return [str(WFK), *argv]
    return [sys.executable, "-m", "adapters.cli", *argv]


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WFK_")}
    return {**env, "PYTHONPATH": str(ROOT)}


@attrs.frozen
class Done:
    code: int
    out: str
    err: str
    seconds: float


def wfk(cwd: Path, *argv: str) -> Done:
    started = time.monotonic()
    done = subprocess.run(
        command(*argv), cwd=cwd, env=environment(), capture_output=True, text=True, timeout=60
    )
    return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create_run(cwd: Path, url: str, *extra: str) -> Done:
    return wfk(cwd, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
               "--store", url, *extra)  # fmt: skip


# -- SQLite: who creates a database ------------------------------------------------


def missing(path: str, create_flag: bool) -> str:
    fix = f"create it with `wfk migrate --store sqlite:///{path}`"
    if create_flag:
        fix += " or by adding --create"
    return (
        f"wfk: no database at {path!r} (its directory 'typo' does not exist either): check "
        f"--store (or $WFK_STORE), or {fix}\n"
    )


def test_run_create_refuses_a_missing_database_and_creates_nothing(tmp_path: Path) -> None:
    done = create_run(tmp_path, "sqlite:///typo/app.db")
    assert (done.code, done.out) == (1, "")
    assert done.err == missing("typo/app.db", create_flag=True)
    assert not (tmp_path / "typo").exists()


def test_a_worker_refuses_a_missing_database_before_it_starts(tmp_path: Path) -> None:
    done = wfk(tmp_path, "worker", "--app", DEMO_APP, "--store", "sqlite:///typo/app.db")
    assert (done.code, done.err) == (1, missing("typo/app.db", create_flag=True))
    assert not (tmp_path / "typo").exists()


def test_read_commands_refuse_a_missing_database_without_mentioning_create(
    tmp_path: Path,
) -> None:
    done = wfk(tmp_path, "runs", "--store", "sqlite:///typo/app.db")
    assert (done.code, done.err) == (1, missing("typo/app.db", create_flag=False))


def test_create_makes_the_directory_and_the_database(tmp_path: Path) -> None:
    done = create_run(tmp_path, "sqlite:///data/new/app.db", "--create")
    assert done.code == 0, done.err
    run_id = done.out.split()[2]
    assert (tmp_path / "data" / "new" / "app.db").exists()
    listed = wfk(tmp_path, "runs", "--store", "sqlite:///data/new/app.db")
    assert listed.code == 0 and run_id in listed.out


def test_migrate_and_the_demo_create_their_databases(tmp_path: Path) -> None:
    done = wfk(tmp_path, "migrate", "--store", "sqlite:///a/b/app.db")
    assert (done.code, done.out) == (
        0,
        f"sqlite:///a/b/app.db: schema at version {LATEST_VERSION}\n",
    )
    demo = wfk(tmp_path, "demo")  # make demo: a fresh checkout has no .demo/
    assert demo.code == 0, demo.err
    assert "3 of 3 runs completed" in demo.out
    assert (tmp_path / ".demo" / "demo.db").exists()


# -- SQLite: files that are no database, or cannot be written ------------------------


def test_an_empty_file_is_refused_and_left_empty_until_migrate(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    url = "sqlite:///empty.db"
    expected = (
        "wfk: 'empty.db' is empty, not a workflow-kernel database: check --store (or "
        f"$WFK_STORE), or create the schema in it with `wfk migrate --store {url}`"
    )
    for argv in (["runs"], ["outbox"], ["run", "show", "abcd"]):
        done = wfk(tmp_path, *argv, "--store", url)
        assert (done.code, done.err) == (1, expected + "\n"), argv
    done = create_run(tmp_path, url)
    assert (done.code, done.err) == (1, expected + " or by adding --create\n")
    assert (tmp_path / "empty.db").stat().st_size == 0
    assert wfk(tmp_path, "migrate", "--store", url).code == 0
    assert wfk(tmp_path, "runs", "--store", url).out == "no runs\n"


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("shopping list: eggs, milk\n" * 50)
    done = wfk(tmp_path, "runs", "--store", "sqlite:///notes.db")
    assert done.code == 1
    assert done.err == (
        "wfk: wfk runs: SQLite database 'notes.db' is corrupt or is not an SQLite database "
        "(file is not a database)\n"
    )


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "other.db")) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()
    before = digest(tmp_path / "other.db")
    done = wfk(tmp_path, "outbox", "--store", "sqlite:///other.db")
    assert done.code == 1
    assert done.err.startswith(
        "wfk: 'other.db' is a SQLite database without the workflow-kernel schema: "
    )
    assert digest(tmp_path / "other.db") == before


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """``ro.db``, made read-only (chmod 444) by the test; writable again afterwards."""
    path = tmp_path / "ro.db"
    yield path
    if path.exists():
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_read_commands_read_a_read_only_file(tmp_path: Path, read_only: Path) -> None:
    url = "sqlite:///ro.db"
    created = create_run(tmp_path, url, "--create")
    assert created.code == 0, created.err
    run_id = created.out.split()[2]
    read_only.chmod(0o444)
    before = digest(read_only)
    listed = wfk(tmp_path, "runs", "--store", url)
    assert listed.code == 0 and run_id in listed.out, listed.err
    shown = wfk(tmp_path, "run", "show", run_id[:8], "--store", url)
    assert shown.code == 0 and f"run       {run_id}" in shown.out, shown.err
    outbox = wfk(tmp_path, "outbox", "--store", url)
    assert (outbox.code, outbox.out.splitlines()[0]) == (0, "pending       1")
    assert digest(read_only) == before


def test_a_read_only_file_with_an_older_schema_says_to_migrate(
    tmp_path: Path, read_only: Path
) -> None:
    with closing(sqlite3.connect(read_only, isolation_level=None)) as conn:
        migrate(Database(conn), str(read_only), target=LATEST_VERSION - 1)
    read_only.chmod(0o444)
    before = digest(read_only)
    done = wfk(tmp_path, "runs", "--store", "sqlite:///ro.db")
    assert done.code == 1
    assert done.err == (
        f"wfk: 'ro.db' has schema version {LATEST_VERSION - 1}, older than version "
        f"{LATEST_VERSION} of this wfk, and cannot be written here: make it writable and run "
        "`wfk migrate --store sqlite:///ro.db` to upgrade it\n"
    )
    assert digest(read_only) == before


# -- PostgreSQL: an unreachable server -------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["runs"], ["run", "show", "abcd"], ["outbox"], ["dlq", "replay"], ["migrate"]],
    ids=lambda argv: " ".join(argv),
)
def test_a_refused_port_fails_fast_naming_the_command_and_libpqs_reason(
    tmp_path: Path, argv: list[str]
) -> None:
    done = wfk(tmp_path, *argv, "--store", REFUSED)
    assert done.code == 1
    assert done.err.startswith(
        f"wfk: wfk {' '.join(argv[:2] if argv[0] in ('run', 'dlq') else argv[:1])}: "
        "no PostgreSQL connection to 127.0.0.1:1 (connection refused): connection to server "
        'at "127.0.0.1", port 1 failed: Connection refused'
    )
    assert done.err.count("\n") == 1
    assert "s3cret-pw" not in done.err
    assert done.seconds < 4, "a refused connect must not wait for the 5 s pool timeout"


def test_an_unknown_host_is_named(tmp_path: Path) -> None:
    done = wfk(tmp_path, "runs", "--store", "postgresql://app:pw@no-such-host.invalid/db")
    assert done.code == 1
    assert done.err.startswith(
        "wfk: wfk runs: no PostgreSQL connection to no-such-host.invalid:5432 (unknown host): "
    )
    assert done.seconds < 4


@pytest.mark.postgres
def test_a_wrong_database_fails_fast_and_is_named(tmp_path: Path) -> None:
    from tests.postgres_support import require_postgres

    name = f"wfk_missing_{uuid.uuid4().hex[:8]}"
    url = postgres_url(make_conninfo(require_postgres(), dbname=name), "workflow_kernel")
    done = wfk(tmp_path, "outbox", "--store", url)
    assert done.code == 1
    assert "wfk: wfk outbox: no PostgreSQL connection to " in done.err
    assert f"(no database {name!r}): " in done.err
    assert done.seconds < 4


def test_a_server_that_never_answers_names_the_connect_timeout(tmp_path: Path) -> None:
    with closing(silent_port()) as server:
        port = server.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=2"
        done = wfk(tmp_path, "runs", "--store", url)
    assert done.code == 1
    assert done.err.startswith(
        f"wfk: wfk runs: no PostgreSQL connection to 127.0.0.1:{port} (no answer within the "
        "2 s connect timeout): connection timeout expired"
    )
    assert done.seconds < 6


def test_a_worker_checks_its_database_before_it_says_it_started(tmp_path: Path) -> None:
    done = wfk(tmp_path, "worker", "--app", DEMO_APP, "--store", REFUSED)
    assert done.code == 1
    assert done.err.startswith(
        "wfk: wfk worker: no PostgreSQL connection to 127.0.0.1:1 (connection refused): "
    )
    assert "worker started" not in done.err and "stops it" not in done.err
    assert done.seconds < 4
