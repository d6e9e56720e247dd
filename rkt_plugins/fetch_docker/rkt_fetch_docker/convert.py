"""The appc image manifest of a converted Docker image, named and labelled as docker2aci did.

- name: ``<registry>/<repository>`` sanitised (``127.0.0.1_5000/test/busybox``); labels
  ``version`` (the tag; none when pulled by digest), ``os`` and ``arch`` (appc names:
  ``arm64`` is ``aarch64``, ``386`` is ``i386``; left out if appc does not know the pair).
- app (none if the image has no config): ``exec`` = Entrypoint + Cmd; ``user``/``group`` from
  ``User`` (empty is root; ``u:g`` as given; a lone user gets its primary group from the image's
  ``/etc/passwd``, as Docker does, else group 0 for a numeric uid and the user's own name
  otherwise, docker2aci's guess); ``Env`` (first position, last value; entries without ``=`` or
  with names appc refuses are dropped); ``WorkingDir``; ports named like ``80-tcp``; mount points
  ``volume-<path>`` for ``Volumes``, both sorted by name.
- annotations, in docker2aci's order: ``author`` and ``created`` (schema1: ``authors``,
  ``created``, ``docker-comment``), then ``appc.io/docker/{originalname, registryurl,
  repository, imageid, parentimageid (schema1), manifesthash, entrypoint, cmd, tag (schema1)}``.
  ``imageid`` is the top layer's digest (schema1: its v1 id); ``manifesthash`` is the digest of
  the manifest converted (for signed schema1 the registry's digest, of the JWS payload).
"""

from __future__ import annotations

import posixpath
from typing import Callable

from rkt_core.plugin_api.appc import (VALID_OS_ARCH, Annotations, App, AppcError,
                                      EnvironmentVariable, ImageManifest, Labels, MountPoint,
                                      Port, go_json_dumps, sanitize_ac_name)

from .manifest import Image
from .reference import DockerRef

DOCKER = "appc.io/docker/"
_APPC_ARCH = {"amd64": "amd64", "386": "i386", "arm64": "aarch64", "ppc64": "ppc64",
              "ppc64le": "ppc64le", "s390x": "s390x"}


def appc_os_arch(os_name: str, arch: str, variant: str = "") -> tuple[str, str] | None:
    """The appc ``os``/``arch`` labels of a Docker platform, if appc knows it."""
    if arch == "arm":
        appc_arch = f"armv{variant[1:]}l" if variant in ("v6", "v7") else "armv6l"
    else:
        appc_arch = _APPC_ARCH.get(arch, arch)
    if appc_arch in VALID_OS_ARCH.get(os_name, ()):
        return os_name, appc_arch
    return None


def image_manifest(ref: DockerRef, image: Image, passwd: bytes | None = None,
                   warn: Callable[[str], None] = lambda message: None) -> ImageManifest:
    """The manifest of the converted image; ``passwd`` is the image's ``/etc/passwd``."""
    labels = [("version", ref.tag)] if ref.tag else []
    os_arch = appc_os_arch(image.os, image.architecture, image.variant)
    if os_arch:
        labels += [("os", os_arch[0]), ("arch", os_arch[1])]
    app = None if image.config is None else _app(image.config, passwd, warn)
    return ImageManifest(name=ref.aci_name, labels=Labels(labels), app=app,
                         annotations=Annotations(_annotations(ref, image, warn)))


def _str_list(value: object) -> list[str]:
    """A Docker string-or-list field (``Entrypoint``, ``Cmd``) as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def _app(config: dict, passwd: bytes | None, warn: Callable[[str], None]) -> App:
    user, group = user_group(config.get("User") or "", passwd)
    workdir = config.get("WorkingDir") or ""
    if not isinstance(workdir, str):
        workdir = ""
    elif workdir and not workdir.startswith("/"):
        workdir = "/" + workdir
    return App(exec=_str_list(config.get("Entrypoint")) + _str_list(config.get("Cmd")),
               user=user, group=group, working_directory=workdir,
               environment=_environment(config.get("Env"), warn),
               mount_points=_mount_points(config.get("Volumes")),
               ports=_ports(config.get("ExposedPorts"), warn))


def user_group(spec: str, passwd: bytes | None) -> tuple[str, str]:
    """appc ``user`` and ``group`` of a Docker ``User`` (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        return "0", "0"
    user, sep, group = spec.partition(":")
    user = user or "0"
    if sep and group:
        return user, group
    for line in (passwd or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2 if user.isdigit() else 0] == user \
                and fields[3].isdigit():
            return user, fields[3]
    return user, "0" if user.isdigit() else user


def _environment(env: object, warn: Callable[[str], None]) -> list[EnvironmentVariable]:
    values: dict[str, str] = {}
    for item in env if isinstance(env, list) else []:
        if not isinstance(item, str) or "=" not in item:
            continue
        name, _, value = item.partition("=")
        try:
            EnvironmentVariable(name, value)
        except AppcError:
            warn(f'docker image: dropping environment variable "{name}": not a valid appc name')
            continue
        values[name] = value
    return [EnvironmentVariable(name, value) for name, value in values.items()]


def _ports(exposed: object, warn: Callable[[str], None]) -> list[Port]:
    ports: dict[str, Port] = {}
    for key in sorted(exposed) if isinstance(exposed, dict) else []:
        number, _, protocol = key.partition("/")
        try:
            port = Port(sanitize_ac_name(key), protocol or "tcp", int(number))
        except (ValueError, AppcError):
            warn(f'docker image: ignoring exposed port "{key}"')
            continue
        ports.setdefault(port.name, port)
    return [ports[name] for name in sorted(ports)]


def _mount_points(volumes: object) -> list[MountPoint]:
    """One mount point per volume path (made absolute), names unique: ``volume-data``,
    ``volume-data-1``..."""
    points, names = [], set()
    for path in sorted(volumes) if isinstance(volumes, dict) else []:
        if not path:
            continue
        path = path if path.startswith("/") else "/" + path
        name = base = sanitize_ac_name(posixpath.normpath("volume/" + path))
        suffix = 0
        while name in names:
            suffix += 1
            name = f"{base}-{suffix}"
        names.add(name)
        points.append(MountPoint(name, path))
    return sorted(points, key=lambda p: p.name)


def _annotations(ref: DockerRef, image: Image, warn) -> list[tuple[str, str]]:
    schema1 = image.schema == "docker-v1"
    created = image.created
    if created.startswith("0001-01-01"):
        created = ""  # Go's zero time: docker2aci skipped it
    if created:
        try:
            Annotations([("created", created)])
        except AppcError:
            warn(f'docker image: ignoring its creation date "{created}": not RFC 3339')
            created = ""
    config = image.config or {}
    entrypoint, cmd = _str_list(config.get("Entrypoint")), _str_list(config.get("Cmd"))
    top_layer = image.layers[-1].digest if image.layers else ""
    pairs = [("authors" if schema1 else "author", image.author), ("created", created)]
    if schema1:
        pairs.append(("docker-comment", image.comment))
    pairs += [(DOCKER + "originalname", ref.original), (DOCKER + "registryurl", ref.registry),
              (DOCKER + "repository", ref.repository),
              (DOCKER + "imageid", image.v1_id if schema1 else top_layer)]
    if schema1:
        pairs.append((DOCKER + "parentimageid", image.v1_parent))
    pairs += [(DOCKER + "manifesthash", image.digest),
              (DOCKER + "entrypoint", go_json_dumps(entrypoint) if entrypoint else ""),
              (DOCKER + "cmd", go_json_dumps(cmd) if cmd else "")]
    if schema1 and image.v1_parent:
        pairs.append((DOCKER + "tag", ref.tag))
    return [(name, value) for name, value in pairs if value]
