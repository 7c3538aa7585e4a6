"""The hosts and CLI docs are true: their examples run, and ``docs/cli.md``'s sessions replay.

* ``docs/examples/hosts_*.py`` run as scripts (``python docs/examples/x.py``).
* Every ``console`` block of ``docs/cli.md`` (unless marked
  ``<!-- cli: not run -->``) is replayed in order in an empty directory:
  each ``$ wfk ...`` line is run with ``main()``, and its output must match
  the page's, ids, times and durations aside; a ``...`` line stands for any lines.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import attrs
import pytest

from adapters.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("hosts_*.py"))
CLI_PAGE = ROOT / "docs" / "cli.md"

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX8 = re.compile(r"\b[0-9a-f]{8}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:\+00:00)?")
DURATION = re.compile(r"\b\d+(?:\.\d+)? (?:ms|s)\b|\b\d+ m \d\d s\b|\b\d+ h \d\d m\b")
NOT_RUN = "<!-- cli: not run -->"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_the_hosts_examples_run_as_scripts(example: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(example)], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


@attrs.frozen
class Step:
    line: int
    command: str
    expected: list[str]


def sessions(page: Path) -> list[Step]:
    """The ``$ command`` lines of the page's runnable console blocks, with their output."""
    lines = page.read_text().splitlines()
    steps: list[Step] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```console":
            index += 1
            continue
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        end = lines.index("```", index + 1)
        if before.strip() != NOT_RUN:
            for number in range(index + 1, end):
                if lines[number].startswith("$ "):
                    steps.append(Step(number + 1, lines[number][2:], []))
                else:
                    steps[-1].expected.append(lines[number])
        index = end + 1
    return steps


def normalize(line: str) -> str:
    line = UUID.sub("<uuid>", line)
    line = HEX8.sub("<hex>", line)
    line = TIME.sub("<time>", line)
    line = DURATION.sub("<duration>", line)
    return " ".join(line.split())


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, where a ``...`` line in ``expected`` matches any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def first_seen(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    found: list[str] = []
    for line in lines:
        found += [m for m in pattern.findall(line) if m not in found]
    return found


def test_the_cli_page_sessions_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("adapters.sqlite")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WFK_STORE", raising=False)
    monkeypatch.delenv("WFK_APP", raising=False)
    ids: dict[str, str] = {}  # an id on the page -> the id this replay made
    steps = sessions(CLI_PAGE)
    assert len(steps) >= 15
    for step in steps:
        words = shlex.split(step.command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "wfk", f"docs/cli.md:{step.line}: not a wfk command"
        argv = [
            next((ids[page][: len(word)] for page in ids if page.startswith(word)), word)
            if len(word) >= 8 and HEX8.fullmatch(word[:8])
            else word
            for word in words[1:]
        ]
        output = io.StringIO()
        with redirect_stdout(output), redirect_stderr(output):
            main(argv)
        actual = output.getvalue().splitlines()
        assert matches([normalize(x) for x in step.expected], [normalize(x) for x in actual]), (
            f"docs/cli.md:{step.line}: `{step.command}` printed:\n" + "\n".join(actual)
        )
        page_ids = first_seen(UUID, step.expected)
        ids.update(zip(page_ids, first_seen(UUID, actual), strict=False))
