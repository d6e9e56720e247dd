"""Record classes declared as with ``dataclasses``, without its cost at import.

``dataclasses`` writes each class's ``__init__``, ``__repr__`` and ``__eq__`` (and, when frozen,
``__hash__``, ``__setattr__`` and ``__delattr__``) as source text and compiles it: 2 to 3.5
million instructions per class, over a hundred million for the classes a ``rkt run`` defines,
which was a quarter of the whole run. :func:`dataclass` takes the same declarations (annotated
fields; defaults; :func:`field` with ``default_factory``, ``init``, ``repr``, ``compare`` and
``metadata``; ``frozen``; ``__post_init__``; fields inherited from record base classes;
``ClassVar`` annotations left out) and gives the class methods that walk its field list
instead. :func:`fields` and :func:`replace` work like their ``dataclasses`` namesakes; so do
``dataclasses.fields``, ``replace`` and ``asdict`` (for plugins and tests): a record's
``__dataclass_fields__`` is made with ``dataclasses`` the first time it is asked for.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (for `rkt list`)
if TYPE_CHECKING:
    from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class Field:
    """One field of a record (what :func:`field` declares)."""

    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "compare",
                 "metadata")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
                 repr: bool = True, compare: bool = True, metadata: dict | None = None):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name, self.type = "", ""
        self.default, self.default_factory = default, default_factory
        self.init, self.repr, self.compare = init, repr, compare
        self.metadata = metadata or {}

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"

    def value(self, owner: str) -> Any:
        """The value of the field when ``__init__`` was not given one."""
        if self.default is not MISSING:
            return self.default
        if self.default_factory is not MISSING:
            return self.default_factory()
        raise TypeError(f"{owner}.__init__() missing 1 required argument: '{self.name}'")


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
          repr: bool = True, compare: bool = True, metadata: dict | None = None) -> Any:
    """Declare a field with options, as ``dataclasses.field``."""
    return Field(default, default_factory, init, repr, compare, metadata)


def dataclass(cls: type | None = None, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record: ``@dataclass`` or ``@dataclass(frozen=True)``."""
    def wrap(cls: type) -> type:
        return _make_record(cls, frozen)

    return wrap if cls is None else wrap(cls)


def fields(record: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    try:
        return record.__record_fields__
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def replace(record: Any, **changes: Any) -> Any:
    """A copy of ``record`` with the fields in ``changes`` set to new values."""
    for f in fields(record):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be "
                                 "specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(record, f.name)
    return type(record)(**changes)


def _is_class_var(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _make_record(cls: type, frozen: bool) -> type:
    declared: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__record_fields__", ()):
            declared[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_class_var(annotation):
            continue
        default = cls.__dict__.get(name, MISSING)
        f = default if isinstance(default, Field) else Field(default)
        f.name, f.type = name, annotation
        if f.default is not MISSING and type(f.default).__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        if isinstance(default, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        declared[name] = f
    record_fields = tuple(declared.values())
    seen_default = False
    for f in record_fields:
        if f.init:
            if f.default is MISSING and f.default_factory is MISSING and seen_default:
                raise TypeError(f"non-default argument '{f.name}' follows default argument")
            seen_default = seen_default or f.default is not MISSING or f.default_factory is not MISSING
    cls.__record_fields__ = record_fields
    cls.__match_args__ = tuple(f.name for f in record_fields if f.init)
    methods = {"__init__": _init(cls, record_fields, frozen), "__repr__": _repr,
               "__eq__": _eq, "__dataclass_fields__": _DataclassFields(frozen)}
    if frozen:
        methods.update(__setattr__=_frozen_setattr(cls), __delattr__=_frozen_delattr(cls))
    for name, method in methods.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    explicit_hash = "__hash__" in cls.__dict__ and not (cls.__dict__["__hash__"] is None
                                                         and "__eq__" in cls.__dict__)
    if not explicit_hash:
        cls.__hash__ = _hash if frozen else None
    return cls


def _init(cls: type, record_fields: tuple[Field, ...], frozen: bool):
    names = tuple(f.name for f in record_fields if f.init)
    known = frozenset(names)
    owner = cls.__qualname__
    assign = object.__setattr__ if frozen else setattr
    post_init = hasattr(cls, "__post_init__")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{owner}.__init__() takes {len(names) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for name in kwargs:
            if name not in known:
                raise TypeError(f"{owner}.__init__() got an unexpected keyword argument '{name}'")
            if names.index(name) < len(args):
                raise TypeError(f"{owner}.__init__() got multiple values for argument '{name}'")
        given = dict(zip(names, args), **kwargs)
        for f in record_fields:
            assign(self, f.name, given[f.name] if f.name in given else f.value(owner))
        if post_init:
            self.__post_init__()

    return __init__


def _repr(self) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__
                      if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _compared(record: Any) -> tuple:
    return tuple(getattr(record, f.name) for f in record.__record_fields__ if f.compare)


def _eq(self, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self) -> int:
    return hash(_compared(self))


def _frozen_setattr(cls: type):
    names = frozenset(f.name for f in cls.__record_fields__)

    def __setattr__(self, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field '{name}'")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _frozen_delattr(cls: type):
    names = frozenset(f.name for f in cls.__record_fields__)

    def __delattr__(self, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field '{name}'")
        super(cls, self).__delattr__(name)

    return __delattr__


class _DataclassFields:
    """``__dataclass_fields__`` of a record, made by ``dataclasses`` on first use, so that
    ``dataclasses.fields``, ``replace`` and ``asdict`` take records."""

    def __init__(self, frozen: bool):
        self.frozen = frozen

    def __get__(self, instance: Any, owner: type) -> dict:
        import dataclasses

        def declared(value: Any) -> Any:
            return dataclasses.MISSING if value is MISSING else value

        twin = dataclasses.make_dataclass(owner.__name__, [
            (f.name, f.type, dataclasses.field(
                default=declared(f.default), default_factory=declared(f.default_factory),
                init=f.init, repr=f.repr, compare=f.compare, metadata=f.metadata))
            for f in owner.__record_fields__], frozen=self.frozen)
        found = dict(twin.__dataclass_fields__)
        type.__setattr__(owner, "__dataclass_fields__", found)
        return found
