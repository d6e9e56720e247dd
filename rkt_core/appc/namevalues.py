"""An ordered, immutable list of uniquely named string values (labels, annotations)."""

from collections.abc import Iterable, Iterator, Mapping

from .errors import AppcError
from .gojson import as_list, as_str, struct_fields
from .identifiers import quote, validate_ac_identifier


class NameValues:
    """Ordered ``(name, value)`` pairs with unique ACIdentifier names; iterating yields pairs.

    Subclasses name the kind of entry in ``kind`` and add rules in ``_check_values``.
    """

    kind = "entry"

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()):
        self._pairs = tuple((name, value) for name, value in pairs)
        seen = set()
        for name, value in self._pairs:
            validate_ac_identifier(name, f"{self.kind} name")
            if not isinstance(value, str):
                raise AppcError(f"invalid value of {self.kind} {quote(name)}: must be a string")
            if name in seen:
                raise AppcError(f"duplicate {self.kind} {quote(name)}: names must be unique")
            seen.add(name)
        self._check_values()

    def _check_values(self) -> None:
        """Extra rules of the subclass, checked after the names."""

    @classmethod
    def from_json(cls, data: list | None, what: str | None = None):
        """Build from a JSON list of ``{"name": ..., "value": ...}`` objects (``null`` is empty)."""
        what = what or f"{cls.kind}s"
        if data is None:
            return cls()
        pairs = []
        for i, item in enumerate(as_list(data, what)):
            fields = struct_fields(item, ("name", "value"), f"{what}[{i}]")
            pairs.append((as_str(fields.get("name", ""), f"{what}[{i}].name"),
                          as_str(fields.get("value", ""), f"{what}[{i}].value")))
        return cls(pairs)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, str]):
        """Build from a mapping, keeping its order."""
        return cls(mapping.items())

    def to_json(self) -> list[dict]:
        """The JSON list form, ``[{"name": ..., "value": ...}, ...]``."""
        return [{"name": name, "value": value} for name, value in self._pairs]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value called ``name``, or ``default``."""
        for key, value in self._pairs:
            if key == name:
                return value
        return default

    def as_dict(self) -> dict[str, str]:
        """The pairs as a new dict, in order."""
        return dict(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self._pairs)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._pairs)!r})"
