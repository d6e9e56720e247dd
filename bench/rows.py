"""The rows of the benchmark table: what is timed on our side and on the reference side.

A row is one declarative entry of :data:`ROWS`: its two sides are built from the
:class:`~inputs.Inputs` (which make what a row needs on first use). Each :class:`Side` names
the commands timed together and what is done, untimed, before each of its runs; the harness
alternates the sides and gives both the same preparation. To add a row (a kvm boot, the API
service's ListPods, a stage1 image), append an entry naming the plugins it ``requires``: it is
left out, with a note, where they are not installed.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, field

from inputs import BUSYBOX, DEBIAN, MANY, SIGNED_MIB, Inputs, empty, fresh

PYTHON_FLOOR = ["/usr/bin/python3", "-I", "-c", "pass"]
MIB = 2**20


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Side:
    """One side of a row: ``commands`` run one after another and are measured together, with
    ``env`` added to the environment; ``before`` runs untimed before each run."""

    label: str
    commands: list[list[str]]
    before: Callable[[], None] = _nothing
    ok_status: frozenset[int] = frozenset({0})
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """The project's target for a row (DESIGN.md, "Speed targets"): at most ``limit`` times
    the reference or, with a ``unit`` (``"s"``, or ``"MiB"`` for a limit in bytes), at most
    ``limit`` on our side."""

    limit: float
    note: str = ""
    unit: str = ""

    def met(self, ratio: float, ours_median: float) -> bool:
        """Whether the figures meet the target."""
        return (ours_median if self.unit else ratio) <= self.limit

    def __str__(self) -> str:
        shown = self.limit / MIB if self.unit == "MiB" else self.limit
        limit = f"{shown:g} {self.unit}" if self.unit else f"{self.limit:g}×"
        return f"≤ {limit}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Row:
    """A line of the table: ``work`` done by ``ours`` against ``reference``, measured as wall
    time or, with ``memory``, as peak resident memory, in ``runs`` pairs (unless BENCH_RUNS
    says otherwise)."""

    work: str
    ours: Callable[[Inputs], Side]
    reference: Callable[[Inputs], Side]
    target: Target | None = None
    memory: bool = False
    requires: tuple[str, ...] = ()
    runs: int = 11


def fly_run(data, image: str, label: str = "rkt run --stage1-name=fly") -> Side:
    """``rkt run --stage1-name=fly IMAGE --exec /bin/true`` in ``data``."""
    return Side(label, [data.rkt("run", "--stage1-name=fly", image, "--exec", "/bin/true")],
                data.reset)


def runc_run(i: Inputs) -> Side:
    """``runc run`` of the busybox rootfs (pid, ipc, uts, mount and network namespaces)."""
    return Side("`runc run`", [["runc", "run", "--bundle", str(i.runc_bundle),
                                f"rkt-bench-{os.getpid()}"]])


def python_floor(i: Inputs) -> Side:
    """The Python interpreter starting and doing nothing: the floor of any command in Python."""
    return Side("`python3 -I -c pass`", [PYTHON_FLOOR])


def nspawn_run(i: Inputs, *flags: str) -> Side:
    """``rkt run`` of the busybox image with the nspawn flavor."""
    return Side("rkt run", [i.nspawn.rkt("run", *flags, BUSYBOX, "--exec", "/bin/true")],
                i.nspawn.reset)


def raw_nspawn(i: Inputs) -> Side:
    """``systemd-nspawn --boot`` of a copy of an rkt pod's stage1 root: the same units, in a
    private mount namespace with nspawn's runtime directory on a tmpfs, as rkt starts it."""
    stage1 = i.nspawn_stage1
    nspawn = ("exec systemd-nspawn --quiet --register=no --keep-unit --link-journal=no "
              f"--console=read-only --bind-ro=/usr --directory={stage1} --boot "
              "-- --log-target=null --show-status=0")
    return Side("`systemd-nspawn --boot`, same units",
                [["unshare", "--mount", "sh", "-c", "mount --make-rslave / && "
                  f"mount -t tmpfs tmpfs /run/systemd/nspawn && {nspawn}"]],
                lambda: i.reset_nspawn_stage1(stage1))


def podman_bridge(i: Inputs) -> Side:
    """``podman run --rm --network=bridge`` of the busybox rootfs, in the bench's netns.

    podman's default limits (1048576 files, 32768 processes) are more than a process without
    CAP_SYS_RESOURCE (root in a container) may set; these are limits it may."""
    hard_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limits = [f"--ulimit=nofile={hard_files}:{hard_files}", "--ulimit=nproc=16384:16384"]
    return Side("`podman run --network=bridge`",
                [i.in_netns([*i.podman, "run", "--rm", *limits, "--network=bridge",
                             "--rootfs", str(i.busybox_rootfs), "/bin/true"])])


def kvm_run(i: Inputs) -> Side:
    """``rkt run --stage1-name=kvm --net=none`` of the stored busybox image under qemu's
    software emulation (nested KVM hangs on the machine these figures come from)."""
    return Side("rkt run --stage1-name=kvm (emulated)",
                [i.kvm.rkt("run", "--stage1-name=kvm", "--net=none", BUSYBOX,
                           "--exec", "/bin/true")],
                i.kvm.reset, env={"RKT_STAGE1_KVM_ACCEL": "tcg"})


def bare_vm(i: Inputs) -> Side:
    """qemu booting the kvm flavor's own kernel and initramfs, emulated, to a guest that
    powers off at once: the floor of any VM pod."""
    return Side("qemu boot to power-off, same kernel", [i.bare_vm_argv])


def debian_fetch_render(i: Inputs) -> Side:
    """``rkt fetch`` of the Debian ACI into an empty store, then ``rkt image render``."""
    data, out = i.data_dir("debian"), i.work / "debian-render"
    return Side("rkt fetch + rkt image render",
                [data.rkt("fetch", str(i.debian_aci)), data.rkt("image", "render", DEBIAN, str(out))],
                lambda: fresh(data.path, out))


def debian_tar(i: Inputs) -> Side:
    """``tar -xzf`` of the Debian ACI into an empty directory."""
    out = i.work / "debian-tar"
    return Side("`tar -xzf`", [["tar", "-xzf", str(i.debian_aci), "-C", str(out)]],
                lambda: empty(out))


def docker_fetch_render(i: Inputs) -> Side:
    """``rkt fetch docker://`` of the busybox test image into an empty store, then render."""
    data, out = i.data_dir("docker"), i.work / "docker-render"
    fetch = data.rkt("fetch", f"docker://{i.docker_image}", insecure="image,http")
    return Side("rkt fetch docker:// + rkt image render",
                [fetch, data.rkt("image", "render", i.docker_image_name, str(out))],
                lambda: fresh(data.path, out))


def skopeo_umoci(i: Inputs) -> Side:
    """``skopeo copy`` of the same image to an OCI layout, then ``umoci unpack``."""
    out = i.work / "docker-umoci"
    return Side("`skopeo copy` + `umoci unpack`",
                [["skopeo", f"--policy={i.skopeo_policy}", "copy", "--quiet",
                  "--src-tls-verify=false", f"docker://{i.docker_image}", f"oci:{out}/oci:bench"],
                 ["umoci", "unpack", "--image", f"{out}/oci:bench", f"{out}/bundle"]],
                lambda: empty(out))


def https_fetch(i: Inputs) -> Side:
    """``rkt fetch https://`` of the signed image (signature checked) into an empty store."""
    image, data = i.signed_image, i.data_dir("https")
    return Side("rkt fetch https://", [data.rkt(*image.config, "fetch", image.url, insecure="none")],
                lambda: fresh(data.path), env={"REQUESTS_CA_BUNDLE": image.ca})


def curl_then_file_fetch(i: Inputs) -> Side:
    """``curl`` of the image and its signature, then ``rkt fetch`` of the downloaded file."""
    image, data, out = i.signed_image, i.data_dir("https-file"), i.work / "downloaded"
    curl = ["curl", "--silent", "--fail", "--cacert", image.ca]
    aci = str(out / "image.aci")

    def before() -> None:
        fresh(data.path)
        empty(out)

    return Side("`curl` + `rkt fetch` of the file",
                [[*curl, "--output", aci, image.url],
                 [*curl, "--output", f"{aci}.asc", f"{image.url}.asc"],
                 data.rkt(*image.config, "fetch", aci, insecure="none")], before)


ROWS = [
    Row("fly pod, stored image, `--exec /bin/true`",
        lambda i: fly_run(i.fly, BUSYBOX), runc_run,
        Target(1.5, "the Go rkt's speed; 2× on the way"), requires=("stage1-fly",)),
    Row("fly pod, image given by path",
        lambda i: fly_run(i.fly, str(i.busybox_aci)), runc_run, requires=("stage1-fly",)),
    Row("nspawn pod, `--net=host`",
        lambda i: nspawn_run(i, "--net=host"), raw_nspawn, Target(1.2),
        requires=("stage1-nspawn",), runs=9),
    Row("nspawn pod, default network",
        lambda i: Side("rkt run --net=default",
                       [i.in_netns(i.nspawn.rkt("run", "--net=default", BUSYBOX,
                                                "--exec", "/bin/true"))], i.nspawn.reset),
        podman_bridge, Target(1.0, "faster than podman"),
        requires=("stage1-nspawn", "net-cni"), runs=9),
    Row("kvm pod, `--net=none`, software emulation", kvm_run, bare_vm,
        Target(6.0, "start to exit", unit="s"), requires=("stage1-kvm",), runs=5),
    Row("`rkt version`",
        lambda i: Side("rkt version", [[i.rkt, "version"]]), python_floor, Target(2.2)),
    Row(f"`rkt list`, {MANY} pods",
        lambda i: Side("rkt list", [i.fly_beside_pods.rkt("list")]), python_floor, Target(4),
        requires=("stage1-fly",)),
    Row(f"`rkt status`, {MANY} pods",
        lambda i: Side("rkt status", [i.fly_beside_pods.rkt("status",
                                                            min(i.fly_beside_pods.pods()))]),
        python_floor, Target(4), requires=("stage1-fly",)),
    Row(f"`rkt image list`, {MANY} images",
        lambda i: Side("rkt image list", [i.many_images.rkt("image", "list")]), python_floor,
        Target(10.6, "0.2× the Go rkt, whose 586 ms were 53× `python3 -c pass`")),
    Row(f"fly `rkt run` beside {MANY} earlier pods",
        lambda i: fly_run(i.fly_beside_pods, BUSYBOX),
        lambda i: fly_run(i.fly, BUSYBOX, "the same, no earlier pod"),
        Target(1.2), requires=("stage1-fly",)),
    Row("fetch + render of the Debian minbase ACI", debian_fetch_render, debian_tar, Target(1.3),
        runs=5),
    Row(f"`https://` fetch of a signed {SIGNED_MIB} MiB image", https_fetch, curl_then_file_fetch,
        runs=5),
    Row("`docker://` busybox from a local registry, fetch + render", docker_fetch_render,
        skopeo_umoci, Target(2), requires=("fetch-docker",)),
    Row("peak memory of a fly pod (max RSS)",
        lambda i: fly_run(i.fly, BUSYBOX), runc_run,
        Target(21 * MIB, "1.2× the Go rkt's 17.7 MiB", unit="MiB"), memory=True,
        requires=("stage1-fly",), runs=5),
]
