"""The ``--insecure-options`` flag set (rkt's bit flags, names and the ``all*`` groups)."""

import enum

from .errors import UsageError


class Insecure(enum.IntFlag):
    """Security checks a user may switch off."""

    NONE = 0
    IMAGE = 1
    TLS = 2
    ONDISK = 4
    HTTP = 8
    PUBKEY = 16
    CAPABILITIES = 32
    PATHS = 64
    SECCOMP = 128


_GROUPS = {
    "none": Insecure.NONE,
    "all-fetch": Insecure.IMAGE | Insecure.TLS | Insecure.HTTP | Insecure.PUBKEY,
    "all-run": Insecure.CAPABILITIES | Insecure.PATHS | Insecure.SECCOMP,
}
_GROUPS["all"] = _GROUPS["all-fetch"] | _GROUPS["all-run"] | Insecure.ONDISK
NAMES = sorted([m.name.lower() for m in Insecure if m] + list(_GROUPS))


def parse_insecure_options(text: str) -> Insecure:
    """Parse a comma-separated list such as ``image,tls`` into flags."""
    flags = Insecure.NONE
    for word in filter(None, (w.strip().lower() for w in text.split(","))):
        if word in _GROUPS:
            flags |= _GROUPS[word]
        elif word.upper() in Insecure.__members__ and word != "none":
            flags |= Insecure[word.upper()]
        else:
            raise UsageError(
                f'invalid --insecure-options value "{word}": valid values are {", ".join(NAMES)}'
            )
    return flags


def format_insecure_options(flags: Insecure) -> str:
    """The comma-separated names of the single flags that are set (``none`` if none)."""
    names = [m.name.lower() for m in Insecure if m and m in flags]
    return ",".join(names) or "none"
