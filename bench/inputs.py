"""What the benchmarks run on, built here on first use and removed by :meth:`Inputs.close`.

Everything is made on this machine: a busybox rootfs (``busybox-static``) as an ACI and as a
``runc`` bundle, data directories with the image stored and rendered (and with 200 pods or
200 images), the stage1 root of a real nspawn pod for ``systemd-nspawn --boot``, a network
namespace for the networked rows, a Debian minbase rootfs (``debootstrap``, kept in the cache
directory across runs), a loopback HTTPS server with a signed image and a local
docker-registry with the busybox test image.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.httpserver import TestCA, TestServer
from rkt_core.testing.registry import TEST_REPO, Registry, build_test_image
from rkt_core.testing.runner import local_env

BUSYBOX = "example.com/busybox:1.0"
DEBIAN = "example.com/debian:1.0"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
MANY = 200  # pods or images beside the one timed
SIGNED = "example.com/bench-signed:1.0"
SIGNED_MIB = 64


def run(*argv, **kwargs) -> str:
    """Run a set-up command; its stdout, or an exception naming it with its stderr."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited with {done.returncode}: "
                           f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under ``path``, deepest first."""
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")),
                  key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Remove ``path``, unmounting what is mounted below it first (never deleting through a
    mount, e.g. the /proc of an interrupted debootstrap)."""
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], check=True)
    shutil.rmtree(path, ignore_errors=True)


# Set by some shells and sandboxes, not by Debian: each makes every TLS client parse a whole
# bundle per connection instead of the system's hashed directory (a row that needs a CA of its
# own sets it in its side's environment).
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def timed_environment() -> dict[str, str]:
    """The environment of every benchmarked command, on both sides: no proxies (traffic stays on
    127.0.0.1), no PYTHON* variables (they would change what Python does at start-up) and the
    system's certificate authorities as a plain Debian system has them (no CA variables)."""
    return {k: v for k, v in local_env().items()
            if not k.startswith("PYTHON") and k not in CA_VARIABLES}


@dataclass(frozen=True)
class SignedImage:
    """Where :attr:`Inputs.signed_image` is served, the CA to trust and the rkt flags naming
    the configuration that trusts its key."""

    url: str
    ca: str
    config: list[str]


class DataDir:
    """An rkt data directory (``--dir``) whose pods are put back before each timed run."""

    def __init__(self, rkt: str, path: Path):
        self.path = path
        self._rkt = rkt
        self._kept: set[str] = set()

    def rkt(self, *args: str, insecure: str = "image") -> list[str]:
        """The rkt command line for this data directory (images are unsigned)."""
        return [self._rkt, f"--dir={self.path}", f"--insecure-options={insecure}", *args]

    def pods(self) -> set[str]:
        """The UUIDs of every pod, in any state."""
        root = self.path / "pods"
        return {p.name for p in root.glob("*/*")} if root.is_dir() else set()

    def keep_pods(self) -> None:
        """Take the pods there now as the ones :meth:`reset` keeps."""
        self._kept = self.pods()

    def reset(self) -> None:
        """Remove (with ``rkt rm``) the pods made since :meth:`keep_pods`."""
        extra = sorted(self.pods() - self._kept)
        if extra:
            run(*self.rkt("rm", *extra))

    def close(self) -> None:
        """Remove every pod (their mounts with them)."""
        self._kept = set()
        self.reset()


class Inputs:
    """The inputs of the rows, each built on first use. ``work`` is removed at the end;
    ``cache`` keeps what is slow to make (the Debian rootfs and its ACI)."""

    def __init__(self, work: Path, cache: Path):
        self.work = work
        self.cache = cache
        self.rkt = str(Path(sys.executable).parent / "rkt")
        self._cleanup = contextlib.ExitStack()

    def close(self) -> None:
        """Remove pods, stop the registry, delete the network namespace and the work directory."""
        try:
            self._cleanup.close()  # every step runs, even after one failed
        finally:
            remove_tree(self.work)

    # --- busybox ---------------------------------------------------------------------------

    @cached_property
    def busybox_rootfs(self) -> Path:
        """A static busybox with its applets, and a root user."""
        rootfs = busybox_rootfs(self.work / "busybox" / "rootfs")
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (rootfs / "etc" / "group").write_text("root:x:0:\n")
        return rootfs

    @cached_property
    def busybox_aci(self) -> Path:
        """The busybox rootfs as the ACI ``example.com/busybox:1.0`` running ``/bin/true``."""
        name, version = BUSYBOX.split(":")
        return build_aci(self.work / "busybox.aci", image_manifest(name, version, ["/bin/true"]),
                         self.busybox_rootfs)

    @cached_property
    def runc_bundle(self) -> Path:
        """An OCI bundle (``runc spec``) of the busybox rootfs running ``/bin/true``."""
        bundle = self.work / "runc-bundle"
        bundle.mkdir()
        run("runc", "spec", "--bundle", bundle)
        config = json.loads((bundle / "config.json").read_text())
        config["root"]["path"] = str(self.busybox_rootfs)
        config["process"].update(args=["/bin/true"], terminal=False)
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    def data_dir(self, name: str) -> DataDir:
        """A new, empty data directory."""
        data = DataDir(self.rkt, self.work / name)
        self._cleanup.callback(data.close)
        return data

    def stored(self, name: str, flavor: str, pods: int = 0, net: str = "host") -> DataDir:
        """A data directory with the busybox image stored and rendered (by one run of
        ``flavor`` on network ``net``, whose pod is removed again) and ``pods`` exited pods
        kept."""
        data = self.data_dir(name)
        run(*data.rkt("fetch", self.busybox_aci))
        run(*data.rkt("run", f"--stage1-name={flavor}", f"--net={net}", BUSYBOX))
        data.reset()
        with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
            for done in [pool.submit(run, *data.rkt("run", f"--stage1-name={flavor}",
                                                    "--net=host", BUSYBOX))
                         for _ in range(pods)]:
                done.result()
        data.keep_pods()
        return data

    @cached_property
    def fly(self) -> DataDir:
        """The busybox image stored and rendered, no pods."""
        return self.stored("fly", "fly")

    @cached_property
    def fly_beside_pods(self) -> DataDir:
        """The busybox image stored and rendered, and :data:`MANY` exited fly pods."""
        return self.stored("fly-pods", "fly", pods=MANY)

    @cached_property
    def many_images(self) -> DataDir:
        """:data:`MANY` small images, fetched with ``rkt fetch``."""
        data = self.data_dir("images")
        source = self.work / "images"
        source.mkdir()
        images = [build_aci(source / f"{i}.aci",
                            image_manifest(f"example.com/image-{i}", exec=["/bin/true"]),
                            files={"file": str(i).encode()}) for i in range(MANY)]
        run(*data.rkt("fetch", *map(str, images)))
        shutil.rmtree(source)
        return data

    # --- kvm -------------------------------------------------------------------------------

    @cached_property
    def kvm(self) -> DataDir:
        """The busybox image stored and rendered for the kvm flavor (its kernel and initramfs
        cached by that first run), no pods."""
        return self.stored("kvm", "kvm", net="none")

    @cached_property
    def bare_vm_argv(self) -> list[str]:
        """The qemu command of the kvm flavor's acceleration probe, emulated: its kernel and
        initramfs booted to a guest that says so and powers off."""
        from rkt_stage1_kvm import assets, stage1, vm

        boot = assets.ensure(stage1.cache_dir())
        return vm.probe_argv(boot.kernel, boot.initramfs, "tcg")

    # --- nspawn ----------------------------------------------------------------------------

    @cached_property
    def nspawn(self) -> DataDir:
        """The busybox image stored and rendered for the nspawn flavor, no pods."""
        return self.stored("nspawn", "nspawn")

    @cached_property
    def nspawn_stage1(self) -> Path:
        """A copy of a real nspawn pod's stage1 root (units, reaper) with the app's root
        copied where its unit expects it: what plain ``systemd-nspawn --boot`` runs."""
        data = self.nspawn
        run(*data.rkt("run", "--net=host", BUSYBOX))
        (pod,) = (data.path / "pods").glob("*/*")
        stage1 = self.work / "nspawn-stage1"
        run("cp", "-a", pod / "stage1" / "rootfs", stage1)
        app_root = stage1 / "opt" / "stage2" / "busybox" / "rootfs"
        tree = (pod / "appsinfo" / "busybox" / "treeStoreID").read_text()
        run("cp", "-a", f"{data.path / 'cas' / 'tree' / tree / 'rootfs'}/.", app_root)
        run("cp", "-a", f"{pod / 'overlay' / 'busybox' / 'upper'}/.", app_root)
        data.reset()
        self.reset_nspawn_stage1(stage1)
        return stage1

    @staticmethod
    def reset_nspawn_stage1(stage1: Path) -> None:
        """Remove the apps' exit statuses and outputs of the last boot (rkt's output FIFOs
        too: with no ``rkt run`` reading them, the app's output goes to plain files)."""
        for name in ("status", "io"):
            for path in (stage1 / "rkt" / name).iterdir():
                path.unlink()
        (stage1 / "rkt" / "first-failure").unlink(missing_ok=True)

    # --- networking ------------------------------------------------------------------------

    @cached_property
    def netns(self) -> str:
        """A network namespace of our own (only ``lo``, up) for the networked rows: bridges,
        veths and iptables rules made in it disappear with it."""
        name = f"rkt-bench-{os.getpid()}"
        run("ip", "netns", "add", name)
        self._cleanup.callback(run, "ip", "netns", "delete", name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        for path in (Path("/var/lib/cni/networks/default"), Path("/var/lib/cni/results")):
            self._cleanup.callback(_remove_if_new_and_unused, path, path.exists())
        return name

    def in_netns(self, argv: list[str]) -> list[str]:
        """``argv`` run in :attr:`netns` (``nsenter``: unlike ``ip netns exec`` it leaves the
        mounts alone, /sys/fs/cgroup included)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    @cached_property
    def podman(self) -> list[str]:
        """podman with its state in the work directory; cgroupfs and a file event log (no
        systemd here), runc (crun refuses this host's hybrid cgroup hierarchy)."""
        state = self.work / "podman"
        podman = ["podman", f"--root={state / 'root'}", f"--runroot={state / 'run'}",
                  f"--tmpdir={state / 'tmp'}", "--cgroup-manager=cgroupfs",
                  "--events-backend=file", "--runtime=runc"]
        self._cleanup.callback(subprocess.run, [*podman, "rm", "--all", "--force"],
                               capture_output=True)
        return podman

    # --- Debian ----------------------------------------------------------------------------

    @cached_property
    def debian_rootfs(self) -> Path:
        """A Debian minbase rootfs of this host's release (debootstrap, kept in the cache)."""
        rootfs = self.cache / "debian"
        if not (rootfs / "etc" / "debian_version").exists():
            partial = self.cache / "debian.partial"
            remove_tree(partial)
            partial.parent.mkdir(parents=True, exist_ok=True)
            print(f"debootstrap {_codename()} into {rootfs} (once)", file=sys.stderr, flush=True)
            run("debootstrap", "--variant=minbase", _codename(), partial, DEBIAN_MIRROR)
            partial.rename(rootfs)
        return rootfs

    @cached_property
    def debian_aci(self) -> Path:
        """The Debian rootfs as the ACI ``example.com/debian:1.0`` (kept in the cache)."""
        aci = self.cache / "debian.aci"
        if not aci.exists():
            name, version = DEBIAN.split(":")
            partial = build_aci(aci.with_suffix(".partial"),
                                image_manifest(name, version, ["/bin/true"]), self.debian_rootfs)
            partial.rename(aci)
        return aci

    # --- https ------------------------------------------------------------------------------

    @cached_property
    def signed_image(self) -> SignedImage:
        """A signed image of :data:`SIGNED_MIB` MiB of random bytes on a loopback HTTPS server
        (certified by a CA of our own), its key trusted in a configuration of our own."""
        work = self.work / "signed"
        name, version = SIGNED.split(":")
        work.mkdir()
        aci = build_aci(work / "image.aci", image_manifest(name, version),
                        files={"blob": os.urandom(SIGNED_MIB * 2**20)})
        ca = TestCA(work / "ca")
        signer = self._cleanup.enter_context(GpgSigner(work / "gpg"))
        server = self._cleanup.enter_context(TestServer(ca=ca))
        server.add("/image.aci", aci.read_bytes())
        server.add("/image.aci.asc", signer.sign(aci).read_bytes())
        (work / "key.asc").write_bytes(signer.export_public())
        config = [f"--local-config={work / 'etc'}", f"--system-config={work / 'lib'}"]
        run(self.rkt, *config, "trust", f"--prefix={name}", "--skip-fingerprint-review",
            work / "key.asc")
        aci.unlink()
        return SignedImage(server.url("/image.aci"), str(ca.ca_path), config)

    # --- docker registry -------------------------------------------------------------------

    @cached_property
    def registry(self) -> Registry:
        """A local docker-registry (127.0.0.1, http) holding the busybox test image."""
        layout = build_test_image(self.work / "oci-busybox")
        registry = self._cleanup.enter_context(Registry())
        registry.push_test_images(layout)
        return registry

    @property
    def docker_image(self) -> str:
        """The busybox test image in :attr:`registry` (``ADDRESS/test/busybox:latest``)."""
        return f"{self.registry.address}/{TEST_REPO}:latest"

    @property
    def docker_image_name(self) -> str:
        """The name ``rkt fetch`` gives :attr:`docker_image` (docker2aci's: ``:`` → ``_``)."""
        return self.docker_image.replace(":", "_", 1)

    @cached_property
    def skopeo_policy(self) -> Path:
        """A signature policy accepting anything (the registry's images are unsigned)."""
        policy = self.work / "policy.json"
        policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        return policy


def fresh(*paths: Path) -> None:
    """Remove ``paths`` (output of the previous run)."""
    for path in paths:
        remove_tree(path)


def empty(path: Path) -> None:
    """Make ``path`` an empty directory (removing the output of the previous run)."""
    remove_tree(path)
    path.mkdir()


def _codename() -> str:
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "bookworm"


def _remove_if_new_and_unused(path: Path, existed: bool) -> None:
    """Remove a CNI state directory the benchmarks created, once it holds no lease or
    result (only host-local's lock and last-reserved-IP files)."""
    if existed or not path.is_dir():
        return
    if {p.name for p in path.iterdir()} <= {"lock", "last_reserved_ip.0"}:
        shutil.rmtree(path)

