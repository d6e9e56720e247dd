"""Command-line value types shared by commands (Go-style durations)."""

from __future__ import annotations

import click

from ..duration import parse_duration


class Duration(click.ParamType):
    """A click parameter holding a Go-style duration, converted to seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


DURATION = Duration()
