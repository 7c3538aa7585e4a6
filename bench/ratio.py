"""workflow-kernel's end-to-end figure against DBOS's, from the two benchmarks' output.

``make bench`` saves what ``bench/end_to_end.py`` (or ``end_to_end_postgres.py``)
and then ``bench/compare_dbos.py`` printed, and this prints the ratio:
workflow-kernel's stage executions/s (the median of the rows under the
``stage exec/s`` heading) over DBOS's ``steps/s``.

    .venv/bin/python bench/ratio.py .bench/end_to_end.txt .bench/dbos_sqlite.txt
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

HEADING = "stage exec/s"
_STEPS = re.compile(r"^steps/s:\s+([\d.]+)\s*$", re.MULTILINE)


def stage_rate(text: str) -> float:
    """The median of the numbers printed under :data:`HEADING` (right-aligned with it)."""
    lines = text.splitlines()
    heading = next((i for i, line in enumerate(lines) if HEADING in line), None)
    if heading is None:
        raise ValueError(f"no {HEADING!r} column")
    end = lines[heading].index(HEADING) + len(HEADING)
    values = []
    for line in lines[heading + 1 :]:
        match = re.search(r"([\d.]+)$", line[:end])
        if len(line) < end or line[end : end + 1] not in ("", " ") or not match:
            break
        values.append(float(match.group(1)))
    if not values:
        raise ValueError(f"no number under {HEADING!r}")
    return statistics.median(values)


def steps_rate(text: str) -> float:
    """DBOS's ``steps/s:`` figure."""
    match = _STEPS.search(text)
    if match is None:
        raise ValueError("no 'steps/s:' line")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("ours", type=Path, help="what end_to_end(_postgres).py printed")
    parser.add_argument("dbos", type=Path, help="what compare_dbos.py printed")
    args = parser.parse_args(argv)
    try:
        ours = stage_rate(args.ours.read_text())
        theirs = steps_rate(args.dbos.read_text())
    except (OSError, ValueError) as exc:
        print(f"ratio: {exc}", file=sys.stderr)
        return 1
    print(
        f"workflow-kernel {ours:,.0f} stage executions/s / DBOS {theirs:,.0f} steps/s "
        f"= {ours / theirs:.1f}x  ({args.ours.name} / {args.dbos.name})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
