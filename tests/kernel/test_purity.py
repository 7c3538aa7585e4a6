"""The kernel reads no clock and makes no ids by itself (SPEC §2).

import-linter forbids the I/O modules (``time``, ``uuid``, ``os``, ...); this
test covers what an import contract cannot see: ``datetime`` is allowed for
its types, but ``datetime.now()``-style calls are not. Time comes in through
the ``Clock`` port (``clock.now()``, or a stage's services).
"""

from __future__ import annotations

import ast
from pathlib import Path

KERNEL = Path(__file__).resolve().parents[2] / "kernel"
CLOCK_READS = {"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp"}
ALLOWED_RECEIVERS = {"clock", "_clock", "_services"}
"""``self.clock.now()`` and friends go through the Clock port."""


def clock_reads(path: Path, root: Path = KERNEL.parent) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in CLOCK_READS:
            continue
        receiver = node.func.value
        name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
        if name not in ALLOWED_RECEIVERS:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_kernel_module_reads_the_clock_directly() -> None:
    offenders = [line for path in sorted(KERNEL.rglob("*.py")) for line in clock_reads(path)]
    assert offenders == []


def test_the_check_catches_a_direct_clock_read(tmp_path: Path) -> None:
    """The scan itself works: a ``datetime.now(UTC)`` call is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text("from datetime import UTC, datetime\nstamp = datetime.now(UTC)\n")
    assert clock_reads(sample, tmp_path) == ["sample.py:2: datetime.now(UTC)"]
