"""Isolators: named resource limits and capability sets on apps and pods (appc v0.7.4).

An isolator keeps the JSON value it was given. Names appc v0.7.4 knows are checked and
parsed; other names are kept as they are (``known`` is False) so the executor can tell the
user which isolators it ignored.
"""

from ..records import dataclass, field
from .errors import AppcError
from .gojson import as_bool, as_list, as_str, struct_fields
from .identifiers import quote, validate_ac_identifier
from .quantity import Quantity, parse_quantity

CPU = "resource/cpu"
MEMORY = "resource/memory"
BLOCK_BANDWIDTH = "resource/block-bandwidth"
BLOCK_IOPS = "resource/block-iops"
NETWORK_BANDWIDTH = "resource/network-bandwidth"
CAPABILITIES_RETAIN_SET = "os/linux/capabilities-retain-set"
CAPABILITIES_REMOVE_SET = "os/linux/capabilities-remove-set"

#: Resources with a request and a limit, whose ``default`` must be false.
_REQUEST_RESOURCES = (CPU, MEMORY)
#: Resources that apply to every device, whose ``default`` must be true and take no request.
_DEFAULT_RESOURCES = (BLOCK_BANDWIDTH, BLOCK_IOPS, NETWORK_BANDWIDTH)
_CAPABILITY_SETS = (CAPABILITIES_RETAIN_SET, CAPABILITIES_REMOVE_SET)
KNOWN_ISOLATORS = _REQUEST_RESOURCES + _DEFAULT_RESOURCES + _CAPABILITY_SETS


@dataclass(frozen=True)
class _Parsed:
    default: bool = False
    request: Quantity | None = None
    limit: Quantity | None = None
    capabilities: tuple[str, ...] = ()


def _parse_resource(name: str, value: object) -> _Parsed:
    what = f"value of isolator {quote(name)}"
    fields = struct_fields(value, ("default", "request", "limit"), what)
    default = as_bool(fields.get("default", False), f"{what}: default")
    request = limit = None
    if "request" in fields:
        request = _quantity(fields["request"], f"{what}: request")
    if "limit" in fields:
        limit = _quantity(fields["limit"], f"{what}: limit")
    if name in _REQUEST_RESOURCES and default:
        raise AppcError(f"invalid {what}: default must be false")
    if name in _DEFAULT_RESOURCES:
        if not default:
            raise AppcError(f"invalid {what}: default must be true")
        if request is not None:
            raise AppcError(f"invalid {what}: this resource takes no request, only a limit")
    return _Parsed(default=default, request=request, limit=limit)


def _quantity(value: object, what: str) -> Quantity:
    try:
        return parse_quantity(value)
    except AppcError as err:
        raise AppcError(f"invalid {what}: {err}") from None


def _parse_capabilities(name: str, value: object) -> _Parsed:
    what = f"value of isolator {quote(name)}"
    fields = struct_fields(value, ("set",), what)
    caps = as_list(fields.get("set", []), f"{what}: set")
    if not caps:
        raise AppcError(f"invalid {what}: set must list at least one capability")
    return _Parsed(capabilities=tuple(as_str(c, f"{what}: set[{i}]") for i, c in enumerate(caps)))


@dataclass(frozen=True)
class Isolator:
    """One isolator: its name and raw JSON value, parsed when the name is a known one."""

    name: str
    value: object = None
    _parsed: _Parsed = field(default=_Parsed(), init=False, repr=False, compare=False)

    def __post_init__(self):
        validate_ac_identifier(self.name, "isolator name")
        if not self.known:
            return
        if self.value is None:
            raise AppcError(f"invalid isolator {quote(self.name)}: a value is required")
        if self.name in _CAPABILITY_SETS:
            parsed = _parse_capabilities(self.name, self.value)
        else:
            parsed = _parse_resource(self.name, self.value)
        object.__setattr__(self, "_parsed", parsed)

    @property
    def known(self) -> bool:
        """Whether appc v0.7.4 defines this isolator name."""
        return self.name in KNOWN_ISOLATORS

    @property
    def limit(self) -> Quantity | None:
        """The limit of a resource isolator, if given."""
        return self._parsed.limit

    @property
    def request(self) -> Quantity | None:
        """The request of a resource isolator, if given (the spec defaults it to the limit)."""
        return self._parsed.request

    @property
    def default(self) -> bool:
        """The ``default`` flag of a resource isolator."""
        return self._parsed.default

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capability names of a capabilities isolator (empty for other isolators)."""
        return self._parsed.capabilities

    @classmethod
    def from_json(cls, data: object, what: str = "isolator") -> "Isolator":
        """Decode ``{"name": ..., "value": ...}``."""
        fields = struct_fields(data, ("name", "value"), what)
        return cls(as_str(fields.get("name", ""), f"{what} name"), fields.get("value"))

    def to_json(self) -> dict:
        """The JSON form, with the value as it was given."""
        return {"name": self.name, "value": self.value}


def isolators_from_json(data: object, what: str = "isolators") -> list[Isolator]:
    """Decode a JSON list of isolators (``null`` is an empty list)."""
    if data is None:
        return []
    return [Isolator.from_json(item, f"{what}[{i}]")
            for i, item in enumerate(as_list(data, what))]


def _resource_isolator(name: str, amount: str, flag: str) -> Isolator:
    try:
        quantity = str(parse_quantity(amount))
    except AppcError as err:
        raise AppcError(f"invalid --{flag} value: {err}") from None
    return Isolator(name, {"default": False, "request": quantity, "limit": quantity})


def memory_isolator(limit: str) -> Isolator:
    """A ``resource/memory`` isolator for ``--memory=64M`` (request and limit both set, as rkt).

    Limits under 4096 bytes are refused, as rkt does: ``16m`` is 16 milli-bytes, a typo for ``16M``.
    """
    isolator = _resource_isolator(MEMORY, limit, "memory")
    if isolator.limit.value < 4096:
        raise AppcError(f'memory limit "{limit}" is less than 4096 bytes (did you mean "{limit.upper()}"?)')
    return isolator


def cpu_isolator(limit: str) -> Isolator:
    """A ``resource/cpu`` isolator for ``--cpu=500m`` (request and limit both set, as rkt)."""
    return _resource_isolator(CPU, limit, "cpu")
