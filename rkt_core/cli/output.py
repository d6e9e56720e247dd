"""Output formats shared by commands: rkt's tab-aligned tables, human times and sizes, JSON."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Sequence  # not typing: list and status do without it

TAB_WIDTH = 8


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Align cells the way Go's tabwriter does with rkt's settings (tab padding, tab width 8).

    Each cell but the last of a row is padded with tabs to its column's width (the widest cell
    plus one, rounded up to a multiple of 8).
    """
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell) + 1)
    lines = []
    for row in rows:
        parts = []
        for i, cell in enumerate(row[:-1]):
            cellw = -(-widths[i] // TAB_WIDTH) * TAB_WIDTH
            parts.append(cell + "\t" * (-(-(cellw - len(cell)) // TAB_WIDTH)))
        parts.append(row[-1] if row else "")
        lines.append("".join(parts))
    return "".join(line + "\n" for line in lines)


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]], legend: bool = True) -> None:
    """Print a table with an optional header line (``--no-legend`` drops it)."""
    all_rows = ([list(header)] if legend else []) + [list(r) for r in rows]
    sys.stdout.write(format_table(all_rows))


def print_json(value, pretty: bool = False) -> None:
    """Print ``value`` as JSON (``--format json`` or ``json-pretty``)."""
    if pretty:
        sys.stdout.write(json.dumps(value, indent="\t") + "\n")
    else:
        sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")


_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_WEEK, _MONTH = 7 * _DAY, 30 * _DAY
_YEAR = 12 * _MONTH
_MAGNITUDES = [  # (below, format, divisor) as go-humanize's Time
    (1, "now", None), (2, "1 second %s", None), (_MINUTE, "%d seconds %s", 1),
    (2 * _MINUTE, "1 minute %s", None), (_HOUR, "%d minutes %s", _MINUTE),
    (2 * _HOUR, "1 hour %s", None), (_DAY, "%d hours %s", _HOUR), (2 * _DAY, "1 day %s", None),
    (_WEEK, "%d days %s", _DAY), (2 * _WEEK, "1 week %s", None), (_MONTH, "%d weeks %s", _WEEK),
    (2 * _MONTH, "1 month %s", None), (_YEAR, "%d months %s", _MONTH),
    (18 * _MONTH, "1 year %s", None), (2 * _YEAR, "2 years %s", None),
    (math.inf, "%d years %s", _YEAR),
]


def humanize_time(when: float, now: float | None = None) -> str:
    """``now``, ``5 minutes ago``, ``2 days from now``: relative times as rkt prints them."""
    now = time.time() if now is None else now
    delta, label = (now - when, "ago") if when <= now else (when - now, "from now")
    for below, fmt, divisor in _MAGNITUDES:
        if delta < below:
            if fmt == "now":
                return fmt
            return fmt % ((int(delta // divisor), label) if divisor else (label,))
    return "a long while " + label


def full_time(when: float) -> str:
    """Go's ``2006-01-02 15:04:05.999 -0700 MST`` layout in local time, as ``--full`` prints."""
    from datetime import datetime  # here: `rkt list` without --full does without it

    t = datetime.fromtimestamp(when).astimezone()
    millis = f"{t.microsecond // 1000:03d}".rstrip("0")
    seconds = t.strftime("%Y-%m-%d %H:%M:%S") + (f".{millis}" if millis else "")
    return f"{seconds} {t.strftime('%z')} {t.tzname()}"


def human_size(size: int) -> str:
    """IEC size without a space (``1.9MiB``, ``16MiB``, ``512B``), as go-humanize's IBytes."""
    if size < 10:
        return f"{size}B"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    exp = min(int(math.floor(math.log(size) / math.log(1024))), len(units) - 1)
    value = math.floor(size / 1024 ** exp * 10 + 0.5) / 10
    return (f"{value:.1f}" if value < 10 else f"{value:.0f}") + units[exp]
