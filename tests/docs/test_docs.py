"""Docs examples are code (STYLE.md): every Python block in the docs is a file that runs.

A fenced ``python`` block in ``README.md`` or ``docs/*.md`` must equal the
content of a file under ``docs/examples/`` or one region of it. Say which with
a comment on the line before the fence (recommended; blocks without one must
equal *some* example or region)::

    <!-- example: docs/examples/testing_retry.py -->
    <!-- example: docs/examples/testing_retry.py [test] -->

A region is the lines between ``# --8<-- [start:NAME]`` and
``# --8<-- [end:NAME]`` in the example, dedented; the marker lines themselves
never appear in a page. Every example is imported and its ``main()`` and
top-level ``test_*`` functions are called.

After editing an example, copy it into the pages that show it with::

    python tests/docs/test_docs.py --write
"""

import importlib.util
import inspect
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
EXAMPLE_MARKER = re.compile(
    r"^\s*<!--\s*example:\s*(?P<path>\S+?\.py)\s*(?:\[(?P<region>[\w-]+)\])?\s*-->\s*$"
)
REGION = re.compile(r"^\s*# --8<-- \[(?P<edge>start|end):(?P<name>[\w-]+)\]\s*$")
PYTHON_LANGS = {"python", "py", "python3"}


@attrs.frozen
class Block:
    """A fenced Python block of a page; ``start``/``end`` are its content's line indexes."""

    page: Path
    start: int
    end: int
    source: str
    marker: tuple[str, str | None] | None  # (example path, region) from the comment above

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.start}"


def pages() -> list[Path]:
    """The pages whose Python blocks are checked."""
    return [page for page in (ROOT / "README.md", *sorted(DOCS.glob("*.md"))) if page.is_file()]


def python_blocks(page: Path) -> list[Block]:
    """Every fenced Python block of ``page``, with the example marker above it."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        close = re.compile(rf"^ *{re.escape(opening['fence'])}\s*$")
        end = index + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        if opening["lang"].lower() in PYTHON_LANGS:
            previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
            found = EXAMPLE_MARKER.match(previous)
            marker = (found["path"], found["region"]) if found else None
            body = textwrap.dedent("\n".join(lines[index + 1 : end]))
            blocks.append(Block(page, index + 1, end, body.strip("\n"), marker))
        index = end + 1
    return blocks


def snippets(example: Path) -> dict[str | None, str]:
    """The shows of one example: ``None`` for the whole file, else its regions."""
    whole: list[str] = []
    regions: dict[str, list[str]] = {}
    open_regions: list[str] = []
    for number, line in enumerate(example.read_text().splitlines(), 1):
        edge = REGION.match(line)
        if edge is None:
            whole.append(line)
            for name in open_regions:
                regions[name].append(line)
        elif edge["edge"] == "start":
            assert edge["name"] not in regions, f"{example}:{number}: region declared twice"
            regions[edge["name"]] = []
            open_regions.append(edge["name"])
        else:
            assert edge["name"] in open_regions, f"{example}:{number}: end of an unopened region"
            open_regions.remove(edge["name"])
    assert not open_regions, f"{example}: regions never closed: {open_regions}"
    shows: dict[str | None, str] = {None: "\n".join(whole).strip("\n")}
    for name, body in regions.items():
        shows[name] = textwrap.dedent("\n".join(body)).strip("\n")
    return shows


def expected_source(block: Block) -> str | None:
    """What a marked block must contain, or ``None`` for an unmarked block."""
    if block.marker is None:
        return None
    path, region = block.marker
    example = ROOT / path
    assert example.is_file(), f"{block.where}: no example file {path}"
    shows = snippets(example)
    assert region in shows, f"{block.where}: {path} has no region {region!r}"
    return shows[region]


def load_example(path: Path) -> ModuleType:
    """Import an example under a private module name (so cattrs can resolve its types)."""
    name = f"docs_example_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ALL_BLOCKS = [block for page in pages() for block in python_blocks(page)]
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.where for block in ALL_BLOCKS])
def test_python_block_is_an_example(block: Block) -> None:
    """The block is a copy of the example (or region) it names, or of some example."""
    wanted = expected_source(block)
    if wanted is not None:
        assert block.source == wanted, (
            f"{block.where} differs from {block.marker}; "
            "run `python tests/docs/test_docs.py --write`"
        )
        return
    every = [show for path in EXAMPLE_FILES for show in snippets(path).values()]
    assert block.source in every, (
        f"{block.where} is not an example: move it to docs/examples/ and mark it with "
        "<!-- example: docs/examples/NAME.py -->"
    )


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[path.name for path in EXAMPLE_FILES])
def test_example_runs(path: Path) -> None:
    """Importing the example and calling its ``main()`` and ``test_*`` functions succeeds
    (their asserts are the documented results)."""
    module = load_example(path)
    main = getattr(module, "main", None)
    if callable(main):
        main()
    for name, function in vars(module).items():
        if name.startswith("test_") and inspect.isfunction(function):
            function()


def test_readme_example_is_shown_in_the_readme() -> None:
    """The README's example is the checked file, not a copy that may drift."""
    markers = [block.marker for block in python_blocks(ROOT / "README.md")]
    assert ("docs/examples/readme_example.py", None) in markers


def write_pages() -> list[Path]:
    """Copy each marked example (or region) into the block below its marker."""
    changed = []
    for page in pages():
        lines = page.read_text().splitlines()
        # Last block first, so earlier line numbers stay valid.
        for block in reversed(python_blocks(page)):
            wanted = expected_source(block)
            if wanted is not None and wanted != block.source:
                indent = FENCE.match(lines[block.start - 1])
                pad = indent["indent"] if indent else ""
                body = [pad + line if line else "" for line in wanted.splitlines()]
                lines[block.start : block.end] = body
        text = "\n".join(lines) + "\n"
        if text != page.read_text():
            page.write_text(text)
            changed.append(page)
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/docs/test_docs.py --write")
    for page in write_pages():
        print(f"updated {page.relative_to(ROOT)}")
