"""``wfk schedule add|list|remove|pause|resume`` (SPEC §14).

Every command runs through the real ``wfk`` entry point in a subprocess, on
the demo's ``document-pipeline`` workflow. A schedule's fire is made with a
``schedule.tick`` dispatched here (a worker's orchestration tick does the
same).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters import create_kernel
from adapters.cli.errors import CliError
from adapters.cli.schedules import every_text, parse_every
from adapters.demo import document_pipeline
from adapters.sqlite import SqliteStore
from kernel import ScheduleTick
from tests.hosts.test_cli_polish import open_store, wfk

APP = "adapters.demo:document_pipeline"
INPUT = json.dumps({"title": "Daily digest", "text": "what happened today"})
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store URL whose database exists (created and migrated here)."""
    SqliteStore(tmp_path / "wfk.db").close()
    return f"sqlite:///{tmp_path / 'wfk.db'}"


def ok(tmp_path: Path, url: str, *argv: str) -> str:
    """Run ``wfk ARGV --store URL``, which must succeed; its stdout."""
    done = wfk(tmp_path, *argv, "--store", url)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def add(tmp_path: Path, url: str, schedule_id: str, *timing: str) -> str:
    return ok(
        tmp_path, url, "schedule", "add", schedule_id, "--workflow", "document-pipeline",
        *timing, "--input", INPUT, "--app", APP,
    )  # fmt: skip


def rows(listing: str) -> list[list[str]]:
    """The table's cells (columns are two spaces or more apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in listing.splitlines()]


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


@pytest.mark.slow
def test_add_list_pause_resume_and_remove(tmp_path: Path, url: str) -> None:
    assert ok(tmp_path, url, "schedule", "list") == "no schedules\n"
    before = datetime.now(UTC)
    out = add(tmp_path, url, "digest", "--every", "15m")
    found = re.fullmatch(rf"created schedule 'digest' \(every 15m\): next fire ({TIME}) UTC\n", out)
    assert found is not None, out
    next_fire = at(found[1])
    assert before + timedelta(minutes=15) - timedelta(seconds=1) <= next_fire
    assert next_fire <= datetime.now(UTC) + timedelta(minutes=15)

    out = add(tmp_path, url, "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Riga")
    found = re.fullmatch(
        rf"created schedule 'nightly' \(0 3 \* \* \*, Europe/Riga\): next fire ({TIME}) UTC "
        rf"\(({TIME}) Europe/Riga\)\n",
        out,
    )
    assert found is not None, out
    assert found[2].endswith(" 03:00:00")
    assert at(found[1]).hour in (0, 1)  # 03:00 in Riga is 01:00 UTC, or 00:00 in summer
    out = add(tmp_path, url, "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Riga")
    assert out.startswith("updated schedule 'nightly' (0 3 * * *, Europe/Riga): next fire ")

    table = rows(ok(tmp_path, url, "schedule", "list"))
    assert table[0] == [
        "SCHEDULE", "WORKFLOW", "WHEN", "TZ", "STATUS", "NEXT FIRE", "LAST FIRE", "LAST RUN"
    ]  # fmt: skip
    assert table[1][:5] == ["digest", "document-pipeline", "every 15m", "UTC", "active"]
    assert at(table[1][5]) == next_fire
    assert table[1][6:] == ["-", "-"]
    assert table[2][:5] == ["nightly", "document-pipeline", "0 3 * * *", "Europe/Riga", "active"]
    listed = json.loads(ok(tmp_path, url, "schedule", "list", "--json"))
    assert [record["id"] for record in listed] == ["digest", "nightly"]
    digest = listed[0]
    assert digest["every"] == 900.0
    assert digest["cron"] is None
    assert digest["input"] == json.loads(INPUT)
    assert (digest["timezone"], digest["overlap"], digest["catchup"]) == ("UTC", "skip", "latest")
    assert digest["enabled"] is True
    assert datetime.fromisoformat(digest["next_fire_at"]).replace(microsecond=0) == next_fire
    for name in ("created_at", "updated_at"):
        assert datetime.fromisoformat(digest[name]).tzinfo is not None
    assert (digest["last_fire_at"], digest["last_run_id"], digest["last_run_status"]) == (
        None,
        None,
        None,
    )
    assert listed[1]["cron"] == "0 3 * * *"
    assert listed[1]["every"] is None

    out = ok(tmp_path, url, "schedule", "pause", "digest", "--app", APP)
    assert out == "paused schedule 'digest': it fires once resumed (`wfk schedule resume digest`)\n"
    assert ok(tmp_path, url, "schedule", "pause", "digest", "--app", APP) == (
        "schedule 'digest' is paused already\n"
    )
    assert rows(ok(tmp_path, url, "schedule", "list"))[1][4:6] == ["paused", "-"]
    paused = json.loads(ok(tmp_path, url, "schedule", "list", "--json"))[0]
    assert (paused["enabled"], paused["next_fire_at"]) == (False, None)

    out = ok(tmp_path, url, "schedule", "resume", "digest", "--app", APP)
    assert re.fullmatch(rf"resumed schedule 'digest': next fire {TIME} UTC\n", out), out
    assert rows(ok(tmp_path, url, "schedule", "list"))[1][4] == "active"
    out = ok(tmp_path, url, "schedule", "resume", "digest", "--app", APP)
    assert re.fullmatch(rf"schedule 'digest' is active already: next fire {TIME} UTC\n", out)

    out = ok(tmp_path, url, "schedule", "remove", "digest")
    assert out == "removed schedule 'digest' (the runs it started stay)\n"
    assert [row[0] for row in rows(ok(tmp_path, url, "schedule", "list"))] == [
        "SCHEDULE",
        "nightly",
    ]


@pytest.mark.slow
def test_paused_schedules_are_added_paused(tmp_path: Path, url: str) -> None:
    out = add(tmp_path, url, "later", "--every", "1h30m", "--paused")
    assert out == (
        "created schedule 'later' (every 1h30m), paused: it fires once resumed "
        "(`wfk schedule resume later`)\n"
    )
    (record,) = json.loads(ok(tmp_path, url, "schedule", "list", "--json"))
    assert (record["enabled"], record["every"], record["next_fire_at"]) == (False, 5400.0, None)


@pytest.mark.slow
def test_list_shows_the_last_fire_and_its_run(tmp_path: Path, url: str) -> None:
    add(tmp_path, url, "often", "--every", "1s")
    time.sleep(1.1)
    store = open_store(url)
    try:
        (run_id,) = create_kernel(document_pipeline, store=store).dispatch(ScheduleTick()).created
    finally:
        store.close()
    table = rows(ok(tmp_path, url, "schedule", "list"))
    assert re.fullmatch(TIME, table[1][6]), table[1][6]
    assert table[1][7] == f"{run_id[:8]} (PENDING)"
    (record,) = json.loads(ok(tmp_path, url, "schedule", "list", "--json"))
    assert (record["last_run_id"], record["last_run_status"]) == (run_id, "PENDING")
    assert datetime.fromisoformat(record["last_fire_at"]).tzinfo is not None


BAD_SCHEDULES = [
    pytest.param(
        ["--cron", "* * * * * *"],
        "wfk: invalid schedule: --cron: expected five fields (minute hour day month weekday), "
        "got 6 in '* * * * * *'",
        id="six-field-cron",
    ),
    pytest.param(
        ["--cron", "61 * * * *"],
        "wfk: invalid schedule: --cron: Bad minute in '61 * * * *'",
        id="out-of-range-cron",
    ),
    pytest.param(
        ["--every", "0"],
        "wfk: --every '0': expected a duration > 0 such as 30s, 15m, 1h, 2d or 1h30m",
        id="every-0",
    ),
    pytest.param(
        ["--every", "0m"],
        "wfk: --every '0m': expected a duration > 0 such as 30s, 15m, 1h, 2d or 1h30m",
        id="every-0m",
    ),
    pytest.param(
        ["--every", "soon"],
        "wfk: --every 'soon': expected a duration > 0 such as 30s, 15m, 1h, 2d or 1h30m",
        id="every-garbage",
    ),
    pytest.param(
        ["--every=-5m"],
        "wfk: --every '-5m': expected a duration > 0 such as 30s, 15m, 1h, 2d or 1h30m",
        id="every-negative",
    ),
    pytest.param(
        ["--every", "15m", "--tz", "Mars/Olympus_Mons"],
        "wfk: invalid schedule: --tz: unknown time zone 'Mars/Olympus_Mons'",
        id="unknown-tz",
    ),
    pytest.param(
        ["--every", "15m", "--workflow", "nope"],
        f"wfk: workflow 'nope' is not registered by {APP} (it has: document-pipeline)",
        id="unknown-workflow",
    ),
    pytest.param(
        ["--every", "15m", "--input", '{"title": 1}'],
        "wfk: invalid schedule: input.title: expected str, got 1; input.text: required field "
        "missing",
        id="input-not-fitting",
    ),
    pytest.param(
        ["--every", "15m", "--input", "{bad"],
        "wfk: --input '{bad': not valid JSON: Expecting property name enclosed in double quotes "
        "(line 1, column 2)",
        id="input-not-json",
    ),
    pytest.param(
        ["--every", "15m", "--config", "[1]"],
        "wfk: --config: expected a JSON object {stage_id: {...}}, got [1]",
        id="config-not-an-object",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "message"), BAD_SCHEDULES)
def test_a_bad_schedule_is_refused_naming_the_flag_and_the_value(
    tmp_path: Path, url: str, flags: list[str], message: str
) -> None:
    argv = ["--workflow", "document-pipeline", "--input", INPUT, "--app", APP, *flags]
    done = wfk(tmp_path, "schedule", "add", "bad", *argv, "--store", url)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message + "\n")
    assert ok(tmp_path, url, "schedule", "list") == "no schedules\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            ["--cron", "* * * * *", "--every", "1m"],
            "argument --every: not allowed with argument --cron",
            id="both",
        ),
        pytest.param([], "one of the arguments --cron --every is required", id="neither"),
    ],
)
def test_cron_and_every_take_exactly_one(
    tmp_path: Path, url: str, flags: list[str], message: str
) -> None:
    done = wfk(
        tmp_path, "schedule", "add", "bad", "--workflow", "document-pipeline", "--input", INPUT,
        "--app", APP, *flags, "--store", url,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"wfk schedule add: error: {message}"


@pytest.mark.slow
def test_unknown_schedules_and_a_missing_app_are_clear(tmp_path: Path, url: str) -> None:
    for action in ("pause", "resume"):
        done = wfk(tmp_path, "schedule", action, "nope", "--app", APP, "--store", url)
        assert (done.returncode, done.stderr) == (
            1,
            "wfk: schedule 'nope' does not exist (see `wfk schedule list`)\n",
        )
    done = wfk(tmp_path, "schedule", "remove", "nope", "--store", url)
    assert (done.returncode, done.stderr) == (
        1,
        "wfk: schedule 'nope' does not exist: nothing to remove\n",
    )
    done = wfk(
        tmp_path, "schedule", "add", "x", "--workflow", "document-pipeline", "--every", "1m",
        "--input", INPUT, "--store", url,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("wfk: this command needs the workflows: pass --app")
    add(tmp_path, url, "x", "--every", "1m")
    done = wfk(tmp_path, "schedule", "pause", "x", "--store", url)
    assert done.returncode == 2
    done = wfk(tmp_path, "schedule", "pause", "x", "--app", "tests.hosts.apps:slow_app",
               "--store", url)  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1,
        "wfk: workflow 'document-pipeline' is not registered by tests.hosts.apps:slow_app "
        "(it has: slow)\n",
    )


# -- --every, without a process -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_every_accepts_units_in_order(text: str, every: timedelta) -> None:
    assert parse_every(text) == every


@pytest.mark.parametrize("text", ["", "0", "0s", "15", "m", "1.5h", "30m1h", "1 h", "15min", "-1m"])
def test_every_refuses_anything_else(text: str) -> None:
    with pytest.raises(CliError, match=r"^--every "):
        parse_every(text)


@pytest.mark.parametrize(
    ("every", "text"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(milliseconds=500), "0.5s"),
    ],
)
def test_every_is_shown_back_in_the_same_units(every: timedelta, text: str) -> None:
    assert every_text(every) == text
