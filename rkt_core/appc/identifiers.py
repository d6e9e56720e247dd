"""appc identifiers (ACIdentifier, ACName, UUID) and the path-safety rule for names.

The checks mirror how the appc v0.7.4 Go code validates (a character check, then an
edge check), not the anchored regular expression from the prose spec, so interior runs
such as ``a..b`` are accepted exactly as appc accepts them.
"""

import json
import re

from .errors import AppcError

# The patterns of this package are strings, compiled on first use (re caches them): none is
# compiled at import.
_AC_IDENTIFIER_BAD_CHAR = r"[^a-z0-9\-._~/]"
_AC_IDENTIFIER_EDGE_CHARS = "-._~/"
_AC_NAME_BAD_CHAR = r"[^a-z0-9\-]"
_AC_NAME_BAD_EDGES = r"^-+|-+\Z"
_HEX32 = r"[0-9a-fA-F]{32}\Z"
_INT64 = r"[+-]?[0-9]+\Z"
MAX_AC_NAME = 255  # bytes in a file name (NAME_MAX)


def quote(value: object) -> str:
    """``value`` in double quotes with control characters escaped, for error messages."""
    return json.dumps(str(value), ensure_ascii=False)


def _check(value: str, what: str, bad_char: str, edge_chars: str, allowed: str) -> str:
    if not isinstance(value, str):
        raise AppcError(f"invalid {what} {quote(value)}: must be a string")
    if value == "":
        raise AppcError(f"invalid {what}: must not be empty")
    if re.search(bad_char, value):
        raise AppcError(f"invalid {what} {quote(value)}: only lowercase letters, digits "
                        f"and {allowed} are allowed")
    if value[0] in edge_chars or value[-1] in edge_chars:
        raise AppcError(f"invalid {what} {quote(value)}: must start and end with a "
                        f"lowercase letter or digit")
    return value


def validate_ac_identifier(value: str, what: str = "name") -> str:
    """Check ``value`` is an appc ACIdentifier (image, label, annotation, isolator names)."""
    return _check(value, what, _AC_IDENTIFIER_BAD_CHAR, _AC_IDENTIFIER_EDGE_CHARS, "-._~/")


def validate_ac_name(value: str, what: str = "name") -> str:
    """Check ``value`` is an appc ACName (app, volume, mount point and port names), short
    enough to be a file name, which app and volume names become."""
    _check(value, what, _AC_NAME_BAD_CHAR, "-", "-")
    if len(value) > MAX_AC_NAME:
        raise AppcError(f"invalid {what} {quote(value[:32] + '...')}: longer than {MAX_AC_NAME} "
                        "characters")
    return value


def check_path_safe(value: str, what: str) -> str:
    """Check a name that will become a filesystem path has no empty, ``.`` or ``..`` segment."""
    if not isinstance(value, str) or value == "":
        raise AppcError(f"invalid {what}: must not be empty")
    if "\0" in value:
        raise AppcError(f"invalid {what} {quote(value)}: must not contain a NUL character")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise AppcError(f"invalid {what} {quote(value)}: empty, \".\" and \"..\" path "
                            f"segments are not allowed")
    return value


def validate_image_name(value: str, what: str = "image name") -> str:
    """Check an image name: an ACIdentifier that is also safe as a store path."""
    return check_path_safe(validate_ac_identifier(value, what), what)


def sanitize_ac_name(value: str) -> str:
    """Turn ``value`` into an ACName: lowercase, other characters become ``-``, edges trimmed."""
    name = re.sub(_AC_NAME_BAD_EDGES, "", re.sub(_AC_NAME_BAD_CHAR, "-", value.lower()))
    if name == "":
        raise AppcError(f"cannot make an app name from {quote(value)}: "
                        f"it has no lowercase letter or digit")
    return name


def app_name_from_image_name(image_name: str) -> str:
    """The default app name for an image: its last ``/`` segment, sanitized to an ACName."""
    return sanitize_ac_name(image_name.split("/")[-1])


def parse_uuid(value: str) -> str:
    """Parse an appc UUID (hyphens optional) into lowercase 8-4-4-4-12 form; all-zero is refused."""
    if not isinstance(value, str):
        raise AppcError(f"invalid UUID {quote(value)}: must be a string")
    digits = value.replace("-", "")
    if not re.match(_HEX32, digits):
        raise AppcError(f"invalid UUID {quote(value)}: expected 32 hexadecimal digits")
    digits = digits.lower()
    if digits == "0" * 32:
        raise AppcError("invalid UUID: the all-zero UUID is not allowed")
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def validate_image_id(value: str, what: str = "image ID") -> str:
    """Check an image ID hash, ``sha512-<value>``.

    appc v0.7.4 does not check the value's form; we only refuse characters that could turn an ID
    into a path (``/``, NUL), since stores name files after IDs.
    """
    if not isinstance(value, str):
        raise AppcError(f"invalid {what} {quote(value)}: must be a string")
    parts = value.split("-")
    if len(parts) != 2:
        raise AppcError(f"invalid {what} {quote(value)}: must look like sha512-<hex digits>")
    if parts[0] != "sha512":
        raise AppcError(f"invalid {what} {quote(value)}: unknown hash type {quote(parts[0])} "
                        f"(only sha512 is supported)")
    if parts[1] == "":
        raise AppcError(f"invalid {what} {quote(value)}: the hash value is empty")
    if any(c in parts[1] for c in "/\0"):
        raise AppcError(f"invalid {what} {quote(value)}: the hash value may not contain / or NUL")
    return value


def parse_semver(value: str, what: str = "acVersion") -> str:
    """Parse a SemVer like go-semver does (signs and leading zeros allowed) into its normal form."""
    if not isinstance(value, str):
        raise AppcError(f"invalid {what} {quote(value)}: must be a string")
    parts = value.split(".", 2)
    numbers = []
    if len(parts) == 3:
        patch, _, metadata = parts[2].partition("+")
        patch, _, prerelease = patch.partition("-")
        for text in (parts[0], parts[1], patch):
            if re.match(_INT64, text) and -(1 << 63) <= int(text) < (1 << 63):
                numbers.append(int(text))
    if len(numbers) != 3:
        raise AppcError(f"invalid {what} {quote(value)}: must be a version such as 0.7.4 "
                        f"(MAJOR.MINOR.PATCH[-PRERELEASE][+METADATA])")
    if numbers == [0, 0, 0] and not prerelease and not metadata:
        raise AppcError(f"invalid {what} {quote(value)}: the version cannot be zero")
    normal = "{}.{}.{}".format(*numbers)
    return normal + (f"-{prerelease}" if prerelease else "") + (f"+{metadata}" if metadata else "")
