"""What the docs name exists: files, dotted names, commands and their fields.

- every repository path in ``README.md``, ``docs/*.md`` and the docstrings and
  comments of ``kernel/``, ``adapters/``, ``testing/`` and ``bench/`` exists;
- every backticked ``kernel.X``, ``adapters.X`` or ``testing.X`` in the pages
  resolves to a module or attribute;
- the pages cite no "SPEC §": the spec is not part of the repository;
- the command tables of ``docs/concepts.md`` name every command the kernel
  dispatches, with its dotted ``type``, its fields and its result as the code
  declares them (the expected cells are printed when they differ), and the
  errors it raises (checked against the code for a run that does not exist);
- ``typings/`` holds a stub for each dependency that ships no types, and only
  for those.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import attrs
import pytest

import kernel
from kernel import Command, KernelError, RunNotFoundError
from kernel.shell.table import TABLE
from testing import create_test_kernel

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONCEPTS = ROOT / "docs" / "concepts.md"

# -- paths ----------------------------------------------------------------------

TOP_DIRS = ("kernel", "adapters", "testing", "tests", "docs", "bench", "typings")
PATH = re.compile(rf"(?<![\w./-])(?:{'|'.join(TOP_DIRS)})/[\w./-]*[\w/]")
PLACEHOLDER = re.compile(r"[A-Z]{2,}|\bx\.py$|_$")  # docs/examples/NAME.py and the like

NOT_FILES = {
    "kernel/decisions/run_tag.py": "docs/architecture.md's worked example of a command to add",
}
"""Paths a page names on purpose although they do not exist, and why."""


def _docstrings_and_comments(path: Path) -> Iterator[str]:
    source = path.read_text()
    yield from (line for line in source.splitlines() if line.lstrip().startswith("#"))
    for node in ast.walk(ast.parse(source)):
        # Module, class, function and attribute docstrings: string statements.
        value = node.value if isinstance(node, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            yield value.value


def _texts() -> Iterator[tuple[str, str]]:
    for page in PAGES:
        yield str(page.relative_to(ROOT)), page.read_text()
    for top in ("kernel", "adapters", "testing", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for text in _docstrings_and_comments(path):
                yield str(path.relative_to(ROOT)), text


def referenced_paths() -> list[tuple[str, str]]:
    """``(where, path)`` for every repository path the texts name."""
    found = set()
    for where, text in _texts():
        for match in PATH.finditer(text):
            path = match.group(0).rstrip(".")
            if not PLACEHOLDER.search(path):
                found.add((where, path))
    return sorted(found)


REFERENCED = referenced_paths()


@pytest.mark.parametrize("where,path", REFERENCED, ids=[f"{w}:{p}" for w, p in REFERENCED])
def test_referenced_path_exists(where: str, path: str) -> None:
    if path in NOT_FILES:
        assert not (ROOT / path).exists(), f"{path} exists now: drop it from NOT_FILES"
        return
    assert (ROOT / path).exists(), f"{where} names {path}, which does not exist"


def test_path_finder_finds_paths() -> None:
    """The pattern sees the paths it is meant to (so the check above can fail)."""
    text = "see `tests/multiprocess/test_workers.py`, (docs/cli.md) and kernel/decisions/."
    found = [m.group(0).rstrip(".") for m in PATH.finditer(text)]
    assert found == ["tests/multiprocess/test_workers.py", "docs/cli.md", "kernel/decisions/"]
    assert any(where.endswith(".md") and path.startswith("tests/") for where, path in REFERENCED)
    assert any(where.endswith(".py") for where, _ in REFERENCED), "docstrings are read too"


def test_pages_cite_no_spec_sections() -> None:
    """The spec the code was written from is not in the repository: a page that cites
    "SPEC §5" sends its reader nowhere."""
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert "SPEC §" not in line, f"{page.relative_to(ROOT)}:{number}: {line.strip()}"


# -- dotted names -----------------------------------------------------------------

DOTTED = re.compile(r"`((?:kernel|adapters|testing)(?:\.[A-Za-z_]\w*)+)")


def resolve(dotted: str) -> object:
    """The module or attribute ``dotted`` names.

    Raises:
        AttributeError: it names nothing (no such module or attribute).
    """
    parts = dotted.split(".")
    value: object = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], 2):
        if hasattr(value, part):
            value = getattr(value, part)
            continue
        try:
            value = importlib.import_module(".".join(parts[:index]))
        except ModuleNotFoundError as missing:
            raise AttributeError(dotted) from missing
    return value


NAMES = sorted(
    {(str(page.relative_to(ROOT)), m) for page in PAGES for m in DOTTED.findall(page.read_text())}
)


@pytest.mark.parametrize("where,dotted", NAMES, ids=[f"{w}:{d}" for w, d in NAMES])
def test_dotted_name_resolves(where: str, dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head == "kernel" and hasattr(kernel.Kernel, rest):
        return  # `kernel.execute_jobs(...)`: a method of a ``Kernel`` named ``kernel``
    try:
        resolve(dotted)
    except AttributeError:
        pytest.fail(f"{where} names `{dotted}`, which does not exist")


# -- the command tables of docs/concepts.md -----------------------------------------

CELL_SPLIT = re.compile(r"(?<!\\)\|")


def table_rows(text: str, header: list[str]) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header cells are ``header``, by first cell."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _cells(line) == header:
            rows: dict[str, list[str]] = {}
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                rows[cells[0].strip("`")] = cells
            return rows
    raise AssertionError(f"no table with the header {header} in {CONCEPTS.name}")


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    return [cell.strip() for cell in CELL_SPLIT.split(line.strip().strip("|"))]


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def annotation(cls: type[Any], name: str) -> str:
    """A field's type as the source spells it (``attrs.resolve_types``, which cattrs
    may have called, replaces ``field.type`` with the evaluated type)."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            written = vars(klass)["__annotations__"][name]
            assert isinstance(written, str), f"{klass.__name__}.{name}: not a string annotation"
            return written
    raise AssertionError(f"{cls.__name__}.{name} has no annotation")


def render_fields(cls: type[Any]) -> str:
    """A command's fields as the table shows them: ``name: type`` and ``= default``."""
    shown = []
    for field in attrs.fields(cls):
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        suffix = "" if default is attrs.NOTHING else f" = {default!r}"
        shown.append(_code(f"{field.name}: {annotation(cls, field.name)}{suffix}"))
    return ", ".join(shown) or "none"


def render_result(cls: type[Any]) -> str:
    """A result class and its fields: ``RunCancelResult``: ``cancelled: bool``."""
    fields = ", ".join(_code(f"{f.name}: {annotation(cls, f.name)}") for f in attrs.fields(cls))
    return f"{_code(cls.__name__)}: {fields}"


COMMANDS: list[tuple[type[Any], type[Any]]] = [(e.command, e.result) for e in TABLE]
IDS = [command.__name__ for command, _ in COMMANDS]
WHAT = ["command", "`type`", "what it does"]
SHAPE = ["command", "fields", "result", "raises"]


def test_the_tables_name_every_command_once() -> None:
    text = CONCEPTS.read_text()
    wanted = set(IDS)
    for header in (WHAT, SHAPE):
        assert set(table_rows(text, header)) == wanted, f"table {header}"
    subclasses = {c.__name__ for c in vars(kernel.commands).values() if _is_command(c)}
    assert subclasses == wanted, "a command class that TABLE does not dispatch"
    assert {name for name in wanted if getattr(kernel, name, None) is None} == set(), (
        "the page says every command is exported by `kernel`"
    )


def _is_command(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Command) and value is not Command


@pytest.mark.parametrize("command,result", COMMANDS, ids=IDS)
def test_command_row_matches_the_code(command: type[Any], result: type[Any]) -> None:
    text = CONCEPTS.read_text()
    name = command.__name__
    assert table_rows(text, WHAT)[name][1] == _code(command.type)
    _, fields, shown_result, _ = table_rows(text, SHAPE)[name]
    expected = render_fields(command)
    assert fields == expected, f"{name}'s fields cell should be:\n{expected}"
    assert shown_result == render_result(result), (
        f"{name}'s result cell should be:\n{render_result(result)}"
    )


def raised(command: type[Any]) -> set[str]:
    """The errors the raises cell of ``command`` names."""
    cell = table_rows(CONCEPTS.read_text(), SHAPE)[command.__name__][3]
    names = set(re.findall(r"`(\w+Error)`", cell))
    assert bool(names) == (cell != "none"), f"{command.__name__}: raises {cell!r}"
    return names


@pytest.mark.parametrize("command,result", COMMANDS, ids=IDS)
def test_raises_cell_names_kernel_errors(command: type[Any], result: type[Any]) -> None:
    for name in raised(command):
        error = getattr(kernel, name, None)
        assert isinstance(error, type) and issubclass(error, KernelError), name


def test_errors_table_lists_every_error_with_its_code() -> None:
    rows = table_rows(CONCEPTS.read_text(), ["error", "`code`", "raised when"])
    errors = {
        cls.__name__: cls
        for cls in vars(kernel.errors).values()
        if isinstance(cls, type) and issubclass(cls, KernelError) and cls is not KernelError
    }
    assert set(rows) == set(errors)
    for name, cls in errors.items():
        assert rows[name][1] == _code(cls.code), name


PLACEHOLDERS: dict[str, Any] = {
    "str": "missing",
    "int": 1,
    "float": 0.5,
    "Json": {},
    "tuple[str, ...]": ("missing",),
    "dict[str, Json]": {},
    "UsageKind": "text",
    "Usage": kernel.Usage(1, 1),
    "Decimal": Decimal(0),
    "bool": True,
}


def placeholder_command(command: type[Any]) -> Any:
    """An instance with every required field filled, naming things that do not exist."""
    values = {
        f.name: PLACEHOLDERS[annotation(command, f.name)]
        for f in attrs.fields(command)
        if f.default is attrs.NOTHING
    }
    return command(**values)


RUN_COMMANDS = [c for c in COMMANDS if "workflow_run_id" in attrs.fields_dict(c[0])]


@pytest.mark.parametrize("command,result", RUN_COMMANDS, ids=[c.__name__ for c, _ in RUN_COMMANDS])
def test_run_not_found_is_listed_exactly_when_raised(command: type[Any], result: type[Any]) -> None:
    """A command naming a run that does not exist raises ``RunNotFoundError`` if and
    only if its raises cell says so (``run.cancel`` returns ``cancelled=False``)."""
    test = create_test_kernel()
    try:
        test.dispatch(placeholder_command(command))
    except RunNotFoundError:
        assert "RunNotFoundError" in raised(command)
    else:
        assert "RunNotFoundError" not in raised(command)


def test_helper_types_are_shown_as_declared() -> None:
    """The names the result cells use (``ClaimedRun``, the ``Literal`` aliases)."""
    text = CONCEPTS.read_text()
    claimed = kernel.commands.ClaimedRun
    fields = ", ".join(
        _code(f"{f.name}: {annotation(claimed, f.name)}") for f in attrs.fields(claimed)
    )
    assert f"- `ClaimedRun`: {fields}" in text
    for alias in ("TransitionAction", "JobOutcome"):
        values = ", ".join(
            _code(repr(v).replace("'", '"')) for v in get_args(vars(kernel.commands)[alias])
        )
        assert f"- `{alias}`: {values}" in text, f"- `{alias}`: {values}"


# -- typings/ --------------------------------------------------------------------

CHECKED = ("kernel", "adapters", "testing", "tests", "docs/examples", "bench")
"""What ``make typecheck`` runs mypy --strict over."""

TYPED_BY = {
    "attrs": ("attrs", "py.typed"),
    "cattrs": ("cattrs", "py.typed"),
    "returns": ("returns", "py.typed"),
    "sqlite_utils": ("sqlite-utils", "py.typed"),
    "typing_extensions": ("typing-extensions", "typeshed"),
    "cronsim": ("cronsim", "py.typed"),
    "orjson": ("orjson", "py.typed"),
    "psycopg": ("psycopg", "py.typed"),
    "psycopg_pool": ("psycopg-pool", "py.typed"),
    "rich": ("rich", "py.typed"),
    "pytest": ("pytest", "py.typed"),
    "hypothesis": ("hypothesis", "py.typed"),
    "mypy": ("mypy", "py.typed"),
    "pyinstrument": ("pyinstrument", "py.typed"),
    "opentelemetry": ("opentelemetry-api", "py.typed"),
    "starlette": ("starlette", "py.typed"),
    "jinja2": ("jinja2", "py.typed"),
    "uvicorn": ("uvicorn", "py.typed"),
    "playwright": ("playwright", "py.typed"),
    "openai": ("openai", "py.typed"),
    "anthropic": ("anthropic", "py.typed"),
    "httpx2": ("httpx2", "py.typed"),
}
"""Each third-party module the checked code imports: its distribution, and where
mypy finds its types (the package's own ``py.typed``, or typeshed, bundled with mypy)."""

NOT_DEPENDENCIES = {"dbos": "bench/compare_dbos.py's optional comparison, behind an ignore"}


def third_party_imports() -> set[str]:
    """The top-level modules the checked code imports that are not this project's
    or the standard library's."""
    ours = {"kernel", "adapters", "testing", "tests", "bench"}
    found: set[str] = set()
    for top in CHECKED:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - ours - set(sys.stdlib_module_names)


def ships_types(module: str) -> bool:
    """Whether mypy finds types for ``module`` without a stub of ours."""
    if TYPED_BY[module][1] == "typeshed":
        return True
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} is not installed"
    # A namespace package (``opentelemetry``) has no origin: its folders hold py.typed.
    folders = [Path(spec.origin).parent] if spec.origin else spec.submodule_search_locations
    return any((Path(folder) / "py.typed").is_file() for folder in folders or ())


def test_every_imported_dependency_is_accounted_for() -> None:
    assert third_party_imports() - set(NOT_DEPENDENCIES) == set(TYPED_BY)


def test_typings_holds_stubs_exactly_for_dependencies_without_types() -> None:
    """``mypy_path = "typings"``: a stub there for each dependency that ships no
    types; none while every one does, and ``typings/README.md`` says which and why."""
    typings = ROOT / "typings"
    stubs = {p.stem for p in typings.iterdir() if p.is_dir() or p.suffix == ".pyi"}
    untyped = {module for module in TYPED_BY if not ships_types(module)}
    assert stubs == untyped
    readme = (typings / "README.md").read_text()
    for module, (distribution, source) in TYPED_BY.items():
        if module not in stubs:
            assert f"| `{distribution}` | {source} |" in readme, f"typings/README.md: {module}"
