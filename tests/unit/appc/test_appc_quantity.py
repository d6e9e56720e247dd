"""Quantities, checked against the vendored Kubernetes tables in appc v0.7.4."""

import pytest

from rkt_core.appc import AppcError, parse_quantity
from rkt_core.appc.gojson import RawFloat
from rkt_core.appc.quantity import BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, Quantity

MAX_MILLI = ((1 << 63) - 1) * 1000


def milli(mantissa: int, exponent: int) -> int:
    """mantissa * 10**exponent in thousandths (the Go tests' dec(m, e))."""
    return mantissa * 10 ** (exponent + 3)


# quantity_test.go TestQuantityParse: input, amount in thousandths, format.
PARSE_TABLE = [
    ("0", 0, DECIMAL_SI), ("0m", 0, DECIMAL_SI), ("0Ki", 0, BINARY_SI), ("0k", 0, DECIMAL_SI),
    ("0Mi", 0, BINARY_SI), ("0M", 0, DECIMAL_SI), ("0Gi", 0, BINARY_SI), ("0G", 0, DECIMAL_SI),
    ("0Ti", 0, BINARY_SI), ("0T", 0, DECIMAL_SI),
    ("1Ki", milli(1024, 0), BINARY_SI), ("8Ki", milli(8 * 1024, 0), BINARY_SI),
    ("7Mi", milli(7 * 1024 ** 2, 0), BINARY_SI), ("6Gi", milli(6 * 1024 ** 3, 0), BINARY_SI),
    ("5Ti", milli(5 * 1024 ** 4, 0), BINARY_SI), ("4Pi", milli(4 * 1024 ** 5, 0), BINARY_SI),
    ("3Ei", milli(3 * 1024 ** 6, 0), BINARY_SI), ("10Ti", milli(10 * 1024 ** 4, 0), BINARY_SI),
    ("100Ti", milli(100 * 1024 ** 4, 0), BINARY_SI),
    ("3m", milli(3, -3), DECIMAL_SI), ("9", milli(9, 0), DECIMAL_SI),
    ("8k", milli(8, 3), DECIMAL_SI), ("7M", milli(7, 6), DECIMAL_SI),
    ("6G", milli(6, 9), DECIMAL_SI), ("5T", milli(5, 12), DECIMAL_SI),
    ("40T", milli(4, 13), DECIMAL_SI), ("300T", milli(3, 14), DECIMAL_SI),
    ("2P", milli(2, 15), DECIMAL_SI), ("1E", milli(1, 18), DECIMAL_SI),
    ("1E-3", milli(1, -3), DECIMAL_EXPONENT), ("1e3", milli(1, 3), DECIMAL_EXPONENT),
    ("1E6", milli(1, 6), DECIMAL_EXPONENT), ("1e9", milli(1, 9), DECIMAL_EXPONENT),
    ("1E12", milli(1, 12), DECIMAL_EXPONENT), ("1e15", milli(1, 15), DECIMAL_EXPONENT),
    ("1E18", milli(1, 18), DECIMAL_EXPONENT), ("1e14", milli(1, 14), DECIMAL_EXPONENT),
    ("1e13", milli(1, 13), DECIMAL_EXPONENT), ("100.035k", milli(100035, 0), DECIMAL_SI),
    ("0.001", milli(1, -3), DECIMAL_SI), ("0.0005k", milli(5, -1), DECIMAL_SI),
    ("0.005", milli(5, -3), DECIMAL_SI), ("0.05", milli(5, -2), DECIMAL_SI),
    ("0.5", milli(5, -1), DECIMAL_SI), ("0.00050k", milli(5, -1), DECIMAL_SI),
    ("0.00500", milli(5, -3), DECIMAL_SI), ("0.05000", milli(5, -2), DECIMAL_SI),
    ("0.50000", milli(5, -1), DECIMAL_SI), ("0.5e0", milli(5, -1), DECIMAL_EXPONENT),
    ("0.5e-1", milli(5, -2), DECIMAL_EXPONENT), ("0.5e-2", milli(5, -3), DECIMAL_EXPONENT),
    ("10.035M", milli(10035, 3), DECIMAL_SI),
    ("1.2e3", milli(12, 2), DECIMAL_EXPONENT), ("1.3E+6", milli(13, 5), DECIMAL_EXPONENT),
    ("1.40e9", milli(14, 8), DECIMAL_EXPONENT), ("1.53E12", milli(153, 10), DECIMAL_EXPONENT),
    ("1.6e15", milli(16, 14), DECIMAL_EXPONENT), ("1.7E18", milli(17, 17), DECIMAL_EXPONENT),
    ("9.01", milli(901, -2), DECIMAL_SI), ("8.1k", milli(81, 2), DECIMAL_SI),
    ("7.123456M", milli(7123456, 0), DECIMAL_SI),
    ("6.987654321G", milli(6987654321, 0), DECIMAL_SI), ("5.444T", milli(5444, 9), DECIMAL_SI),
    ("40.1T", milli(401, 11), DECIMAL_SI), ("300.2T", milli(3002, 11), DECIMAL_SI),
    ("2.5P", milli(25, 14), DECIMAL_SI), ("1.01E", milli(101, 16), DECIMAL_SI),
    ("3.001m", milli(4, -3), DECIMAL_SI), ("1.1E-3", milli(2, -3), DECIMAL_EXPONENT),
    ("0.0001", milli(1, -3), DECIMAL_SI), ("0.0005", milli(1, -3), DECIMAL_SI),
    ("0.00050", milli(1, -3), DECIMAL_SI), ("0.5e-3", milli(1, -3), DECIMAL_EXPONENT),
    ("0.9m", milli(1, -3), DECIMAL_SI), ("0.12345", milli(124, -3), DECIMAL_SI),
    ("0.12354", milli(124, -3), DECIMAL_SI), ("9Ei", MAX_MILLI, BINARY_SI),
    ("9223372036854775807Ki", MAX_MILLI, BINARY_SI), ("12E", MAX_MILLI, DECIMAL_SI),
    ("100.035Ki", 102435840, BINARY_SI), ("0.5Mi", milli(512 * 1024, 0), BINARY_SI),
    ("0.05Gi", 53687091200, BINARY_SI), ("0.025Ti", 27487790694400, BINARY_SI),
    ("0.000001Ki", milli(2, -3), DECIMAL_SI), (".001", milli(1, -3), DECIMAL_SI),
    (".0001k", milli(100, -3), DECIMAL_SI), ("1.", milli(1, 0), DECIMAL_SI),
    ("1.G", milli(1, 9), DECIMAL_SI),
]


@pytest.mark.parametrize("text, amount, fmt", PARSE_TABLE)
def test_parse_table(text, amount, fmt):
    assert parse_quantity(text) == Quantity(amount, fmt)


@pytest.mark.parametrize("text, amount, fmt", PARSE_TABLE)
def test_parse_table_negative(text, amount, fmt):
    assert parse_quantity("-" + text) == Quantity(-amount, fmt)


@pytest.mark.parametrize("text", [
    "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i",
    "1K", "", ".", "1e", "1ee3", "1Kii", "+", "1 G",
])
def test_parse_invalid(text):
    with pytest.raises(AppcError, match="invalid quantity"):
        parse_quantity(text)


def test_uppercase_k_message_lists_suffixes():
    with pytest.raises(AppcError, match=r'invalid quantity "1K": unknown suffix "K" \(use m, k'):
        parse_quantity("1K")


@pytest.mark.parametrize("amount, fmt, text", [
    # quantity_test.go TestQuantityString.
    (milli(1024 ** 3, 0), BINARY_SI, "1Gi"), (milli(300 * 1024 ** 2, 0), BINARY_SI, "300Mi"),
    (milli(6 * 1024, 0), BINARY_SI, "6Ki"), (milli(1001 * 1024 ** 3, 0), BINARY_SI, "1001Gi"),
    (milli(1024 ** 4, 0), BINARY_SI, "1Ti"), (milli(5, 0), BINARY_SI, "5"),
    (milli(500, -3), BINARY_SI, "500m"), (milli(1, 9), DECIMAL_SI, "1G"),
    (milli(1000, 6), DECIMAL_SI, "1G"), (milli(1, -3), DECIMAL_SI, "1m"),
    (milli(80, -3), DECIMAL_SI, "80m"), (milli(1080, -3), DECIMAL_SI, "1080m"),
    (milli(300, 6), DECIMAL_SI, "300M"), (milli(1, 12), DECIMAL_SI, "1T"),
    (milli(1234567, 6), DECIMAL_SI, "1234567M"), (milli(1234567, -3), BINARY_SI, "1234567m"),
    (milli(3, 3), DECIMAL_SI, "3k"), (milli(1025, 0), BINARY_SI, "1025"),
    (0, DECIMAL_SI, "0"), (0, BINARY_SI, "0"), (milli(1, 9), DECIMAL_EXPONENT, "1e9"),
    (milli(1, -3), DECIMAL_EXPONENT, "1e-3"), (milli(80, -3), DECIMAL_EXPONENT, "80e-3"),
    (milli(300, 6), DECIMAL_EXPONENT, "300e6"), (milli(1, 12), DECIMAL_EXPONENT, "1e12"),
    (milli(3, 3), DECIMAL_EXPONENT, "3e3"), (0, DECIMAL_EXPONENT, "0"),
])
def test_canonical_string(amount, fmt, text):
    assert str(Quantity(amount, fmt)) == text
    if amount:
        assert str(Quantity(-amount, fmt)) == "-" + text


@pytest.mark.parametrize("text, canonical", [
    # quantity_test.go TestQuantityParseEmit.
    ("1Ki", "1Ki"), ("1Mi", "1Mi"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1000M", "1G"),
    (".000001Ki", "2m"), ("1.5Gi", "1536Mi"), ("1.5", "1500m"), ("1536", "1536"),
    ("1025Ki", "1025Ki"), ("9Ei", "9223372036854775807"), (" 64Mi\n", "64Mi"),
])
def test_parse_then_emit(text, canonical):
    assert str(parse_quantity(text)) == canonical
    if canonical != "0":
        assert str(parse_quantity("-" + text.strip())) == "-" + canonical


@pytest.mark.parametrize("text, value, milli_value", [
    ("1G", 1000000000, 1000000000000), ("64Mi", 67108864, 67108864000), ("500m", 1, 500),
    ("1", 1, 1000), ("1.5", 2, 1500), ("0", 0, 0), ("-1.5m", -1, -2), ("-2", -2, -2000),
    ("1k", 1000, 1000000),
])
def test_value_and_milli_value(text, value, milli_value):
    quantity = parse_quantity(text)
    assert (quantity.value, quantity.milli_value) == (value, milli_value)


def test_bare_json_numbers_are_quantities():
    assert str(parse_quantity(500)) == "500"
    assert str(parse_quantity(0.5)) == "500m"
    assert str(parse_quantity(RawFloat("1e9"))) == "1e9"


def test_huge_exponents_are_capped_or_rounded_without_hanging():
    assert parse_quantity("1e999999999").milli_value == MAX_MILLI
    assert parse_quantity("1e-999999999").milli_value == 1


@pytest.mark.parametrize("value", [True, None, ["1"], {"limit": "1"}])
def test_non_quantity_types(value):
    with pytest.raises(AppcError, match="must be a string or a number"):
        parse_quantity(value)
