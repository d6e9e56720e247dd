"""A download progress bar on the terminal: bytes, rate and time left. Nothing at all when the
stream is not a terminal (logs and pipes stay clean)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_INTERVAL = 0.1  # seconds between redraws


def human_bytes(n: float) -> str:
    """``1.5 MiB`` style sizes."""
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Progress of one transfer of ``total`` bytes (0 = unknown) that starts at ``done``.

    Call :meth:`update` with each chunk's size and :meth:`finish` at the end.
    """

    def __init__(self, label: str, total: int = 0, done: int = 0, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.label, self.total, self.done = label, total, done
        self._start_done = done
        self._start = self._last = time.monotonic()

    def update(self, n: int) -> None:
        """Count ``n`` more bytes; redraw at most every 0.1 s."""
        self.done += n
        if self.enabled and time.monotonic() - self._last >= _INTERVAL:
            self._draw()

    def line(self) -> str:
        """The current bar as text (without the carriage return)."""
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = (self.done - self._start_done) / elapsed
        text = f"{self.label}: "
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * _WIDTH)
            bar = "=" * filled + (">" if filled < _WIDTH else "") + " " * (_WIDTH - filled - 1)
            text += f"[{bar[:_WIDTH]}] {human_bytes(self.done)}/{human_bytes(self.total)}"
        else:
            text += human_bytes(self.done)
        text += f" {human_bytes(rate)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f" ETA {_eta((self.total - self.done) / rate)}"
        return text

    def _draw(self) -> None:
        self._last = time.monotonic()
        self.stream.write("\r\x1b[K" + self.line())
        self.stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
