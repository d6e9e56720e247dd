"""rkt's stage1 contract as data: the entrypoints a stage1 image's manifest names, its interface
version, and the arguments each entrypoint gets for that version (rkt's
Documentation/devel/stage1-implementors-guide.md; stage0/run.go, enter.go, gc.go, stop.go).

An option that the image's interface version does not know is dropped with a warning, as rkt
did: ``--hostname`` came with version 2, ``--disable-capabilities-restriction``,
``--disable-paths`` and ``--disable-seccomp`` with 3, ``--dns-conf-mode`` with 4, and gc's
``--local-config`` with 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rkt_core.plugin_api import ImageError, RktError, RunOptions

ANNOTATION_PREFIX = "coreos.com/rkt/stage1/"
RUN, ENTER, GC, STOP = "run", "enter", "gc", "stop"
ENTRYPOINTS = (RUN, ENTER, GC, STOP, "app/add", "app/rm", "app/start", "app/stop", "attach")
INTERFACE_VERSION = ANNOTATION_PREFIX + "interface-version"

# The interface version that introduced each option.
HOSTNAME_SINCE, INSECURE_OPTIONS_SINCE, DNS_CONF_MODE_SINCE, GC_LOCAL_CONFIG_SINCE = 2, 3, 4, 5
# --insecure-options=NAME -> the run entrypoint's flag
INSECURE_FLAGS = {"capabilities": "--disable-capabilities-restriction",
                  "paths": "--disable-paths", "seccomp": "--disable-seccomp"}


@dataclass(frozen=True)
class Stage1Image:
    """A stage1 image's name, interface version and entrypoints (kind -> path in its root)."""

    name: str
    version: int
    entrypoints: dict[str, str]

    @classmethod
    def from_manifest(cls, manifest) -> "Stage1Image":
        """Read an ``ImageManifest``; an image without a ``run`` entrypoint, with an entrypoint
        that is not a plain absolute path or with a malformed version is refused."""
        entrypoints = {}
        for kind in ENTRYPOINTS:
            path = manifest.annotations.get(ANNOTATION_PREFIX + kind)
            if path is None:
                continue
            parts = path.split("/")
            if parts[0] != "" or any(p in ("", ".", "..") or "\0" in p for p in parts[1:]):
                raise ImageError(f'stage1 image "{manifest.name}": the {kind} entrypoint '
                                 f'"{path}" is not an absolute path without ".", ".." or empty '
                                 "parts")
            entrypoints[kind] = path
        if RUN not in entrypoints:
            raise ImageError(f'image "{manifest.name}" is not a stage1 image: its manifest has no '
                             f"{ANNOTATION_PREFIX}{RUN} annotation")
        text = manifest.annotations.get(INTERFACE_VERSION)
        if text is None:
            version = 1
        elif text.isascii() and text.isdigit() and int(text) >= 1:
            version = int(text)
        else:
            raise ImageError(f'stage1 image "{manifest.name}": interface version "{text}" is not '
                             "a number from 1 up")
        return cls(manifest.name, version, entrypoints)

    def entrypoint(self, kind: str) -> str:
        """The path of an entrypoint in the image's root; an error if the image has none."""
        if kind not in self.entrypoints:
            raise RktError(f'stage1 image "{self.name}" has no {kind} entrypoint '
                           f"({ANNOTATION_PREFIX}{kind})")
        return self.entrypoints[kind]


def run_arguments(image: Stage1Image, options: RunOptions, uuid: str, dns_conf_mode: str,
                  warn: Callable[[str], None]) -> list[str]:
    """The ``run`` entrypoint's arguments, in rkt's order, the pod's uuid last.
    ``dns_conf_mode`` is ``--dns-conf-mode``'s value, "" when it is the default."""
    args = ["--debug"] if options.debug else []
    args.append("--net=" + ",".join(options.net))
    if options.interactive:
        args.append("--interactive")
    if options.local_config:
        args.append("--local-config=" + options.local_config)

    def since(version: int, flags: list[str], what: str) -> None:
        if image.version >= version:
            args.extend(flags)
        elif flags:
            warn(f'warning: {what} is not supported by stage1 image "{image.name}" (interface '
                 f"version {image.version}; {version} and later); ignored")

    since(HOSTNAME_SINCE, [f"--hostname={options.hostname}"] if options.hostname else [],
          "--hostname")
    since(DNS_CONF_MODE_SINCE, [f"--dns-conf-mode={dns_conf_mode}"] if dns_conf_mode else [],
          "--dns-conf-mode (from --dns and --hosts-entry)")
    from rkt_core.plugin_api.fetch import Insecure

    insecure = [name for name in INSECURE_FLAGS if options.insecure & Insecure[name.upper()]]
    since(INSECURE_OPTIONS_SINCE, [INSECURE_FLAGS[name] for name in insecure],
          "--insecure-options=" + ",".join(insecure))
    return [*args, uuid]


def enter_arguments(pid: int, app: str, argv: list[str]) -> list[str]:
    """The ``enter`` entrypoint's arguments: the pod's pid 1, the app, the command."""
    return [f"--pid={pid}", f"--appname={app}", "--", *argv]


def stop_arguments(uuid: str, force: bool) -> list[str]:
    """The ``stop`` entrypoint's arguments."""
    return [*(["--force"] if force else []), uuid]


def gc_arguments(image: Stage1Image, uuid: str, debug: bool, local_config: str) -> list[str]:
    """The ``gc`` entrypoint's arguments (``--local-config`` for version 5 and later)."""
    args = ["--debug"] if debug else []
    if image.version >= GC_LOCAL_CONFIG_SINCE and local_config:
        args += ["--local-config", local_config]
    return [*args, uuid]
