"""Pod networking, orchestrated by stage0: ``--net``, ``--port``, DNS and hosts files, and a
teardown that happens however the pod ends.

``rkt run`` sets the pod's networks up right before its flavor runs and passes the namespace
as ``RunOptions.netns``; flavors only join it. What is set up is recorded in the pod directory
first, so that every later step can undo it:

- ``net-backend``: the name of the network backend that set the pod up (``none``, ``cni``...);
- ``netns``: the path of the pod's network namespace (``/run/netns/rkt-<uuid>``), written
  before the namespace exists;
- ``net/``: the backend's own records (the CNI backend keeps copies of the configurations used
  and what each plugin returned);
- ``net-info.json``: the pod's interfaces in rkt's format, read by ``rkt list``/``status`` and
  the API service;
- ``resolv.conf`` and ``hosts``: the name service files the flavor binds into every app.

Teardown (:func:`teardown`) runs once the pod's last process is gone, in the guardian process
that ``rkt run`` starts beforehand (:mod:`.guardian`; it works even if ``rkt run`` is killed
or replaced by the flavor), and again in ``rkt gc`` (at mark, without waiting for the grace
period, and before deleting the pod). It is idempotent: each step removes its record once done,
and a failure keeps the records (and the pod) for the next try.
"""

from __future__ import annotations

import json
import os
import re

from ..errors import RktError, UsageError
from ..pod.view import PodView
from ..records import dataclass, replace
from ..sys.fs import write_atomic
from ..types import NetworkRequest, PodNetworks, RunOptions

HOST, NONE, ALL, DEFAULT = "host", "none", "all", "default"
NETNS_PREFIX = "rkt-"
BACKEND_FILE = "net-backend"
NETNS_FILE = "netns"
NET_INFO_FILE = "net-info.json"
RESOLV_FILE = "resolv.conf"
HOSTS_FILE = "hosts"
HOST_NAME_MAX = 64  # bytes in a hostname (sethostname(2))
HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"
PROTOCOLS = ("tcp", "udp", "sctp")  # what --port can forward

_NET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")  # a file name (NAME_MAX)
_ARG_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


# --- --net ---------------------------------------------------------------------------------------


def _split(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split at ``sep`` where it is not escaped with a backslash; escapes are kept."""
    parts, current, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
        elif c == sep and maxsplit != 0:
            parts.append("".join(current))
            current = []
            maxsplit -= 1
            i += 1
        else:
            current.append(c)
            i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _escape(text: str) -> str:
    return re.sub(r"([\\,:;=])", r"\\\1", text)


def split_net_flags(values) -> tuple[str, ...]:
    """The entries of ``--net`` flags: each value is a comma-separated list (``\\,`` escapes
    a comma); empty entries are dropped."""
    return tuple(e.strip() for value in values for e in _split(value, ",") if e.strip())


def parse_request(entry: str) -> NetworkRequest:
    """One ``--net`` entry: ``NAME`` or ``NAME:K=V;K2=V2`` (``\\`` escapes ``, : ; = \\``)."""
    name, *rest = _split(entry, ":", 1)
    name = _unescape(name)
    if not name:
        raise UsageError(f'--net "{entry}": the network name must not be empty')
    if not _NET_NAME.match(name):
        raise UsageError(f'--net "{entry}": invalid network name "{name}"')
    args: list[tuple[str, str]] = []
    if rest:
        if name in (HOST, NONE, ALL):
            raise UsageError(f'--net: arguments are not supported by the special network "{name}"')
        for pair in _split(rest[0], ";"):
            if not pair.strip():
                continue
            key_value = _split(pair, "=", 1)
            if len(key_value) != 2:
                raise UsageError(f'--net "{entry}": "{_unescape(pair)}" is not KEY=VALUE')
            args.append((_unescape(key_value[0]), _unescape(key_value[1])))
    request = NetworkRequest(name, tuple(args))
    cni_args(request)  # refuse what CNI_ARGS cannot carry, now rather than at run time
    return request


def format_request(request: NetworkRequest) -> str:
    """The ``--net`` entry for a request (the inverse of :func:`parse_request`)."""
    if not request.args:
        return _escape(request.name)
    return _escape(request.name) + ":" + ";".join(f"{_escape(k)}={_escape(v)}"
                                                  for k, v in request.args)


def parse_requests(entries) -> list[NetworkRequest]:
    """The requests of ``RunOptions.net``: no duplicates, and ``host``/``none`` alone."""
    requests = [parse_request(e) for e in entries] or [NetworkRequest(DEFAULT)]
    names = [r.name for r in requests]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f'--net: network "{name}" is given twice')
    for special in (HOST, NONE):
        if special in names and len(names) > 1:
            raise UsageError(f"--net={special} cannot be combined with other networks")
    return requests


def cni_args(request: NetworkRequest) -> str:
    """``CNI_ARGS`` for a request: ``K=V;K2=V2``. CNI_ARGS has no escapes, so a key or value
    holding ``;`` or ``=`` would smuggle in another pair: those are refused."""
    for key, value in request.args:
        if not _ARG_KEY.match(key):
            raise UsageError(f'--net: invalid CNI argument name "{key}" for network "{request.name}"')
        if ";" in value or "=" in value or "\0" in value or "\n" in value:
            raise UsageError(f'--net: the value of CNI argument "{key}" (network '
                             f'"{request.name}") cannot contain ";", "=" or line breaks')
    return ";".join(f"{k}={v}" for k, v in request.args)


# --- --port ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardedPort:
    """A host port forwarded to a port an app of the pod declares."""

    name: str
    protocol: str
    pod_port: int
    host_port: int
    host_ip: str = ""  # "" = every address of the host


def parse_port_flag(value: str):
    """``--port NAME:[HOSTIP:]HOSTPORT`` as an ``ExposedPort``."""
    from ..appc import AppcError
    from ..appc.pod_manifest import ExposedPort

    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f'--port "{value}" is not in NAME:[HOSTIP:]HOSTPORT format')
    name, port = parts[0], parts[-1]
    host_ip = parts[1] if len(parts) == 3 else ""
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f'--port "{value}": "{port}" is not a valid port number')
    try:
        return ExposedPort(name, int(port), host_ip)
    except (AppcError, ValueError) as e:
        raise UsageError(f'--port "{value}": {e}') from None


def forwarded_ports(manifest) -> list[ForwardedPort]:
    """Match the pod manifest's exposed ports with the ports its apps declare, by name; a name
    no app (or more than one app) declares, or two forwards of one host port, are errors."""
    result: list[ForwardedPort] = []
    for exposed in manifest.ports:
        found = [p for ra in manifest.apps for p in (ra.app.ports if ra.app else ())
                 if p.name == exposed.name]
        if not found:
            raise RktError(f'port name "{exposed.name}" is not declared by any app of the pod')
        if len(found) > 1:
            raise RktError(f'port name "{exposed.name}" is declared by more than one app')
        port = found[0]
        if not 1 <= exposed.host_port <= 65535:
            raise RktError(f'port "{exposed.name}": host port {exposed.host_port} is not in '
                           "1-65535")
        if port.protocol.lower() not in PROTOCOLS:
            raise RktError(f'port "{exposed.name}": protocol "{port.protocol}" cannot be '
                           f"forwarded (only {', '.join(PROTOCOLS)})")
        forward = ForwardedPort(exposed.name, port.protocol.lower(), port.port, exposed.host_port,
                                getattr(exposed, "host_ip", "") or "")
        for other in result:
            if other.protocol == forward.protocol and other.host_port == forward.host_port and (
                    not other.host_ip or not forward.host_ip or other.host_ip == forward.host_ip):
                raise RktError(f"host port {forward.protocol}/{forward.host_port} is forwarded "
                               f'twice (ports "{other.name}" and "{forward.name}")')
        result.append(forward)
    return result


# --- DNS and hosts ---------------------------------------------------------------------------------


def check_name_service_flags(options: RunOptions) -> None:
    """Refuse ``--dns``/``--hosts-entry`` combinations rkt refuses, and bad addresses."""
    for magic in (HOST, NONE):
        if magic in options.dns and len(options.dns) > 1:
            raise UsageError(f"no other --dns options are allowed with --dns={magic}")
    if options.dns in ((HOST,), (NONE,)) and (options.dns_search or options.dns_opt
                                              or options.dns_domain):
        raise UsageError(f"--dns-search, --dns-opt and --dns-domain cannot be used with "
                         f"--dns={options.dns[0]}")
    for server in options.dns:
        if server not in (HOST, NONE):
            _check_ip(server, "--dns")
    for flag, values in (("--dns-search", options.dns_search), ("--dns-opt", options.dns_opt),
                         ("--dns-domain", (options.dns_domain,) if options.dns_domain else ()),
                         ("--hostname", (options.hostname,) if options.hostname else ())):
        for value in values:
            if not is_word(value):
                raise UsageError(f"{flag} {json.dumps(value)}: must be one word (no blanks or "
                                 "control characters)")
    if len(options.hostname.encode()) > HOST_NAME_MAX:
        raise UsageError(f"--hostname: longer than {HOST_NAME_MAX} bytes, the kernel's limit")
    entries = hosts_entries(options.hosts_entries)
    if entries and HOST in options.hosts_entries:
        raise UsageError("--hosts-entry=host cannot be combined with other hosts entries")


def is_word(text: str) -> bool:
    """Whether ``text`` fits in one field of resolv.conf or hosts (nothing that could start
    another field or line)."""
    return bool(text) and text.isprintable() and not any(c.isspace() for c in text)


def _check_ip(text: str, flag: str) -> None:
    import ipaddress  # here: only --dns and --hosts-entry name addresses

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f'invalid IP address passed to {flag}: "{text}"') from None


def hosts_entries(values) -> list[tuple[str, list[str]]]:
    """``--hosts-entry IP=HOST[,IP=HOST...]`` values as (ip, hostnames), in order of first
    appearance; ``host`` is left out."""
    entries: dict[str, list[str]] = {}
    for value in values:
        if value == HOST:
            continue
        for item in value.split(","):
            ip, eq, name = item.partition("=")
            if not eq or not is_word(name):
                raise UsageError(f"--hosts-entry {json.dumps(item)} is not IP=HOSTNAME")
            _check_ip(ip, "--hosts-entry")
            entries.setdefault(ip, []).append(name)
    return list(entries.items())


def resolv_conf_text(nameservers, search=(), options=(), domain: str = "") -> str:
    """A resolv.conf: name servers, then search list, options and domain."""
    lines = [f"nameserver {server}" for server in nameservers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    if domain:
        lines.append(f"domain {domain}")
    return "".join(line + "\n" for line in lines)


def hosts_text(entries: list[tuple[str, list[str]]], hostname: str = "") -> str:
    """A hosts file: localhost (and the pod's hostname, if any), then ``entries``."""
    text = f"127.0.0.1\tlocalhost{' ' + hostname if hostname else ''}\n::1\tlocalhost\n"
    return text + "".join(f"{ip}\t{' '.join(names)}\n" for ip, names in entries)


def pod_hostname(pod, options: RunOptions, own_hostname: bool) -> str:
    """The hostname the pod's apps have: ``--hostname`` (default ``rkt-<uuid>``) with a flavor
    that gives pods a hostname of their own (``Stage1Features.own_hostname``), else the
    host's."""
    if own_hostname:
        return options.hostname or f"rkt-{pod.uuid}"
    return os.uname().nodename


def name_service(pod, options: RunOptions, networks: PodNetworks | None,
                 hostname: str) -> RunOptions:
    """Write the pod's resolv.conf and hosts as rkt's precedence says and name them in the
    options.

    resolv.conf: ``--dns=host`` binds the host's; ``--dns`` addresses (or ``--dns-search``,
    ``--dns-opt``, ``--dns-domain``) make one; else DNS a CNI plugin returned (unless
    ``--dns=none``); else the app's own (a volume on /etc/resolv.conf, or the image's file).
    hosts: ``--hosts-entry=host`` binds the host's; entries make one (localhost, the pod's
    ``hostname``, the entries); else, whatever the network, a fallback used only where the app
    has no /etc/hosts.
    """
    resolv = ""
    if options.dns == (HOST,):
        resolv = HOST_RESOLV_CONF
    elif options.dns != (NONE,):
        if options.dns or options.dns_search or options.dns_opt or options.dns_domain:
            text = resolv_conf_text(options.dns, options.dns_search, options.dns_opt,
                                    options.dns_domain)
        elif networks is not None and (networks.nameservers or networks.search
                                       or networks.options or networks.domain):
            text = resolv_conf_text(networks.nameservers, networks.search, networks.options,
                                    networks.domain)
        else:
            text = ""
        if text:
            resolv = pod.file(RESOLV_FILE)
            write_state(resolv, text.encode())
    hosts_file = fallback = ""
    entries = hosts_entries(options.hosts_entries)
    if options.hosts_entries == (HOST,):
        hosts_file = HOST_HOSTS
    else:
        path = pod.file(HOSTS_FILE)
        write_state(path, hosts_text(entries, hostname).encode())
        if entries:
            hosts_file = path
        else:
            fallback = path
    return replace(options, resolv_conf=resolv, hosts_file=hosts_file, hosts_fallback=fallback)


# --- state files -----------------------------------------------------------------------------------


def write_state(path: str, data: bytes) -> None:
    """Replace a pod state file atomically. Not durable: these files describe kernel state
    (namespaces, links, iptables rules) that a reboot clears anyway."""
    write_atomic(path, data, durable=False)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def netns_path(pod) -> str:
    """Where the pod's network namespace is pinned: ``/run/netns/rkt-<uuid>`` (``ip netns``
    lists it as ``rkt-<uuid>``)."""
    from ..sys.netns import NETNS_DIR  # imported when needed: ctypes and socket cost start-up

    return os.path.join(NETNS_DIR, NETNS_PREFIX + pod.uuid)


def create_netns(pod) -> str:
    """Create the pod's network namespace with ``lo`` up; its path is recorded in ``netns``
    first, so that a crash right after still finds it. Returns the path."""
    from ..sys import netns as sys_netns

    path = netns_path(pod)
    write_state(pod.file(NETNS_FILE), path.encode())
    if sys_netns.is_netns(path):  # a retried setup of this very pod
        sys_netns.destroy(path)
    sys_netns.create(path)
    return path


def _destroy_netns(pod) -> None:
    recorded = pod.read_text(NETNS_FILE)
    if recorded is None:
        return
    if recorded and recorded != netns_path(pod):
        raise RktError(f'pod "{pod.uuid}": unexpected network namespace path "{recorded}" in '
                       f"{pod.file(NETNS_FILE)}; not removing it")
    from ..sys import netns as sys_netns

    sys_netns.destroy(netns_path(pod))
    _remove(pod.file(NETNS_FILE))


def write_net_info(pod, interfaces: list[dict]) -> None:
    """``net-info.json`` as rkt writes it (netName, netConf, pluginPath, ifName, ip, args,
    mask per interface)."""
    write_state(pod.file(NET_INFO_FILE), (json.dumps(interfaces) + "\n").encode())


# --- setup and teardown ----------------------------------------------------------------------------


def backend_for(ctx, net: tuple[str, ...]):
    """The backend (``NetworkBackend``) of the ``--net`` entries; they must share one."""
    names = [r.name for r in parse_requests(net)]
    backends = {ctx.plugins.network_backend_for(name).name for name in names}
    if len(backends) > 1:
        raise UsageError(f"--net: networks {', '.join(names)} are handled by different backends "
                         f"({', '.join(sorted(backends))}); they cannot be joined together")
    return ctx.plugins.network_backends()[backends.pop()]


def setup(ctx, pod, options: RunOptions, backend=None, undo: bool = True,
          own_hostname: bool = True) -> RunOptions:
    """Set the pod's networks up (the pod is locked and in ``run/``) with ``backend`` (default:
    :func:`backend_for`); return the options with ``netns`` and the name service files filled
    in (``own_hostname``: see :func:`pod_hostname`). On failure, whatever was set up is torn
    down again (``undo``; else by the caller, e.g. the guardian once ``rkt run`` lets go of the
    pod) and the error raised."""
    check_name_service_flags(options)
    requests = parse_requests(options.net)
    ports = forwarded_ports(pod.manifest())
    names = [r.name for r in requests]
    if names == [HOST] or names == [NONE]:
        if ports:
            raise UsageError(f"--port does not work with --net={names[0]}")
    record = backend or backend_for(ctx, options.net)
    if names != [HOST]:
        write_state(pod.file(BACKEND_FILE), record.name.encode())
    try:
        networks = record.factory().setup(PodView.of(pod), requests, ctx)
        if networks.netns:
            write_net_info(pod, networks.interfaces)
        hostname = pod_hostname(pod, options, own_hostname)
        return replace(name_service(pod, options, networks, hostname), netns=networks.netns)
    except BaseException:
        if undo:
            teardown(ctx, pod)
        raise


def teardown(ctx, pod) -> bool:
    """Release the pod's networks: the backend's teardown, then the namespace. Idempotent;
    safe after a crash at any point of :func:`setup`. A failure is reported and the records
    stay for a later try (gc). Returns whether everything was released."""
    name = pod.read_text(BACKEND_FILE)
    if name:
        record = ctx.plugins.network_backends().get(name)
        try:
            if record is None:
                raise RktError(f'network backend "{name}" is not installed any more')
            record.factory().teardown(PodView.of(pod), ctx)
        except Exception as e:  # noqa: BLE001 - report, keep the records, let gc retry
            ctx.warn(f'networking: pod "{pod.uuid}": teardown failed: {e}')
            return False
    try:
        _destroy_netns(pod)
        _remove(pod.file(BACKEND_FILE))
    except (OSError, RktError) as e:
        ctx.warn(f'networking: pod "{pod.uuid}": cannot remove its network namespace: {e}')
        return False
    return True


def needs_teardown(pod) -> bool:
    """Whether the pod still holds networking that :func:`teardown` would release."""
    return os.path.exists(pod.file(BACKEND_FILE)) or os.path.exists(pod.file(NETNS_FILE))
