"""The ``rkt`` command: global flags, lazily loaded subcommands, and rkt's exit codes.

Global flags are accepted before and after the subcommand name (rkt's persistent flags).
Subcommand modules are imported only when used; plugins are discovered only when a command needs
them or the name is not a built-in one (plugins may add commands).
"""

from __future__ import annotations

import importlib
import os
import re
import sys

import click

from ..errors import EXIT_RKT_ERROR, RktError

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

_GLOBALS_KEY = "rkt.globals"
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


def _store_global(ctx: click.Context, param: click.Parameter, value):
    if param.name == "insecure_options":
        from ..insecure import parse_insecure_options

        for item in value:
            parse_insecure_options(item)  # refuse unknown names while parsing
    source = ctx.get_parameter_source(param.name)
    if source is not None and source.name != "DEFAULT":
        store = ctx.find_root().meta.setdefault(_GLOBALS_KEY, {})
        if param.multiple:
            store[param.name] = tuple(store.get(param.name, ())) + tuple(value)
        else:
            store[param.name] = value
    return value


def _global_options() -> list[click.Option]:
    def opt(*decls, **kw):
        return click.Option(decls, expose_value=False, callback=_store_global, **kw)

    return [
        opt("--dir", metavar="DIR", help="rkt data directory [default: /var/lib/rkt]"),
        opt("--system-config", metavar="DIR", help="system configuration directory [default: /usr/lib/rkt]"),
        opt("--local-config", metavar="DIR", help="local configuration directory [default: /etc/rkt]"),
        opt("--user-config", metavar="DIR", help="user configuration directory"),
        opt("--debug/--no-debug", default=False, help="print out more debug information to stderr"),
        opt("--insecure-options", metavar="OPTS", multiple=True,
            help="comma-separated list of security features to disable: none, image, tls, ondisk, "
                 "http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all"),
        opt("--insecure-skip-verify/--no-insecure-skip-verify", default=False, hidden=True,
            help="deprecated (v0.14): same as --insecure-options=all-fetch"),
        opt("--trust-keys-from-https/--no-trust-keys-from-https", default=False,
            help="automatically trust gpg keys fetched from https"),
        opt("--disable-plugin", metavar="NAME", multiple=True,
            help="do not load the named plugin (repeatable, or comma-separated)"),
    ]


class OptionalValue(click.Option):
    """An option whose value is optional and, when given, attached: ``--net`` alone means
    ``--net=default`` and never takes the next argument, as pflag's NoOptDefVal options."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, is_flag=False, **kwargs)


def _rewrite_bool_values(command: click.Command, args: list[str]) -> list[str]:
    """Turn Go-style ``--flag=true|false`` into click's ``--flag`` / ``--no-flag``, and a bare
    optional-value option into ``--flag=<its default>``."""
    flags, optional = {}, {}
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag and param.is_bool_flag:
            for name in param.opts:
                flags[name] = (param.opts[0], param.secondary_opts[0] if param.secondary_opts else None)
        elif isinstance(param, OptionalValue):
            for name in param.opts:
                optional[name] = param.flag_value
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if arg in optional:
            out.append(f"{arg}={optional[arg]}")
            continue
        name, eq, value = arg.partition("=")
        if eq and name in flags and value.lower() in _TRUE | _FALSE:
            on, off = flags[name]
            if value.lower() in _TRUE:
                out.append(on)
            elif off:
                out.append(off)
            continue
        out.append(arg)
    return out


class RktCommand(click.Command):
    """A subcommand that also takes the global flags and Go-style boolean values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _rewrite_bool_values(self, args))


class RktGroup(click.Group):
    """A command group whose commands are :class:`RktCommand` and which takes global flags."""

    command_class = RktCommand

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _rewrite_bool_values(self, args))

    def resolve_command(self, ctx, args):
        # Exit 254 with rkt's wording for an unknown subcommand (click would exit 2).
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise RktError(f'unknown command "{name}" for "{ctx.command_path}"',
                           hint=f"Run '{ctx.command_path} --help' for usage.")
        return super().resolve_command(ctx, args)


RktGroup.group_class = RktGroup


class RootGroup(RktGroup):
    """``rkt`` itself: built-in commands are imported on demand, plugin commands on a miss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plugins_added = False

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if not self._plugins_added:
            self._plugins_added = True
            get_context(ctx).plugins.add_commands(self)

    def list_commands(self, ctx):
        self._add_plugin_commands(ctx)
        return sorted(set(BUILTIN_COMMANDS) | set(self.commands))

    def get_command(self, ctx, name):
        if name in self.commands:
            return self.commands[name]
        if name in BUILTIN_COMMANDS:
            module, attr = BUILTIN_COMMANDS[name].split(":")
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
            self.add_command(command, name)
            return command
        self._add_plugin_commands(ctx)
        return self.commands.get(name)


def get_context(ctx: click.Context | None = None):
    """The :class:`rkt_core.context.Context` of this invocation, built from the global flags."""
    from ..context import Context
    from ..insecure import Insecure, parse_insecure_options

    root = (ctx or click.get_current_context()).find_root()
    if "rkt.context" not in root.meta:
        flags = root.meta.get(_GLOBALS_KEY, {})
        insecure = Insecure.NONE
        for value in flags.get("insecure_options", ()):
            insecure |= parse_insecure_options(value)
        if flags.get("insecure_skip_verify"):
            insecure |= parse_insecure_options("all-fetch")
        kwargs = {k: flags[k] for k in ("dir", "system_config", "local_config", "user_config")
                  if flags.get(k) is not None}
        root.meta["rkt.context"] = Context(
            debug=bool(flags.get("debug")), insecure=insecure,
            trust_keys_from_https=bool(flags.get("trust_keys_from_https")),
            disabled_plugins=tuple(flags.get("disable_plugin", ())), **kwargs)
    return root.meta["rkt.context"]


@click.group(cls=RootGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """rkt, the pod-native container runtime."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(2)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LONG_WORD = re.compile(r"\S{256,}")
MAX_MESSAGE = 4000  # characters of an error message shown; the middle of a longer one is cut


def _shorten(text: str, head: int, tail: int) -> str:
    cut = len(text) - head - tail
    return f"{text[:head]}[... {cut} characters left out ...]{text[-tail:]}"


def _say(message: str) -> None:
    """Print an error message on stderr, safe for a terminal whatever values it quotes: control
    characters (but line breaks and tabs) escaped, overlong words and messages shortened."""
    message = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", message)
    message = _LONG_WORD.sub(lambda m: _shorten(m.group(), 128, 64), message)
    if len(message) > MAX_MESSAGE:
        message = _shorten(message, MAX_MESSAGE * 3 // 4, MAX_MESSAGE // 4)
    print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rkt`` console script: run a command and map errors to exit codes."""
    os.umask(os.umask(0o022) | 0o022)  # nothing rkt creates is writable by group or others
    try:
        code = cli.main(args=argv, prog_name="rkt", standalone_mode=False)
    except RktError as e:
        _say(f"rkt: {e.message}")
        if e.hint:
            _say(e.hint)
        code = EXIT_RKT_ERROR
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        _say(f"rkt: {e.format_message()}")
        code = EXIT_RKT_ERROR
    except click.Abort:
        print("rkt: aborted", file=sys.stderr)
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


if __name__ == "__main__":
    main()
