"""The ``rkt`` command in click: help, usage errors, plugins' commands and the commands the
lean path of :mod:`.main` does not run.

Global flags are accepted before and after the subcommand name (rkt's persistent flags).
Built-in commands are imported when used; plugins are discovered only when the name is not a
built-in one (plugins may add commands) or the command list is shown.
"""

from __future__ import annotations

import importlib

import click

from ..errors import RktError
from . import declare
from .apps import split_app_args
from .main import BUILTIN_COMMANDS, GLOBAL_OPTIONS, GLOBALS_KEY, get_context, store_global


def _store_global(ctx: click.Context, param: click.Parameter, value):
    source = ctx.get_parameter_source(param.name)
    if source is not None and source.name != "DEFAULT":
        store_global(ctx.find_root().meta.setdefault(GLOBALS_KEY, {}), param.name, value,
                     param.multiple)
    return value


def _global_options() -> list[click.Option]:
    return [click.Option(p.decls, expose_value=False, callback=_store_global, **p.kwargs)
            for p in GLOBAL_OPTIONS]


class OptionalValue(click.Option):
    """An option whose value is optional and, when given, attached: ``--net`` alone means
    ``--net=default`` and never takes the next argument, as pflag's NoOptDefVal options."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, is_flag=False, **kwargs)


def _rewrite_bool_values(command: click.Command, args: list[str]) -> list[str]:
    """:func:`.declare.rewrite_bool_values` for a click command's parameters."""
    flags, optional = {}, {}
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag and param.is_bool_flag:
            for name in param.opts:
                flags[name] = (param.opts[0], param.secondary_opts[0] if param.secondary_opts else None)
        elif isinstance(param, OptionalValue):
            for name in param.opts:
                optional[name] = param.flag_value
    return declare.rewrite_bool_values(flags, optional, args)


class RktCommand(click.Command):
    """A subcommand that also takes the global flags and Go-style boolean values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _rewrite_bool_values(self, args))


class AppsCommand(RktCommand):
    """A command taking images with per-app flags (:mod:`.apps`); they land in
    ``ctx.meta["rkt.apps"]`` and ``ctx.meta["rkt.pod_mounts"]``."""

    def parse_args(self, ctx, args):
        if any(a in ("-h", "--help") for a in args):
            return super().parse_args(ctx, args)
        value_options = {name for p in self.params
                         if isinstance(p, click.Option) and not p.is_flag
                         and not isinstance(p, OptionalValue) for name in p.opts}
        pod_args, apps, mounts = split_app_args(value_options, args)
        ctx.meta["rkt.apps"], ctx.meta["rkt.pod_mounts"] = apps, mounts
        return super().parse_args(ctx, pod_args)


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
            if isinstance(command, declare.Command):
                command = declare.to_click(command)
            self.add_command(command, name)
            return command
        self._add_plugin_commands(ctx)
        return self.commands.get(name)


@click.group(cls=RootGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """rkt, the pod-native container runtime."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(2)


def run(args: list[str]):
    """Run the command line ``args`` through click; what the command returned (its exit
    status, or None). Click's errors become :class:`RktError` (``rkt: <message>``, exit 254)."""
    try:
        return cli.main(args=args, prog_name="rkt", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        raise RktError(e.format_message()) from None
    except click.Abort:
        raise RktError("aborted") from None
