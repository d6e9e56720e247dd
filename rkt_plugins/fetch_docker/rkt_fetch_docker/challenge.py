"""``WWW-Authenticate`` challenges (RFC 7235), parsed properly.

One header may hold several challenges, and parameter values may be quoted strings holding
commas (``scope="repository:a/b:pull,push"``) or backslash escapes; docker2aci split the header on
commas and broke on both. Scheme and parameter names are case-insensitive (lowercased here).
"""

from __future__ import annotations

import re

from rkt_core.plugin_api import dataclass, field

# Compiled on first use (re caches them): most fetches meet no challenge.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME = rf"[\s,]*({_TOKEN})"
_PARAM = rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*(,?)"
_TOKEN68 = r"\s+([A-Za-z0-9\-._~+/]+=*)\s*(?:,|\Z)"
_ESCAPE = r"\\(.)"
_SEPARATOR = r"\s*(?:,|\Z)"


@dataclass(frozen=True)
class Challenge:
    """One challenge: ``scheme`` (lowercase) and its parameters (names lowercase). A token68
    credential (``Negotiate abc==``) is kept under the key ``""``."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(_ESCAPE, r"\1", value[1:-1])
    return value


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of a ``WWW-Authenticate`` value (several headers joined with ``,`` too).
    What cannot be parsed ends the list."""
    scheme_re, param_re, token68_re, separator_re = map(
        re.compile, (_SCHEME, _PARAM, _TOKEN68, _SEPARATOR))
    challenges = []
    pos = 0
    while match := scheme_re.match(header, pos):
        scheme, pos = match.group(1).lower(), match.end()
        params: dict[str, str] = {}
        separated = False  # a comma (or the end) follows: another challenge may come
        token68 = token68_re.match(header, pos)
        if token68 and not param_re.match(header, pos):
            params[""] = token68.group(1)
            pos, separated = token68.end(), True
        else:
            while param := param_re.match(header, pos):
                params.setdefault(param.group(1).lower(), _unquote(param.group(2)))
                pos, separated = param.end(), bool(param.group(3))
                if not separated:
                    break
        challenges.append(Challenge(scheme, params))
        if not (separated or separator_re.match(header, pos)):
            break
    return challenges
