"""``rkt help [COMMAND...]``: the help of any command (cobra's help command)."""

import click

from ..errors import RktError
from .main import RktCommand


@click.command("help", cls=RktCommand)
@click.argument("path", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_command(ctx: click.Context, path: tuple[str, ...]) -> None:
    """Help about any command."""
    target = ctx.find_root()
    for name in path:
        group = target.command
        if not isinstance(group, click.Group):
            break  # the rest are arguments of the command, as cobra took them
        command = group.get_command(target, name)
        if command is None:
            raise RktError(f'unknown command "{name}" for "{target.command_path}"',
                           hint=f"Run '{target.command_path} --help' for usage.")
        target = click.Context(command, info_name=name, parent=target)
    click.echo(target.get_help())
