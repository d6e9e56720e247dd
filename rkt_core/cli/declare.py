"""Declaring rkt's built-in commands without importing click, and running them without it.

Importing click costs more than three times the Python interpreter's own start-up (it imports
``inspect``, ``typing``, ``uuid``, ``datetime``, ``gettext``...): more than ``rkt version``'s
whole budget. Built-in commands are therefore declared with the decorators of this module,
which take click's arguments (``@option("--full/--no-full", default=False, help=...)``) and
only record them. Click gets the very same declarations (:func:`to_click`) when it is needed:
for help, for a usage error's message, for plugins' commands.

:func:`parse` reads a command line the way click would for the declarations it understands
(long options, ``--flag/--no-flag``, choices, repeated options, arguments): it returns the
callback's arguments, or None whenever click could answer differently (``-h``, a short
option, an unknown option, a missing or extra argument, an invalid value), and the command
then goes through click, which gives the same result or its error. ``tests/unit/cli`` holds
the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable  # not typing: its import (re, enum...) is 8% of `rkt version`

_BOOL_TRUE = {"true", "1", "t", "yes", "y"}
_BOOL_FALSE = {"false", "0", "f", "no", "n"}


class Choice:
    """A value among ``choices`` (click's ``Choice``, case-sensitive)."""

    def __init__(self, choices):
        self.choices = list(choices)

    def convert(self, value: str) -> str:
        """``value`` itself; ValueError if it is not a choice."""
        if value not in self.choices:
            raise ValueError(value)
        return value


class Param:
    """An option or argument as declared: click's positional and keyword arguments, and what
    click makes of them (the parameter's name, its options, whether it is a flag)."""

    def __init__(self, kind: str, decls: tuple[str, ...], kwargs: dict[str, object]):
        self.kind, self.decls, self.kwargs = kind, decls, kwargs
        self.opts: list[str] = []
        self.secondary: list[str] = []
        name = None
        for decl in decls if kind == "option" else ():
            if decl.isidentifier():
                name = decl
                continue
            first, _, second = decl.partition("/")
            if first.strip():
                self.opts.append(first.strip())
            if second.strip():
                self.secondary.append(second.strip())
        if kind == "argument":
            name = decls[0]
        elif name is None:
            name = ([o for o in self.opts if o.startswith("--")] or self.opts)[0].lstrip("-")
        self.name = name.replace("-", "_").lower()
        self.multiple = kwargs.get("multiple", False)
        self.optional_value = kwargs.get("optional_value")
        self.is_flag = kind == "option" and (bool(self.secondary) or kwargs.get("is_flag", False))
        self.type = kwargs.get("type")
        self.nargs = kwargs.get("nargs", 1)
        self.required = kwargs.get("required", kind == "argument" and self.nargs == 1)

    def default(self) -> object:
        """The value when the command line does not give one (click's rules)."""
        if "default" in self.kwargs:
            value = self.kwargs["default"]
            if self.multiple:
                return () if value is None else tuple(value)
            return self.type.convert(value) if self.type and isinstance(value, str) else value
        if self.multiple or (self.kind == "argument" and self.nargs == -1):
            return ()
        return False if self.is_flag else None


class Command:
    """A declared command: ``callback`` with its parameters, name and help.

    ``apps``: the command takes images with per-app flags (``run``, ``prepare``); they are split
    from the command line first (:mod:`.apps`) and passed as ``apps`` and ``pod_mounts``.
    """

    def __init__(self, name: str, callback: Callable, params: list[Param], apps: bool = False):
        self.name, self.callback, self.params, self.apps = name, callback, params, apps


class Group(Command):
    """A declared group of commands (``rkt image``)."""

    def __init__(self, name: str, callback: Callable, params: list[Param]):
        super().__init__(name, callback, params)
        self.commands: dict[str, Command] = {}

    def command(self, name: str | None = None, **kwargs: object):
        """Declare a subcommand, as ``@group.command(...)`` in click."""
        def decorate(f: Callable) -> Command:
            declared = command(name, **kwargs)(f)
            self.commands[declared.name] = declared
            return declared
        return decorate


def _params(f: Callable) -> list[Param]:
    return list(reversed(getattr(f, "__rkt_params__", [])))


def _name(f: Callable, name: str | None) -> str:
    return name or f.__name__.lower().replace("_", "-")


def command(name: str | None = None, *, apps: bool = False):
    """Declare a command (``@click.command``); ``apps``: see :class:`Command`."""
    def decorate(f: Callable) -> Command:
        return Command(_name(f, name), f, _params(f), apps)
    return decorate


def group(name: str | None = None):
    """Declare a group of commands (``@click.group``)."""
    def decorate(f: Callable) -> Group:
        return Group(_name(f, name), f, _params(f))
    return decorate


def option(*decls: str, **kwargs: object):
    """Declare an option (``@click.option``); ``optional_value=V``: the option may be given
    alone, meaning ``V`` (pflag's NoOptDefVal)."""
    def decorate(f: Callable) -> Callable:
        f.__dict__.setdefault("__rkt_params__", []).append(Param("option", decls, kwargs))
        return f
    return decorate


def argument(*decls: str, **kwargs: object):
    """Declare an argument (``@click.argument``)."""
    def decorate(f: Callable) -> Callable:
        f.__dict__.setdefault("__rkt_params__", []).append(Param("argument", decls, kwargs))
        return f
    return decorate


# --- parsing ---------------------------------------------------------------------------------


def value_options(params: list[Param]) -> set[str]:
    """The options among ``params`` that take a value (for :func:`.apps.split_app_args`)."""
    return {name for p in params if p.kind == "option" and not p.is_flag
            and p.optional_value is None for name in p.opts}


class NotLean(Exception):
    """The command line needs click (help, an error, something :func:`parse` does not read)."""


def rewrite_bool_values(flags: dict[str, tuple[str, str | None]], optional: dict[str, str],
                        args: list[str]) -> list[str]:
    """Turn Go-style ``--flag=true|false`` into ``--flag`` / ``--no-flag`` (``flags``: option ->
    its two spellings), and an optional-value option given alone into ``--flag=<its value>``
    (``optional``: option -> value), up to a ``--``: done before click or :func:`parse` reads
    the command line."""
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if arg in optional:
            out.append(f"{arg}={optional[arg]}")
            continue
        name, eq, value = arg.partition("=")
        if eq and name in flags and value.lower() in _BOOL_TRUE | _BOOL_FALSE:
            on, off = flags[name]
            if value.lower() in _BOOL_TRUE:
                out.append(on)
            elif off:
                out.append(off)
            continue
        out.append(arg)
    return out


def rewrite_declared(params: list[Param], args: list[str]) -> list[str]:
    """:func:`rewrite_bool_values` for declared parameters."""
    flags, optional = {}, {}
    for param in params:
        if param.is_flag and param.kwargs.get("flag_value") is None:
            flags.update((name, (param.opts[0], (param.secondary or [None])[0]))
                         for name in param.opts)
        elif param.optional_value is not None:
            optional.update((name, param.optional_value) for name in param.opts)
    return rewrite_bool_values(flags, optional, args)


def parse(params: list[Param], args: list[str], interspersed: bool = True
          ) -> tuple[dict[str, object], set[str], list[str]]:
    """Read ``args`` as click would for ``params``: (values by name, the names given on the
    command line, the arguments left after the options when not ``interspersed``, which a
    group hands its subcommand). Raises :class:`NotLean` where click is needed."""
    by_opt: dict[str, tuple[Param, bool]] = {}
    for param in params:
        if param.kind == "option":
            for name in param.opts:
                by_opt[name] = (param, True)
            for name in param.secondary:
                by_opt[name] = (param, False)
    values: dict[str, object] = {}
    given: set[str] = set()
    positional: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            if interspersed:
                positional.extend(args[i:])
            else:
                rest = args[i:]
            break
        if not arg.startswith("--") or len(arg) == 2:
            if arg.startswith("-") and len(arg) > 1:
                raise NotLean()  # a short option (-h) or an unusual one: click's
            if not interspersed:
                rest = args[i - 1:]
                break
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name not in by_opt:
            raise NotLean()
        param, primary = by_opt[name]
        if param.is_flag:
            if eq:
                raise NotLean()
            value = primary
        elif not eq:
            if i >= len(args):
                raise NotLean()
            value = args[i]
            i += 1
        if param.type is not None and not param.is_flag:
            try:
                value = param.type.convert(value)
            except ValueError:
                raise NotLean() from None
        if param.multiple:
            values[param.name] = values.get(param.name, ()) + (value,)
        else:
            values[param.name] = value
        given.add(param.name)
    _assign_arguments([p for p in params if p.kind == "argument"], positional, values, given)
    for param in params:
        values.setdefault(param.name, param.default())
    return values, given, rest


def _assign_arguments(arguments: list[Param], positional: list[str], values: dict[str, object],
                      given: set[str]) -> None:
    remaining = list(positional)
    for index, param in enumerate(arguments):
        if param.nargs == -1:
            after = len(arguments) - index - 1
            taken, remaining = remaining[:len(remaining) - after], remaining[len(remaining) - after:]
            if not taken and param.required:
                raise NotLean()
            values[param.name] = tuple(taken)
        elif remaining:
            values[param.name] = remaining.pop(0)
        elif param.required:
            raise NotLean()
        else:
            continue
        given.add(param.name)
    if remaining:
        raise NotLean()


# --- click -----------------------------------------------------------------------------------


def to_click(declared: Command):
    """The click command (or group) of ``declared``: the same declarations, given to click."""
    import functools

    import click

    from .click_cli import AppsCommand, OptionalValue, RktCommand, RktGroup

    callback = declared.callback
    if declared.apps:
        @functools.wraps(callback)
        def function(**kwargs: object) -> object:
            meta = click.get_current_context().meta
            return callback(apps=meta["rkt.apps"], pod_mounts=meta["rkt.pod_mounts"], **kwargs)
    else:
        @functools.wraps(callback)
        def function(**kwargs: object) -> object:
            return callback(**kwargs)
    function.__dict__.pop("__rkt_params__", None)
    for param in reversed(declared.params):
        kwargs = dict(param.kwargs)
        if kwargs.get("optional_value") is not None:
            kwargs.update(cls=OptionalValue, flag_value=kwargs.pop("optional_value"))
        if isinstance(kwargs.get("type"), Choice):
            kwargs["type"] = click.Choice(kwargs["type"].choices)
        elif kwargs.get("type") is not None:
            kwargs["type"] = _click_type(kwargs["type"])
        make = click.option if param.kind == "option" else click.argument
        function = make(*param.decls, **kwargs)(function)
    if isinstance(declared, Group):
        made = click.group(declared.name, cls=RktGroup)(function)
        for sub in declared.commands.values():
            made.add_command(to_click(sub), sub.name)
        return made
    return click.command(declared.name, cls=AppsCommand if declared.apps else RktCommand)(function)


def _click_type(declared: object):
    """A click parameter type converting with ``declared.convert`` (ValueError: bad value)."""
    import click

    class Converted(click.ParamType):
        name = declared.name

        def convert(self, value, param, ctx):
            if not isinstance(value, str):
                return value
            try:
                return declared.convert(value)
            except ValueError as e:
                self.fail(str(e), param, ctx)

    return Converted()
