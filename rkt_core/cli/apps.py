"""The image list of ``run`` and ``prepare``: ``IMAGE [per-app flags] [-- ARGS... ---] IMAGE...``.

Flags that follow an image apply to that image (``--exec``, ``--user``, ``--mount``...); ``--``
starts the image's arguments and ``---`` ends them. Pod flags (``--volume``, ``--net``...) and
global flags may appear anywhere, as with rkt. :func:`split_app_args` splits the command line
before the pod flags are parsed.
"""

from __future__ import annotations

from ..appc import Mount
from ..errors import UsageError
from ..stage0.prepare import AppArgs

# Per-app flags: flag -> attribute of AppArgs.
APP_FLAGS = {
    "--exec": "exec", "--name": "name", "--signature": "signature", "--user": "user",
    "--group": "group", "--supplementary-gids": "supplementary_gids",
    "--working-dir": "working_dir", "--mount": "mounts", "--memory": "memory", "--cpu": "cpu",
    "--caps-retain": "caps_retain", "--caps-remove": "caps_remove",
    "--environment": "environment",
}


def _set_app_flag(app: AppArgs, flag: str, value: str) -> None:
    attr = APP_FLAGS[flag]
    if attr == "mounts":
        app.mounts.append(Mount.from_cli(value))
    elif attr == "environment":
        name, eq, val = value.partition("=")
        if not eq or not name:
            raise UsageError(f'--environment "{value}": expected NAME=VALUE')
        app.environment[name] = val
    elif attr == "supplementary_gids":
        try:
            app.supplementary_gids = [int(g) for g in value.split(",") if g.strip()]
        except ValueError:
            raise UsageError(f'--supplementary-gids "{value}": expected numbers separated by commas') from None
    elif attr in ("caps_retain", "caps_remove"):
        setattr(app, attr, [c for c in value.split(",") if c.strip()])
    else:
        if getattr(app, attr):
            raise UsageError(f"{flag} specified multiple times for the same image")
        setattr(app, attr, value)


def split_app_args(value_options: set[str], args: list[str]
                   ) -> tuple[list[str], list[AppArgs], list[Mount]]:
    """Separate a ``run``/``prepare`` command line into (the pod flags, the images with their
    flags, the ``--mount`` flags given before any image, which apply to every app);
    ``value_options`` are the pod options that take a value."""
    pod_args: list[str] = []
    apps: list[AppArgs] = []
    pod_mounts: list[Mount] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if not apps:
                raise UsageError("an image is required before any app arguments")
            if apps[-1].args is not None:
                raise UsageError("only one set of app arguments allowed per image")
            end = args.index("---", i + 1) if "---" in args[i + 1:] else len(args)
            apps[-1].args = args[i + 1:end]
            i = end + 1
            continue
        if arg == "---":
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and name in APP_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"flag needs an argument: {name}")
                value = args[i + 1]
                i += 1
            if name == "--mount" and not apps:
                pod_mounts.append(Mount.from_cli(value))
            elif not apps:
                raise UsageError(f"{name} must follow an image")
            else:
                _set_app_flag(apps[-1], name, value)
        elif arg.startswith("-") and arg != "-":
            pod_args.append(arg)
            if not eq and name in value_options and i + 1 < len(args):
                pod_args.append(args[i + 1])
                i += 1
        else:
            apps.append(AppArgs(image=arg))
        i += 1
    return pod_args, apps, pod_mounts

