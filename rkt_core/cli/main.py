"""The ``rkt`` command: global flags, the built-in commands, and rkt's exit codes.

A built-in command declared with :mod:`.declare` runs without click when its command line is
one :func:`.declare.parse` reads exactly (the lean path: click's import costs more than
``rkt version`` may take); anything else, help and usage errors included, goes through click
(:mod:`.click_cli`), as do plugins' commands. Subcommand modules are imported only when used.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

from ..errors import EXIT_RKT_ERROR, RktError
from . import declare

# New container objects between two collections of the youngest generation (Python's: 700).
GC_THRESHOLD = 50_000

# name -> "module:attribute" under rkt_core.cli
BUILTIN_COMMANDS = {
    "version": "version:version",
    "config": "config:config",
    "plugins": "plugins:plugins",
    "fetch": "fetch:fetch",
    "trust": "trust:trust",
    "image": "image:image",
    "run": "run:run",
    "prepare": "prepare:prepare",
    "run-prepared": "run_prepared:run_prepared",
    "list": "list:list_pods",
    "status": "status:status",
    "cat-manifest": "cat_manifest:cat_manifest",
    "enter": "enter:enter",
    "logs": "logs:logs",
    "stop": "stop:stop",
    "rm": "rm:rm",
    "gc": "gc:gc",
    "install": "install:install",
    "help": "help:help_command",
}

GLOBALS_KEY = "rkt.globals"
# rkt's persistent flags, taken before and after the command name by every command.
GLOBAL_OPTIONS = [
    declare.Param("option", decls, kwargs) for decls, kwargs in [
        (("--dir",), {"metavar": "DIR", "help": "rkt data directory [default: /var/lib/rkt]"}),
        (("--system-config",), {"metavar": "DIR",
                                "help": "system configuration directory [default: /usr/lib/rkt]"}),
        (("--local-config",), {"metavar": "DIR",
                               "help": "local configuration directory [default: /etc/rkt]"}),
        (("--user-config",), {"metavar": "DIR", "help": "user configuration directory"}),
        (("--debug/--no-debug",), {"default": False,
                                   "help": "print out more debug information to stderr"}),
        (("--insecure-options",), {
            "metavar": "OPTS", "multiple": True,
            "help": "comma-separated list of security features to disable: none, image, tls, "
                    "ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all"}),
        (("--insecure-skip-verify/--no-insecure-skip-verify",), {
            "default": False, "hidden": True,
            "help": "deprecated (v0.14): same as --insecure-options=all-fetch"}),
        (("--trust-keys-from-https/--no-trust-keys-from-https",), {
            "default": False, "help": "automatically trust gpg keys fetched from https"}),
        (("--disable-plugin",), {
            "metavar": "NAME", "multiple": True,
            "help": "do not load the named plugin (repeatable, or comma-separated)"}),
    ]]
_CLICK_NAMES = {"RktCommand", "RktGroup", "RootGroup", "OptionalValue", "cli"}


def __getattr__(name: str):
    # The click classes commands and plugins subclass, imported only by those who use them.
    if name in _CLICK_NAMES:
        from . import click_cli

        return getattr(click_cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_global(store: dict, name: str, value, multiple: bool) -> None:
    """Keep a global flag given on the command line (repeated ones add up, from the root
    command to the subcommand); ``--insecure-options`` values are checked on the way."""
    if name == "insecure_options":
        from ..insecure import parse_insecure_options

        for item in value:
            parse_insecure_options(item)  # refuse unknown names while parsing
    store[name] = tuple(store.get(name, ())) + tuple(value) if multiple else value


_lean_flags: dict | None = None  # the global flags of the command running without click
_lean_context = None


def get_context(ctx=None):
    """The :class:`rkt_core.context.Context` of this invocation, built from the global flags
    (``ctx``: the click context of a command run by click, by default the current one)."""
    global _lean_context
    if ctx is None and _lean_flags is not None:
        if _lean_context is None:
            _lean_context = _make_context(_lean_flags)
        return _lean_context
    import click

    root = (ctx or click.get_current_context()).find_root()
    if "rkt.context" not in root.meta:
        root.meta["rkt.context"] = _make_context(root.meta.get(GLOBALS_KEY, {}))
    return root.meta["rkt.context"]


def _make_context(flags: dict):
    from ..context import Context
    from ..insecure import Insecure, parse_insecure_options

    insecure = Insecure.NONE
    for value in flags.get("insecure_options", ()):
        insecure |= parse_insecure_options(value)
    if flags.get("insecure_skip_verify"):
        insecure |= parse_insecure_options("all-fetch")
    kwargs = {k: flags[k] for k in ("dir", "system_config", "local_config", "user_config")
              if flags.get(k) is not None}
    return Context(debug=bool(flags.get("debug")), insecure=insecure,
                   trust_keys_from_https=bool(flags.get("trust_keys_from_https")),
                   disabled_plugins=tuple(flags.get("disable_plugin", ())), **kwargs)


def _parse_level(params: list, args: list[str], flags: dict, interspersed: bool = True):
    """Parse one command level (the root, a group, a command) with the global flags; keep the
    global flags given; return the command's own values and what is left for a subcommand."""
    own = params + GLOBAL_OPTIONS
    values, given, rest = declare.parse(own, declare.rewrite_declared(own, args), interspersed)
    for param in GLOBAL_OPTIONS:
        if param.name in given:
            store_global(flags, param.name, values[param.name], param.multiple)
    return {p.name: values[p.name] for p in params}, rest


def _lean_command(args: list[str]):
    """The declared command a command line names, its arguments and the global flags; raises
    :class:`.declare.NotLean` when click must run it."""
    flags: dict = {}
    _, rest = _parse_level([], args, flags, interspersed=False)
    if not rest or rest[0] not in BUILTIN_COMMANDS:
        raise declare.NotLean()
    module, attr = BUILTIN_COMMANDS[rest[0]].split(":")
    command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    rest = rest[1:]
    while isinstance(command, declare.Group):
        _, rest = _parse_level(command.params, rest, flags, interspersed=False)
        if not rest or rest[0] not in command.commands:
            raise declare.NotLean()
        command, rest = command.commands[rest[0]], rest[1:]
    if not isinstance(command, declare.Command) or any(a in ("-h", "--help") for a in rest):
        raise declare.NotLean()
    extra = {}
    if command.apps:
        from .apps import split_app_args

        rest, apps, mounts = split_app_args(
            declare.value_options(command.params + GLOBAL_OPTIONS), rest)
        extra = {"apps": apps, "pod_mounts": mounts}
    values, _ = _parse_level(command.params, rest, flags)
    return command, {**values, **extra}, flags


def _run(args: list[str]):
    """Run a command line: on the lean path if it can, else through click."""
    global _lean_flags, _lean_context
    try:
        command, kwargs, flags = _lean_command(args)
    except declare.NotLean:
        from . import click_cli

        return click_cli.run(args)
    _lean_flags, _lean_context = flags, None
    try:
        return command.callback(**kwargs)
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)  # as click: end the line ^C interrupted, then "rkt: aborted"
        raise RktError("aborted") from None
    finally:
        _lean_flags = _lean_context = None


_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
_LONG_WORD = r"\S{256,}"
MAX_MESSAGE = 4000  # characters of an error message shown; the middle of a longer one is cut


def _shorten(text: str, head: int, tail: int) -> str:
    cut = len(text) - head - tail
    return f"{text[:head]}[... {cut} characters left out ...]{text[-tail:]}"


def _say(message: str) -> None:
    """Print an error message on stderr, safe for a terminal whatever values it quotes: control
    characters (but line breaks and tabs) escaped, overlong words and messages shortened."""
    import re  # only when there is an error to say

    message = re.sub(_CONTROL, lambda m: f"\\x{ord(m.group()):02x}", message)
    message = re.sub(_LONG_WORD, lambda m: _shorten(m.group(), 128, 64), message)
    if len(message) > MAX_MESSAGE:
        message = _shorten(message, MAX_MESSAGE * 3 // 4, MAX_MESSAGE // 4)
    print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rkt`` console script: run a command and map errors to exit codes."""
    os.umask(os.umask(0o022) | 0o022)  # nothing rkt creates is writable by group or others
    try:
        code = _run(sys.argv[1:] if argv is None else list(argv))
    except RktError as e:
        _say(f"rkt: {e.message}")
        if e.hint:
            _say(e.hint)
        code = EXIT_RKT_ERROR
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        _say(f"rkt: {e.strerror or e}{where}")
        code = EXIT_RKT_ERROR
    except Exception as e:  # a bug: say so plainly, with the traceback under --debug
        if "--debug" in (argv if argv is not None else sys.argv):
            import traceback

            traceback.print_exc()
        _say(f"rkt: unexpected error: {type(e).__name__}: {e}")
        code = EXIT_RKT_ERROR
    if isinstance(code, int):
        sys.exit(code)
    sys.exit(0)


def console() -> None:
    """Entry point of the ``rkt`` console script: :func:`main`, then leave at once.

    The interpreter's own teardown (clearing every module, collecting what is left) is a tenth
    of a fly run's instructions and saves nothing: output is flushed here, files rkt writes
    are closed by then, and the kernel releases descriptors, locks and memory.

    The cyclic garbage collector runs far less often (:data:`GC_THRESHOLD`): a command's
    imports create tens of thousands of objects that live as long as the process, and with
    the default threshold the collector walked them some thirty times in a fly run, 4% of its
    instructions, to free a few hundred. The threshold still bounds what cycles a long-running
    command (``rkt run`` of a service, the API service) leaves before a collection.
    """
    gc.set_threshold(GC_THRESHOLD)
    try:
        main()
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # as the interpreter does with sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away; a closed stream
            pass
    os._exit(code)


if __name__ == "__main__":
    # Run the module the commands import (``python -m`` loaded this file as another one).
    importlib.import_module("rkt_core.cli.main").console()
