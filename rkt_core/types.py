"""Records that plugins declare through the *declare* hooks.

Each record names one capability and carries a factory or callable that does the work; the facade
(``rkt_core.plugins``) checks them (types, unique names) before core code uses them.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterator, Optional, Protocol

from .records import dataclass, field


# --- stage1 flavors -------------------------------------------------------------------------

# The stage1 interface versions this rkt drives (``Stage1Flavor.interface_version``). A run option
# that a version introduced (``RunOptions`` field metadata ``since``) reaches only flavors of that
# version or later; stage0 refuses it, naming its flag, for an older flavor.
STAGE1_INTERFACE_VERSIONS = (1, 2)


def _since(version: int, flag: str, default: Any = False) -> Any:
    return field(default=default, metadata={"since": version, "flag": flag})



@dataclass(frozen=True)
class Stage1Features:
    """What a flavor supports; stage0 refuses options outside this set instead of dropping them
    (an image's own isolators outside ``isolators`` are left out with a warning, as rkt did)."""

    isolators: frozenset[str] = frozenset()
    contained_network: bool = False
    host_network: bool = True  # False: --net=host is refused (a VM cannot share the host's)
    interactive: bool = False
    private_users: bool = False
    multi_app: bool = False
    # The pod has a hostname of its own (--hostname, default rkt-<uuid>); else the host's.
    own_hostname: bool = False


@dataclass(frozen=True)
class ActivatedSocket:
    """A listening socket ``rkt run`` got by systemd socket activation, for the app whose port
    (marked ``socketActivated`` in its image) it is: ``port`` is that port's name, ``protocol``
    ``tcp`` or ``udp``, ``address`` where it listens as systemd's ``ListenStream=`` writes it
    (``127.0.0.1:8080``, ``[::1]:8080``), ``fd`` rkt's descriptor of it (close-on-exec)."""

    fd: int
    app: str
    port: str
    protocol: str
    address: str


@dataclass(frozen=True)
class RunOptions:
    """What ``rkt run`` and ``rkt run-prepared`` hand a flavor besides the pod itself.

    ``net`` holds the ``--net`` entries (``host``, ``none``, ``default``, ``name:K=V;...``),
    already defaulted for the flavor. ``lock_fd`` is the pod's locked directory descriptor: the
    flavor keeps it open (inheritable) in the processes that live as long as the pod, so the pod
    reads as running exactly while they do.
    """

    lock_fd: int
    net: tuple[str, ...] = ("host",)
    interactive: bool = False
    private_users: bool = False
    mds_register: bool = _since(2, "--mds-register")  # interface 2
    hostname: str = ""
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    hosts_entries: tuple[str, ...] = ()
    debug: bool = False
    local_config: str = ""
    insecure: int = 0
    dns_domain: str = ""
    # Filled in by stage0's networking (rkt_core.network) before the flavor runs:
    # ``netns`` is the pod's network namespace, a pinned nsfs file (``/run/netns/rkt-<uuid>``,
    # interfaces already configured, ``lo`` up) that every process of the pod must join
    # (setns(2); systemd-nspawn: ``--network-namespace-path=``); "" = the host's network.
    # Flavors never create or remove it: stage0 releases the networks once no process holds
    # the pod's lock any more, so a flavor must keep ``lock_fd`` open in the pod's processes.
    netns: str = ""
    # Name service files stage0 wrote for the pod (see rkt_core.network); the flavor
    # binds them read-only into every app ("" = leave the app's own file). ``resolv_conf`` and
    # ``hosts_file`` go over /etc/resolv.conf and /etc/hosts (after volumes: they win);
    # ``hosts_fallback`` goes to /etc/hosts only when the app has none there (no file, no volume).
    resolv_conf: str = ""
    hosts_file: str = ""
    hosts_fallback: str = ""
    # Filled in by stage0 for ``--mds-register`` (interface 2): the metadata service URL a plugin
    # registered the pod under (``rkt_register_pod``); the flavor sets it as ``AC_METADATA_URL``
    # for every app process, event handlers included. It holds the pod's secret token.
    metadata_url: str = _since(2, "--mds-register", default="")
    # Filled in by stage0 when ``rkt run`` was started by socket activation (interface 2): each
    # socket passed, with the app that gets it. The flavor passes an app its sockets as systemd
    # does (sd_listen_fds(3)): on descriptors 3, 4, ... in socket order, with ``LISTEN_FDS``,
    # ``LISTEN_PID`` (the app's own pid) and ``LISTEN_FDNAMES`` (the ports' names).
    sockets: tuple[ActivatedSocket, ...] = _since(2, "socket activation (LISTEN_FDS)",
                                                  default=())


LOG_KEEPALIVE_SECONDS = 1.0  # a following Stage1Logs.logs yields None at least this often


@dataclass(frozen=True)
class LogLine:
    """One line an app of a pod logged: when (seconds since the epoch), which app, what."""

    time: float
    app: str
    message: str

    def formatted(self) -> str:
        """``<local time, ISO 8601> <app>: <message>``, as ``rkt logs`` prints it."""
        from datetime import datetime

        when = datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="microseconds")
        return f"{when} {self.app}: {self.message}"


class Stage1(Protocol):
    """The object a flavor's factory returns. Stage0 calls it with a prepared, locked pod."""

    features: Stage1Features

    def run(self, pod: Any, options: RunOptions) -> int:
        """Run the pod (a ``PodView`` of a locked pod in ``run/``) in the foreground; return the
        exit status of the first failing app (128+N for an app killed by signal N), else 0.
        Record each app's exit status in ``stage1/rootfs/rkt/status/<app>`` and the pod's pid
        in ``pid``. Only the apps write to rkt's stdout."""

    def enter(self, pod: Any, app: str, argv: list[str]) -> int:
        """Run ``argv`` inside the running app ``app``; return its exit status."""

    def stop(self, pod: Any, force: bool) -> None:
        """Ask the running pod to stop (``force``: kill it)."""

    def gc(self, pod: Any) -> None:
        """Release what the flavor set up for an exited pod (idempotent)."""


class Stage1Logs(Protocol):
    """What a flavor that keeps its apps' logs adds to :class:`Stage1` (optional): ``rkt logs``
    and the API service's GetLogs read them through it."""

    def logs(self, pod: Any, app: str, lines: int, follow: bool, since: float | None,
             until: float | None) -> Iterator[LogLine | None]:
        """The lines the pod's app ``app`` (every app if "") logged, oldest first: only the
        last ``lines`` (0: all), only those logged from ``since`` to ``until`` (seconds since
        the epoch; None: no bound). With ``follow``, go on yielding lines as they are logged
        until the pod is no longer running and every line was yielded, and yield None at least
        every :data:`LOG_KEEPALIVE_SECONDS` while nothing comes, so that the caller may stop
        following: it closes the iterator, which releases what it holds. A pod without logs
        (it never ran) is a ``NotFoundError``."""


@dataclass(frozen=True)
class Stage1Flavor:
    """A way to run pods, chosen with ``--stage1-name``.

    ``factory`` is called lazily, only when the flavor is used, and returns a :class:`Stage1`.
    ``interface_version`` is the stage1 interface the flavor implements (one of
    :data:`STAGE1_INTERFACE_VERSIONS`): stage0 refuses other versions, and passes a run option
    only to flavors whose version knows it.

    ``check_image`` is set by flavors that run *stage1 images* (rkt's stage1 ACIs, chosen with
    ``--stage1-path``, ``--stage1-url``, ``--stage1-name=NAME:VERSION``, ``--stage1-hash``,
    ``--stage1-from-dir`` or ``stage1.d``): it gets the image's ``ImageManifest`` and raises a
    ``RktError`` if the flavor cannot run that image. Stage0 fetches the image like any other,
    records its manifest in the pod's ``stage1/manifest`` and its tree in ``stage1TreeStoreID``,
    renders the tree in ``stage1/rootfs`` (with overlayfs: mounted there, the apps' roots under
    it, while the flavor's ``run`` runs; the tree alone for its ``gc``) and hands the pod to the
    first such flavor, by name, that accepts the image.
    """

    name: str
    factory: Callable[[], Stage1]
    interface_version: int = 1
    description: str = ""
    check_image: Optional[Callable[[Any], None]] = None


# --- fetching and verifying images -----------------------------------------------------------


@dataclass(frozen=True)
class FetchRequest:
    """What stage0 asks a fetcher for.

    ``ref`` is the image argument as the user gave it (a path, URL or appc name); ``context`` is the
    command's :class:`rkt_core.context.Context` (configuration, insecure options, store, debug log).
    ``signature`` is an explicit ``--signature`` path, if any.
    """

    ref: str
    context: Any
    signature: Optional[str] = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RemoteInfo:
    """Where an image came from, kept in the store's ``remote`` table for caching."""

    aci_url: str
    sig_url: str = ""
    etag: str = ""
    cache_max_age: int = 0


@dataclass
class FetchedImage:
    """What a fetcher hands back.

    Either ``aci`` (an open, seekable file with the image as downloaded, possibly compressed) and,
    when the source has one, ``signature``; or ``store_key`` when the store's copy is still current.
    ``signable`` is False for sources that cannot carry appc signatures (docker images): those are
    accepted only with ``--insecure-options=image``. ``expected_name`` and ``expected_labels`` are
    checked against the manifest (appc discovery).
    """

    aci: Optional[BinaryIO] = None
    signature: Optional[BinaryIO] = None
    store_key: Optional[str] = None
    remote: Optional[RemoteInfo] = None
    signable: bool = True
    expected_name: Optional[str] = None
    expected_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fetcher:
    """Fetches images whose argument has one of ``schemes``.

    Paths and ``file://`` URLs use scheme ``file``; appc names (``example.com/app:1.0``) use
    ``appc``; URLs use their own scheme (``http``, ``https``, ``docker``, ...).
    """

    name: str
    schemes: tuple[str, ...]
    fetch: Callable[[FetchRequest], FetchedImage]
    description: str = ""


@dataclass(frozen=True)
class Signer:
    """Who signed an image: the key's fingerprint and its user ids."""

    fingerprint: str
    uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyRequest:
    """An image, its detached signature and the manifest name whose trusted keys apply.

    ``image`` is the same open file that will be imported; verifiers read it from offset 0 and
    must not reopen it by name.
    """

    image: BinaryIO
    signature: BinaryIO
    image_name: str
    context: Any


@dataclass(frozen=True)
class Verifier:
    """Checks detached signatures. ``accepts`` sees the signature's first bytes."""

    name: str
    verify: Callable[[VerifyRequest], Signer]
    accepts: Callable[[bytes], bool] = lambda head: True
    description: str = ""


# --- networking and isolators ----------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRequest:
    """One entry of ``--net``: a network name and its CNI_ARGS (``name:K=V;K2=V2``)."""

    name: str
    args: tuple[tuple[str, str], ...] = ()


@dataclass
class PodNetworks:
    """What a backend set up for a pod: the namespace to join, the interfaces (``net-info.json``
    entries: netName, netConf, pluginPath, ifName, ip, args, mask) and the DNS it learned."""

    netns: str
    interfaces: list[dict] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    domain: str = ""


class NetworkSetup(Protocol):
    """The object a network backend's factory returns."""

    def setup(self, pod: Any, requests: list[NetworkRequest], context: Any) -> PodNetworks:
        """Create the pod's network namespace and attach it to the requested networks."""

    def teardown(self, pod: Any, context: Any) -> None:
        """Undo :meth:`setup` (idempotent: called at pod exit and again at gc, even after a
        crash half-way through setup)."""


@dataclass(frozen=True)
class NetworkBackend:
    """Sets up pod networks named in ``--net``.

    ``handles(name)`` says whether a network name is this backend's; ``factory`` returns a
    :class:`NetworkSetup`.
    """

    name: str
    handles: Callable[[str], bool]
    factory: Callable[[], Any]
    description: str = ""


@dataclass(frozen=True)
class Isolator:
    """An isolator name that rkt accepts in manifests, with a validator for its value.

    ``validate(value)`` raises ``ValueError`` with a message when the value is wrong.
    """

    name: str
    validate: Callable[[Any], None]
    description: str = ""
