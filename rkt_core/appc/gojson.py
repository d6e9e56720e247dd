"""JSON read and written the way Go's encoding/json handles the appc structs.

Reading: a struct's keys match case-insensitively, unknown keys are ignored and ``null``
counts as absent. Writing: compact output without spaces, or ``MarshalIndent`` with a tab,
with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped inside strings as Go does. Numbers with
a fraction or exponent keep their original text, so raw isolator values survive a round trip.
"""

import json
import re

from .errors import AppcError
from .identifiers import quote

INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
MAX_DEPTH = 100  # arrays and objects inside each other; appc documents need a handful

_GO_STRING_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                      "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PYTHON_ONLY_ESCAPES = r"\\(?:\\|b|f)"


class RawFloat(float):
    """A JSON number with a fraction or exponent, remembering the text it was written as."""

    def __new__(cls, text: str):
        number = super().__new__(cls, text)
        number.text = text
        return number


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str | dict, what: str) -> dict:
    """Parse ``data`` as a JSON object; a dict is returned as it is."""
    if isinstance(data, dict):
        return data
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise AppcError(f"invalid {what}: not UTF-8 text ({err.reason} at byte {err.start})")
    try:
        value = json.loads(data, parse_float=RawFloat, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise AppcError(f"invalid {what}: not valid JSON: {err.msg} at line {err.lineno}, "
                        f"column {err.colno}")
    except ValueError as err:
        raise AppcError(f"invalid {what}: not valid JSON: {err}")
    except RecursionError:
        raise AppcError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise AppcError(f"invalid {what}: must be a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise AppcError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: object) -> int:
    """How many arrays and objects are nested in ``value`` (counted without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def struct_fields(obj: object, fields: tuple[str, ...], what: str) -> dict[str, object]:
    """Pick ``fields`` out of a JSON object like Go decodes a struct.

    Keys match case-insensitively, unknown keys are ignored, ``null`` counts as absent and a
    later duplicate key wins. The result is keyed by the canonical field names.
    """
    if not isinstance(obj, dict):
        raise AppcError(f"invalid {what}: must be a JSON object")
    canonical = {name.lower(): name for name in fields}
    picked = {}
    for key, value in obj.items():
        name = canonical.get(key.lower())
        if name is not None:
            if value is None:
                picked.pop(name, None)
            else:
                picked[name] = value
    return picked


def as_str(value: object, what: str) -> str:
    """``value`` if it is a JSON string."""
    if not isinstance(value, str):
        raise AppcError(f"invalid {what}: must be a string, not {_json_type(value)}")
    return value


def as_bool(value: object, what: str) -> bool:
    """``value`` if it is a JSON boolean."""
    if not isinstance(value, bool):
        raise AppcError(f"invalid {what}: must be true or false, not {_json_type(value)}")
    return value


def as_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` if it is a JSON integer between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AppcError(f"invalid {what}: must be an integer, not {_json_type(value)}")
    if not low <= value <= high:
        raise AppcError(f"invalid {what}: {value} is out of range ({low} to {high})")
    return value


def as_list(value: object, what: str) -> list:
    """``value`` if it is a JSON array."""
    if not isinstance(value, list):
        raise AppcError(f"invalid {what}: must be a JSON array, not {_json_type(value)}")
    return value


def as_str_list(value: object, what: str) -> list[str]:
    """``value`` if it is a JSON array of strings."""
    return [as_str(item, f"{what}[{i}]") for i, item in enumerate(as_list(value, what))]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, list):
        return "an array"
    return "an object"


_SURROGATE = "[\ud800-\udfff]"


def _encode_string(text: str) -> str:
    # Like Go, write U+FFFD for what is not valid Unicode (an unpaired surrogate from a \ud800).
    text = re.sub(_SURROGATE, "\ufffd", text)
    encoded = json.dumps(text, ensure_ascii=False)
    # Python writes \b and \f where Go writes \u0008 and \u000c.
    encoded = re.sub(_PYTHON_ONLY_ESCAPES, lambda m: {"\\b": "\\u0008", "\\f": "\\u000c"}.get(
        m.group(0), m.group(0)), encoded)
    for char, escape in _GO_STRING_ESCAPES.items():
        encoded = encoded.replace(char, escape)
    return encoded


def _encode(value: object, indent: str | None, level: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, RawFloat):
        return value.text
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, dict):
        items = [f"{_encode_string(k)}:{' ' if indent is not None else ''}"
                 f"{_encode(v, indent, level + 1)}" for k, v in value.items()]
        return _join(items, "{", "}", indent, level)
    if isinstance(value, (list, tuple)):
        return _join([_encode(v, indent, level + 1) for v in value], "[", "]", indent, level)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _join(items: list[str], open_: str, close: str, indent: str | None, level: int) -> str:
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ",".join(items) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + indent * level + close


def dumps(value: object, pretty: bool = False) -> str:
    """Encode ``value`` like Go's ``json.Marshal``, or ``json.MarshalIndent(v, "", "\\t")``."""
    return _encode(value, "\t" if pretty else None, 0)
