"""Go-compatible JSON reading and writing."""

import pytest

from rkt_core.appc import AppcError
from rkt_core.appc.gojson import dumps, loads, struct_fields


def test_compact_has_no_spaces_and_keeps_key_order():
    assert dumps({"b": 1, "a": [True, None, "x"], "c": {}}) == '{"b":1,"a":[true,null,"x"],"c":{}}'


def test_pretty_is_marshal_indent_with_a_tab():
    assert dumps({"a": [1, {"b": []}], "c": {}}, pretty=True) == \
        '{\n\t"a": [\n\t\t1,\n\t\t{\n\t\t\t"b": []\n\t\t}\n\t],\n\t"c": {}\n}'


@pytest.mark.parametrize("text, encoded", [
    ("<a&b>", '"\\u003ca\\u0026b\\u003e"'),
    ("\u2028\u2029", '"\\u2028\\u2029"'),
    ("é✓", '"é✓"'),
    ("\b\f", '"\\u0008\\u000c"'),
    ("\\b\\f", '"\\\\b\\\\f"'),
    ("\n\t\r\"\x01", '"\\n\\t\\r\\"\\u0001"'),
])
def test_strings_are_escaped_like_go(text, encoded):
    assert dumps(text) == encoded


def test_numbers_keep_their_text():
    data = loads('{"a": 2.50, "b": 1e3, "c": 7, "d": -0.0}', "test")
    assert dumps(data) == '{"a":2.50,"b":1e3,"c":7,"d":-0.0}'


def test_loads_errors():
    with pytest.raises(AppcError, match="invalid thing: not valid JSON"):
        loads("{", "thing")
    with pytest.raises(AppcError, match="invalid thing: must be a JSON object"):
        loads("[1]", "thing")
    with pytest.raises(AppcError, match="not valid JSON"):
        loads('{"a": Infinity}', "thing")


def test_struct_fields_fold_case_skip_unknown_and_null():
    picked = struct_fields({"NAME": "a", "Value": None, "extra": 1, "name": "b"},
                           ("name", "value"), "thing")
    assert picked == {"name": "b"}
    with pytest.raises(AppcError, match="invalid thing: must be a JSON object"):
        struct_fields("x", ("name",), "thing")
