"""``rkt help [COMMAND...]``: cobra's help command."""

import pytest


@pytest.mark.parametrize("path", [["fetch"], ["image", "list"], []])
def test_help_prints_the_commands_help(rkt, path):
    result = rkt("help", *path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == rkt(*path, "--help").stdout
    assert result.stdout.startswith(f"Usage: {' '.join(['rkt', *path])} ")


def test_help_is_listed_among_the_commands(rkt):
    assert "  help " in rkt("--help").stdout


@pytest.mark.parametrize("path,where", [(["nosuch"], "rkt"), (["image", "nosuch"], "rkt image")])
def test_help_of_an_unknown_command_is_an_error(rkt, path, where):
    result = rkt("help", *path)
    assert result.returncode == 254 and result.stdout == ""
    assert result.stderr.startswith(f'rkt: unknown command "nosuch" for "{where}"\n')
