"""What a simulation returns or raises, and the trace file a failure is saved to."""

from __future__ import annotations

import json
import re
from pathlib import Path

from attrs import frozen

LINE = re.compile(r"^t=(?P<t>\d+\.\d{3})s (?P<rest>.*)$")


def key_of(line: str) -> tuple[float, str]:
    """The time and the key of a trace line (``t=41.000s w1 finish r3/a: completed``)."""
    found = LINE.match(line)
    if found is None:
        raise ValueError(f"not a simulation trace line: {line!r}")
    rest = found["rest"]
    if rest.startswith("client create "):  # its key ends with the input's JSON
        return float(found["t"]), rest.split(": failed: ", 1)[0]
    if rest.startswith("client signal "):  # its key ends with the payload's JSON
        head = rest.split(" ", 4)
        if len(head) == 5:
            _, end = json.JSONDecoder().raw_decode(head[4])
            return float(found["t"]), " ".join([*head[:4], head[4][:end]])
    key = rest.split(": ", 1)[0]
    return float(found["t"]), key


@frozen
class SimulationResult:
    """A simulation that broke no invariant: its seed, how many steps ran, and the steps."""

    seed: int | None
    steps: int
    trace: list[str]

    def save(self, path: str | Path) -> None:
        """Write the trace as JSON, for :func:`~testing.simulate.replay`."""
        save_trace(path, self.seed, self.trace)


class SimulationFailure(AssertionError):
    """An invariant broke: ``seed``, ``invariant`` (its message), the full failing
    schedule ``trace`` and the ``shrunk`` one, both lists of readable lines."""

    def __init__(
        self,
        seed: int | None,
        invariant: str,
        trace: list[str],
        shrunk: list[str],
        *,
        shrunk_invariant: str | None = None,
        note: str | None = None,
    ) -> None:
        self.seed = seed
        self.invariant = invariant
        self.trace = trace
        self.shrunk = shrunk
        self.shrunk_invariant = shrunk_invariant or invariant
        """The message the shrunk schedule breaks the invariant with (its runs' names)."""
        self.note = note
        """Why the schedule could not be shrunk, if it could not (``None``: it was)."""
        super().__init__(self._message())

    def _message(self) -> str:
        runs = sorted(set(re.findall(r"\br(\d+)\b", "\n".join(self.shrunk))), key=int)
        timelines: list[str] = []
        for number in runs[:5]:
            mine = [line for line in self.shrunk if re.search(rf"\br{number}\b", line)]
            timelines += [f"  r{number}:", *(f"    {line}" for line in mine)]
        return "\n".join(
            [
                f"simulation seed {self.seed} broke an invariant: {self.invariant}",
                *([f"warning: {self.note}"] if self.note else []),
                f"shrunk schedule ({len(self.shrunk)} of {len(self.trace)} steps), "
                f"which breaks it so: {self.shrunk_invariant}",
                *(f"  {line}" for line in self.shrunk),
                "each run's steps:",
                *timelines,
            ]
        )

    def save(self, path: str | Path) -> None:
        """Write the shrunk schedule as a regression file for :func:`~testing.simulate.replay`."""
        save_trace(path, self.seed, self.shrunk, invariant=self.shrunk_invariant)


def save_trace(
    path: str | Path, seed: int | None, trace: list[str], invariant: str | None = None
) -> None:
    data = {"seed": seed, "invariant": invariant, "trace": trace}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def load_trace(path: str | Path) -> tuple[int | None, list[str]]:
    """The seed and the lines of a file :meth:`SimulationResult.save` wrote."""
    data = json.loads(Path(path).read_text())
    trace = data.get("trace")
    if not isinstance(trace, list) or not all(isinstance(line, str) for line in trace):
        raise ValueError(f"{path}: expected a JSON object with a 'trace' list of lines")
    seed = data.get("seed")
    return (seed if isinstance(seed, int) else None), trace
