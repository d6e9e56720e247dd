"""Records behave as the dataclasses they are declared like, and cost no ``dataclasses`` import."""

import dataclasses
import json
import subprocess
import sys

import pytest

from rkt_core import records


def declare(make, field, frozen=False):
    """The same declarations, made with ``make`` (``records`` or ``dataclasses``)."""

    @make(frozen=frozen)
    class Base:
        name: str
        tags: list = field(default_factory=list)

    @make(frozen=frozen)
    class Point(Base):
        x: int = 0
        hidden: str = field(default="h", repr=False, compare=False)
        since: bool = field(default=False, metadata={"since": 2})

        def __post_init__(self):
            object.__setattr__(self, "seen", True)

    return Point


@pytest.fixture(params=[False, True], ids=["mutable", "frozen"])
def both(request):
    return (declare(records.dataclass, records.field, request.param),
            declare(dataclasses.dataclass, dataclasses.field, request.param), request.param)


def test_construction_repr_and_equality_match_dataclasses(both):
    ours, theirs, _ = both
    for args, kwargs in [(("a",), {}), (("a", ["t"], 3), {"hidden": "x"}), ((), {"name": "b", "x": 5})]:
        a, b = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert repr(a).replace("Point", "P") == repr(b).replace("Point", "P")
        assert a.seen and (a.name, a.tags, a.x, a.hidden) == (b.name, b.tags, b.x, b.hidden)
    assert ours("a", hidden="x") == ours("a", hidden="y") != ours("b")
    assert ours("a").tags is not ours("a").tags
    assert ours("a") != theirs("a")
    assert ours.__match_args__ == theirs.__match_args__


@pytest.mark.parametrize("args,kwargs,message", [
    ((), {}, "missing 1 required argument: 'name'"),
    (("a", [], 1, "h", False, "extra"), {}, "takes 6 positional arguments but 7 were given"),
    (("a",), {"name": "b"}, "got multiple values for argument 'name'"),
    (("a",), {"nope": 1}, "got an unexpected keyword argument 'nope'"),
])
def test_wrong_arguments_are_refused(both, args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        both[0](*args, **kwargs)


def test_frozen_records_refuse_assignment_and_hash_like_dataclasses(both):
    ours, theirs, frozen = both
    record = ours("a", x=1)
    if frozen:
        with pytest.raises(AttributeError, match="cannot assign to field 'x'"):
            record.x = 2
        with pytest.raises(AttributeError, match="cannot delete field 'x'"):
            del record.x
        assert hash(ours("a", (), 1)) == hash(ours("a", (), 1, "other"))
    else:
        record.x = 2
        assert record.x == 2
        with pytest.raises(TypeError, match="unhashable"):
            hash(record)
    assert (ours.__hash__ is None) == (theirs.__hash__ is None)


def test_fields_and_replace(both):
    ours, _, _ = both
    assert [f.name for f in records.fields(ours)] == ["name", "tags", "x", "hidden", "since"]
    assert records.fields(ours)[4].metadata == {"since": 2}
    changed = records.replace(ours("a", x=1), x=2)
    assert (changed.name, changed.x) == ("a", 2)
    with pytest.raises(TypeError):
        records.replace(ours("a"), nope=1)


def test_dataclasses_functions_take_records(both):
    ours, theirs, _ = both
    record = ours("a", ["t"], 3)
    assert dataclasses.is_dataclass(record)
    assert dataclasses.asdict(record) == dataclasses.asdict(theirs("a", ["t"], 3))
    assert [f.name for f in dataclasses.fields(record)] == [f.name for f in dataclasses.fields(theirs)]
    assert dataclasses.replace(record, x=9) == ours("a", ["t"], 9)


def test_declarations_dataclasses_refuses_are_refused():
    with pytest.raises(ValueError, match="mutable default"):
        @records.dataclass
        class Mutable:
            items: list = []

    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @records.dataclass
        class Order:
            a: int = 1
            b: int


def test_own_methods_are_kept_and_class_vars_are_not_fields():
    @records.dataclass
    class Custom:
        kind: "ClassVar[str]" = "k"
        a: int = 1

        def __repr__(self):
            return "custom"

    assert repr(Custom()) == "custom" and [f.name for f in records.fields(Custom)] == ["a"]


def test_the_plugin_api_records_need_no_dataclasses_import():
    program = ("import json, sys; import rkt_core.types, rkt_core.appc; "
               "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert "dataclasses" not in json.loads(out.stdout)
