"""Resource quantities (``500m``, ``64Mi``, ``1G``) as parsed by the Kubernetes v1.0 code vendored in appc.

A quantity is a number with an optional suffix: ``m`` (milli), none, ``k``, ``M``, ``G``, ``T``, ``P``,
``E`` (powers of 1000), ``Ki`` ... ``Ei`` (powers of 1024) or an exponent ``e3``/``E-3``. Uppercase
``K`` is not a suffix. Non-zero values are rounded up (away from zero) to a multiple of 1/1000 and
capped at the largest int64.
"""

from __future__ import annotations

import math
import re

from ..records import dataclass
from .errors import AppcError
from .identifiers import quote

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_SPLIT = r"([+-]?[0-9.]+)([eEimkKMGTP]*[-+]?[0-9]*)"
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_EXPONENT = r"[eE]([+-]?[0-9]+)"
_DECIMAL_SUFFIXES = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {exponent: suffix for suffix, exponent in _BINARY_SUFFIXES.items()}
_MAX = 2**63 - 1


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity; build it with :func:`parse_quantity`.

    ``millis`` is the amount in thousandths of the base unit; ``format`` is how it was written
    (``DecimalSI``, ``BinarySI`` or ``DecimalExponent``) and decides how :func:`str` writes it.
    """

    millis: int
    format: str = DECIMAL_SI

    @property
    def value(self) -> int:
        """The amount in base units, rounded up (away from zero): ``500m`` gives 1."""
        units = -(-abs(self.millis) // 1000)
        return -units if self.millis < 0 else units

    @property
    def milli_value(self) -> int:
        """The amount in thousandths of the base unit: ``1`` gives 1000."""
        return self.millis

    def __str__(self) -> str:
        """The canonical text, as Kubernetes writes it (``1024Mi`` becomes ``1Gi``)."""
        if self.millis == 0:
            return "0"
        sign = "-" if self.millis < 0 else ""
        millis = abs(self.millis)
        if self.format == BINARY_SI and millis >= 1024 * 1000 and millis % 1000 == 0:
            number, exponent = millis // 1000, 0
            while number % 1024 == 0:
                number, exponent = number // 1024, exponent + 10
            return f"{sign}{number}{_BINARY_BY_EXPONENT.get(exponent, '')}"
        number, exponent = millis, -3
        while number % 10 == 0:
            number, exponent = number // 10, exponent + 1
        while exponent % 3:
            number, exponent = number * 10, exponent - 1
        if self.format == DECIMAL_EXPONENT:
            suffix = f"e{exponent}" if exponent else ""
        else:
            suffix = _DECIMAL_BY_EXPONENT[exponent]
        return f"{sign}{number}{suffix}"


def _suffix(suffix: str) -> tuple[int, int, str] | None:
    """(base, exponent, format) of a suffix, or None if it is not one."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    match = re.fullmatch(_EXPONENT, suffix)
    if match and -(2**63) <= int(match.group(1)) < 2**63:
        return 10, int(match.group(1)), DECIMAL_EXPONENT
    return None


def parse_quantity(text: str | int | float) -> Quantity:
    """Parse a quantity such as ``"500m"``, ``"64Mi"``, ``"1G"`` or a bare number."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise AppcError(f"invalid quantity {quote(text)}: must be a string or a number")
    # A JSON number keeps the text it was written as (gojson.RawFloat), like Go's raw message.
    stripped = str(getattr(text, "text", text)).strip()
    match = re.fullmatch(_SPLIT, stripped)
    if not match or not re.fullmatch(_NUMBER, match.group(1)):
        raise AppcError(f"invalid quantity {quote(text)}: must be a number with an optional "
                        f"suffix, such as 500m, 64Mi or 1G")
    number, suffix = match.groups()
    parsed = _suffix(suffix)
    if parsed is None:
        raise AppcError(f"invalid quantity {quote(text)}: unknown suffix {quote(suffix)} (use m, k, "
                        f"M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3)")
    from decimal import Decimal  # here: imported with fractions only for a quantity
    from fractions import Fraction

    base, exponent, fmt = parsed
    amount = Fraction(Decimal(number))
    if base == 10:
        # Exponents beyond this bound overflow the cap or round up to 1m all the same.
        bound = len(number) + 25
        amount *= Fraction(10) ** max(-bound, min(bound, exponent))
    else:
        amount *= 2**exponent
    millis = math.ceil(abs(amount) * 1000)
    millis = min(millis, _MAX * 1000)
    if fmt == BINARY_SI and 0 < millis < 1000:
        fmt = DECIMAL_SI  # a fraction of a unit is written as milli-units
    return Quantity(-millis if amount < 0 else millis, fmt)
