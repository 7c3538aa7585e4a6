"""Instructions per stage execution, counted by valgrind: a measure that the machine's
load does not move.

On a shared machine two runs of the same code differ in CPU time by 10 % or
more, so a change worth 2 % cannot be told from noise by timing. Valgrind's
``callgrind`` counts the instructions a process executes instead, which hardly
varies between runs. This runs ``bench/cpu_execute.py`` (a backlog of 3-stage
no-op runs, claimed and executed in groups of 16, on SQLite) under callgrind
twice, with ``--small`` and ``--large`` runs, and prints the difference divided
by the difference in stage executions: the instructions one more stage costs,
without the start-up (imports, schema) both runs share.

    .venv/bin/python bench/instructions.py
    .venv/bin/python bench/instructions.py --root /tmp/old   # a git worktree of another commit

Each count takes about 30 s and the two run side by side. Two runs of the same
code have come out within about 1 % of each other. Valgrind must be installed
(Debian's ``valgrind`` package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STAGES = 3
"""Stages per run of ``bench/cpu_execute.py``'s workflow."""

_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.M)


def collected(report: str) -> int:
    """The instruction count in callgrind's closing report (its standard error).

    >>> collected("==12== Events    : Ir\\n==12== Collected : 3950743095\\n==12==\\n")
    3950743095
    """
    found = _COLLECTED.search(report)
    if found is None:
        raise ValueError(f"no 'Collected' line in callgrind's report: {report[-500:]!r}")
    return int(found.group(1))


def count(root: Path, runs: int) -> int:
    """Instructions executed by ``cpu_execute.py --runs N --group 16 --repeat 1`` in ``root``."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            str(root / ".venv/bin/python"),
            str(root / "bench/cpu_execute.py"),
            *("--runs", str(runs), "--group", "16", "--repeat", "1"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cpu_execute.py under valgrind failed: {done.stderr[-2000:]}")
    return collected(done.stderr)


def per_stage(small: int, large: int, small_runs: int, large_runs: int) -> float:
    """Instructions of one more stage execution, from two counts.

    >>> per_stage(3_000, 9_000, 100, 300)
    10.0
    """
    return (large - small) / ((large_runs - small_runs) * STAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--small", type=int, default=100, help="runs of the first count")
    parser.add_argument("--large", type=int, default=300, help="runs of the second count")
    args = parser.parse_args(argv)
    if not 0 < args.small < args.large:
        parser.error(
            f"--small and --large: expected 0 < small < large, got {args.small}, {args.large}"
        )
    if shutil.which("valgrind") is None:
        parser.error("valgrind: not found (Debian's package 'valgrind' provides it)")
    root = args.root.resolve()
    if not (root / ".venv/bin/python").exists():
        parser.error(
            f"--root: no .venv/bin/python in {root} (for a git worktree, link this "
            "checkout's: ln -s $PWD/.venv <worktree>/.venv)"
        )
    with ThreadPoolExecutor(2) as pool:
        small, large = pool.map(lambda runs: count(root, runs), (args.small, args.large))
    print(f"{root}: cpu_execute.py, SQLite, groups of 16, under valgrind's callgrind")
    print(f"  {args.small} runs: {small:,} instructions; {args.large} runs: {large:,}")
    print(f"  per stage execution: {per_stage(small, large, args.small, args.large):,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
