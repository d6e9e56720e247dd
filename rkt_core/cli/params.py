"""Command-line value types shared by commands (Go-style durations)."""

from __future__ import annotations

from ..duration import parse_duration


class Duration:
    """A parameter type holding a Go-style duration, converted to seconds (for
    :mod:`.declare`; ValueError for a value that is not a duration)."""

    name = "duration"

    def convert(self, value: str) -> float:
        """``value`` in seconds."""
        return parse_duration(value)


DURATION = Duration()
