"""The exception every invariant of the simulation raises."""


class Violation(Exception):
    """An invariant does not hold; the message says which and why."""


__all__ = ["Violation"]
