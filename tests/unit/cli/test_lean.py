"""The lean path runs a built-in command exactly as click would: same arguments, same global
flags, same errors; whatever it does not read exactly goes to click."""

import importlib
import random

import pytest

from rkt_core.cli import click_cli, declare, main
from rkt_core.errors import RktError


def declared_commands():
    """Every built-in command declared with :mod:`rkt_core.cli.declare`, by command path."""
    found = {}
    for name, target in main.BUILTIN_COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"rkt_core.cli.{module}"), attr)
        if isinstance(command, declare.Group):
            found.update({(name, sub): c for sub, c in command.commands.items()})
        elif isinstance(command, declare.Command):
            found[(name,)] = command
    return found


COMMANDS = declared_commands()


def context_summary():
    ctx = main.get_context()
    return (ctx.dir_flag, ctx.system_config, ctx.local_config, ctx.user_config, ctx.debug,
            int(ctx.insecure), ctx.trust_keys_from_https, ctx.disabled_plugins)


@pytest.fixture
def record(monkeypatch):
    """Run a command line on the lean path and through click, each command's callback replaced
    by a recorder of its arguments and of the context the global flags make."""
    calls = []

    def recorder(**kwargs):
        calls.append((kwargs, context_summary()))

    for command in COMMANDS.values():
        monkeypatch.setattr(command, "callback", recorder)

    def outcome(run, args):
        calls.clear()
        try:
            run(list(args))
        except RktError as e:
            return ("error", e.message)
        return ("ran", calls[0]) if calls else ("nothing", None)

    def both(args):
        monkeypatch.setattr(click_cli.cli, "commands", {})  # click makes its commands again
        try:
            main._lean_command(list(args))
        except declare.NotLean:
            lean = None
        except RktError as e:
            lean = ("error", e.message)
        else:
            lean = outcome(main._run, args)
        return lean, outcome(click_cli.run, args)

    return both


LEAN = [
    ["version"],
    ["--dir=/d", "--insecure-options=image", "run", "--stage1-name=fly", "example.com/busybox:1.0",
     "--exec", "/bin/true"],
    ["run", "--net", "a.aci", "--exec=/bin/sh", "--", "-c", "x", "---", "b.aci", "--debug=true"],
    ["run", "--mount", "volume=v,target=/m", "a.aci", "--net=host", "--net", "--volume", "v,kind=empty"],
    ["list"], ["list", "--full=true", "--no-legend", "--format=json"], ["--debug", "list", "--legend"],
    ["status", "0123"], ["status", "--wait", "0123"], ["status", "--wait=10s", "--format", "json-pretty", "0"],
    ["image", "list", "--order=desc", "--fields=id,name"], ["--dir", "/x", "image", "--debug", "list"],
    ["image", "render", "a", "b", "--overwrite=false"], ["image", "gc", "--grace-period=1h"],
    ["fetch", "a.aci", "b.aci", "--signature", "a.asc", "--full"],
    ["--insecure-options=image,tls", "fetch", "x", "--insecure-options", "http", "--no-store"],
    ["prepare", "--quiet", "a.aci"], ["run-prepared", "u", "--net=default"],
    ["rm", "a", "b"], ["stop", "--force", "u"], ["gc", "--mark-only"], ["config"],
    ["plugins", "--format=json"], ["cat-manifest", "--uuid-file=/f"],
    ["--disable-plugin=a,b", "--disable-plugin", "c", "list", "--disable-plugin=d"],
    ["--", "version"],
]


@pytest.mark.parametrize("args", LEAN, ids=" ".join)
def test_common_command_lines_take_the_lean_path_and_match_click(record, args):
    lean, clicked = record(args)
    assert lean is not None and lean[0] == "ran"
    assert lean == clicked


CLICK = [
    [], ["-h"], ["--help"], ["help", "list"], ["list", "-h"], ["list", "--help"], ["nosuch"],
    ["list", "--format=xml"], ["list", "--bogus"], ["list", "extra"], ["list", "--full=maybe"],
    ["list", "--full=1"], ["status"], ["fetch"], ["image"], ["image", "nosuch"],
    ["image", "gc", "--grace-period=soon"], ["run", "a.aci", "--dns"], ["version", "--dir"],
    ["--insecure-options=bogus", "list"], ["list", "--insecure-options=bogus"],
    ["run", "a.aci", "--", "x", "-h"], ["run", "--exec", "/x"], ["enter", "u"],
]


@pytest.mark.parametrize("args", CLICK, ids=lambda a: " ".join(a) or "(none)")
def test_other_command_lines_go_to_click_or_fail_as_click_does(record, args, capsys):
    lean, clicked = record(args)
    assert lean is None or lean == clicked


TOKENS = ["a", "b", "--", "---", "-", "-h", "--help", "--full", "--no-full", "--full=true",
          "--full=no", "--full=x", "--legend", "--no-legend", "--format", "--format=json", "json",
          "--format=", "--dir", "--dir=/d", "--debug", "--debug=false", "--insecure-options",
          "image", "--insecure-options=all", "--net", "--net=host", "--net=default", "--wait",
          "--wait=1s", "--exec", "/bin/true", "--signature", "--order=asc", "--order", "--grace-period",
          "1h", "--force", "--uuid-file", "--pull-policy=new", "--mount", "volume=v,target=/m",
          "--stage1-name=fly", "--user=0", "--overwrite", "--quiet", "--bogus", "x=y", "--disable-plugin=p"]


@pytest.mark.parametrize("seed", range(40))
def test_random_command_lines_get_the_same_answer(record, seed):
    rng = random.Random(seed)
    for path in COMMANDS:
        for _ in range(5):
            args = [*path, *rng.choices(TOKENS, k=rng.randint(0, 6))]
            if rng.random() < 0.3:
                args.insert(0, rng.choice(["--debug", "--dir=/r", "--insecure-options=image"]))
            lean, clicked = record(args)
            assert lean is None or lean == clicked, args


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, EOFError])
def test_an_interrupted_command_is_aborted_on_either_path(monkeypatch, capsys, interruption):
    def interrupted(**kwargs):
        raise interruption()

    monkeypatch.setattr(COMMANDS[("list",)], "callback", interrupted)
    monkeypatch.setattr(click_cli.cli, "commands", {})
    for run in (main._run, click_cli.run):
        with pytest.raises(RktError, match="^aborted$"):
            run(["list"])
    assert capsys.readouterr().err == "\n\n"
