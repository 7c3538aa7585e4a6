"""Type-checker expectations are tests (STYLE.md): mypy --strict over ``tests/typing/cases/``.

Each case file marks, on the line mypy reports, what mypy must say there:

- ``# N: <note>``  exactly this note (the output of ``reveal_type``);
- ``# E: <text>``  an error whose message (with its ``[code]``) contains ``<text>``.

Every other line of a case file must produce nothing. Case files are
self-contained (they import the project, never each other), and a type
defined in one is written ``case_name.Type`` whatever package path mypy
gives the file. All case files are checked in one mypy run with the
project's configuration (``pyproject.toml``, returns plugin included) and
``--strict``; each test below then looks at the file that proves one thing.
The cases folder is excluded from the project's own mypy run because some
of its lines are meant to fail.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"

MARKER = re.compile(r"#\s*(?P<kind>[NE]):\s*(?P<text>.+?)\s*$")
# "tests.typing.cases.case_require.Extraction" -> "case_require.Extraction"
CASE_MODULE_PREFIX = re.compile(r"\b(?:\w+\.)+(?=case_\w+\.)")
DIAGNOSTIC = re.compile(
    r"^(?P<path>[^:]+\.py):(?P<line>\d+): (?P<severity>error|note|warning): (?P<message>.*)$"
)


@attrs.frozen(order=True)
class Diagnostic:
    """One line of mypy output, or one expectation marker."""

    line: int
    kind: str  # "E" (error) or "N" (note)
    text: str


@attrs.frozen
class MypyRun:
    """The diagnostics of one mypy run, by case file name."""

    by_file: dict[str, list[Diagnostic]]
    stray: list[str]  # output lines that belong to no case file


def expectations(name: str) -> list[Diagnostic]:
    """The ``# N:`` / ``# E:`` markers of one case file."""
    found = []
    lines = (CASES / name).read_text().splitlines()
    for number, line in enumerate(lines, 1):
        match = MARKER.search(line)
        if match:
            found.append(Diagnostic(number, match["kind"], match["text"]))
    return found


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> MypyRun:
    """Run mypy once over every case file (a fresh cache keeps runs independent)."""
    files = sorted(str(path.relative_to(ROOT)) for path in CASES.glob("*.py"))
    args = [
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--strict",
        "--cache-dir",
        str(tmp_path_factory.mktemp("mypy-cache")),
        # Report only the case files: the kernel's own typing is `make typecheck`'s job.
        "--follow-imports=silent",
        "--no-error-summary",
        "--show-error-codes",
        "--no-pretty",
        "--no-color-output",
        *files,
    ]
    # mypy_path ("typings") and the reported paths are relative to the repository root.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        stdout, stderr, status = api.run(args)
    # 0: clean, 1: type errors (expected here), 2: mypy itself failed.
    assert status in (0, 1), f"mypy failed (exit {status}):\n{stderr}{stdout}"
    by_file: dict[str, list[Diagnostic]] = {path.name: [] for path in CASES.glob("*.py")}
    stray: list[str] = []
    for line in stdout.splitlines():
        match = DIAGNOSTIC.match(line)
        name = Path(match["path"]).name if match else ""
        if match is None or name not in by_file:
            stray.append(line)
            continue
        kind = "N" if match["severity"] == "note" else "E"
        message = CASE_MODULE_PREFIX.sub("", match["message"])
        by_file[name].append(Diagnostic(int(match["line"]), kind, message))
    return MypyRun(by_file, stray)


def mismatches(run: MypyRun, name: str) -> Iterator[str]:
    """Differences between what ``name`` expects and what mypy said about it."""
    expected = expectations(name)
    actual = list(run.by_file[name])
    error_lines = {e.line for e in expected if e.kind == "E"}
    for want in expected:
        if want.kind == "N":
            hit = next((a for a in actual if a == want), None)
        else:
            hit = next(
                (a for a in actual if (a.line, a.kind) == (want.line, "E") and want.text in a.text),
                None,
            )
        if hit is None:
            yield f"{name}:{want.line}: expected {want.kind}: {want.text}"
        else:
            actual.remove(hit)
    for extra in actual:
        # Notes on a line with an expected error only elaborate it ("Possible overload variants").
        if extra.kind == "N" and extra.line in error_lines:
            continue
        yield f"{name}:{extra.line}: unexpected {extra.kind}: {extra.text}"


def check(run: MypyRun, name: str, *, must_expect: list[str]) -> None:
    """Assert that ``name`` gets exactly its markers, and that the markers that
    carry the point of the test are still there."""
    texts = [e.text for e in expectations(name)]
    for text in must_expect:
        assert any(text in t for t in texts), f"{name} lost its marker for {text!r}"
    problems = list(mismatches(run, name))
    assert not problems, "\n".join(problems)


def test_mypy_reports_nothing_outside_the_case_files(mypy_run: MypyRun) -> None:
    """Every diagnostic belongs to a case file, so the per-file checks below see it all."""
    assert mypy_run.stray == []


def test_dispatch_is_typed_per_command(mypy_run: MypyRun) -> None:
    """``kernel.dispatch(RunCreate(...))`` is ``RunCreateResult`` and
    ``dispatch(RunCancel(...))`` is ``RunCancelResult`` (SPEC §5)."""
    check(
        mypy_run,
        "case_dispatch.py",
        must_expect=[
            'Revealed type is "kernel.commands.RunCreateResult"',
            'Revealed type is "kernel.commands.RunCancelResult"',
        ],
    )


def test_the_command_table_is_checked_per_command(mypy_run: MypyRun) -> None:
    """A table entry whose handler ends in another command's result, or filed with a
    result class that is not the command's, is an error on its line; the commands the
    shell added dispatch to their own result type."""
    check(
        mypy_run,
        "case_table.py",
        must_expect=[
            'Argument 3 to "entry" has incompatible type',
            'Revealed type is "kernel.commands.LeaseReleaseResult"',
        ],
    )
    assert len([e for e in expectations("case_table.py") if e.kind == "E"]) == 2


def test_require_is_typed_as_the_stage_output(mypy_run: MypyRun) -> None:
    """``ctx.require(extract)`` is ``extract``'s output type; ``ctx.optional`` adds
    ``None``; an id string gives ``Any`` (SPEC §4.1)."""
    check(
        mypy_run,
        "case_require.py",
        must_expect=[
            'Revealed type is "case_require.Extraction"',
            'Revealed type is "case_require.Summary | None"',
        ],
    )


def test_mispiped_stage_is_an_error_on_its_line(mypy_run: MypyRun) -> None:
    """Piping a stage whose input type does not match the previous output is
    reported on the ``.pipe(...)`` line: after the run input, after a single
    stage, and after a parallel group (SPEC §4.3)."""
    check(mypy_run, "case_pipe_mismatch.py", must_expect=['"pipe" of "WorkflowBuilder"'])
    assert len([e for e in expectations("case_pipe_mismatch.py") if e.kind == "E"]) == 4


def test_well_typed_pipelines_check_cleanly(mypy_run: MypyRun) -> None:
    """A correct pipeline, a stage with ``input=None``, and a stage after a
    parallel group (``input=None`` or taking the mapping) raise no error."""
    check(mypy_run, "case_pipe_valid.py", must_expect=["WorkflowBuilder["])
    assert [e.kind for e in expectations("case_pipe_valid.py")] == ["N"]


def test_build_refuses_an_output_the_last_group_does_not_give(mypy_run: MypyRun) -> None:
    """``output=`` must be the last stage's output type or a base class of it (the
    mapping after a parallel group), else ``.build()`` is an error (SPEC §19)."""
    check(
        mypy_run,
        "case_build_output.py",
        must_expect=['Cannot infer value of type parameter "Out" of "__get__" of "_Build"'],
    )
    assert len([e for e in expectations("case_build_output.py") if e.kind == "E"]) == 4


def test_only_async_batch_stages_may_suspend(mypy_run: MypyRun) -> None:
    """An ``execute`` that may return ``Suspend`` type-checks for
    ``define_async_batch_stage`` and is an error for ``define_stage`` (SPEC §4.1)."""
    check(mypy_run, "case_suspend.py", must_expect=['"define_stage" has incompatible type'])


def test_signal_stages_and_the_new_commands_are_typed(mypy_run: MypyRun) -> None:
    """``ctx.require(signal_stage)`` is its output type; ``RunSignal``, ``ScheduleUpsert``
    and ``ScheduleTick`` dispatch to their results; a number is no timeout."""
    check(
        mypy_run,
        "case_signals.py",
        must_expect=[
            'Revealed type is "case_signals.ApprovalDecision"',
            'Revealed type is "kernel.commands.RunSignalResult"',
            'Argument "timeout" to "define_signal_stage"',
        ],
    )
