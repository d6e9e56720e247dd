"""The contract every network backend passes: what ``setup`` and ``teardown`` promise.

A backend's test module subclasses :class:`NetworkContract`, names the backend and a network it
handles, and writes the configuration that network needs::

    from rkt_core.testing.network_contract import NetworkContract

    class TestCniContract(NetworkContract):
        backend = "cni"
        network = "default"

The pods are set up and torn down by stage0's own code, each step in a process of its own
(``python -m rkt_core.testing.network_contract``), as ``rkt run``, its guardian and ``rkt gc``
do, with the installed plugins. The suite checks that setup gives a namespace that exists with
the requested interfaces; that teardown releases everything (no namespace, link, iptables rule
or host-local lease of the pod is left) and may be repeated; that a setup that fails, or a
process that dies, at any of its recorded steps leaves nothing that teardown does not release;
and that two pods get namespaces and addresses of their own. The tests need root (marker
``root``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .netleaks import LEASES, NOTHING, leaks, remove_empty_lease_dirs, scrub

# Exit statuses of the driver's ``setup``: done, failed at the injected step, died there.
COMPLETED, FAILED, CRASHED = 0, 3, 9
MAX_STEPS = 100  # no setup records that many steps


class Pods:
    """Pods of one test, set up and torn down by the driver on directories of their own."""

    def __init__(self, base: Path, local_config: Path):
        self.base = base
        self.dirs = [str(base / "data"), str(local_config), str(base / "usr-lib")]
        self.uuids: set[str] = set()

    def _driver(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", __name__, *self.dirs, *args],
                              capture_output=True, text=True, timeout=120)

    def create(self) -> str:
        """A new pod in ``run/`` (no apps); its UUID."""
        done = self._driver("create")
        assert done.returncode == 0, done.stderr
        uuid = done.stdout.strip()
        self.uuids.add(uuid)
        return uuid

    def setup(self, uuid: str, network: str, fail_at: int = 0, crash: bool = False) -> dict:
        """Set the pod up on ``network``; with ``fail_at``, the fail_at-th state file written
        fails (an OSError) or, if ``crash``, the process dies there. Returns ``status``
        (:data:`COMPLETED`, :data:`FAILED`, :data:`CRASHED`), ``netns``, ``interfaces``
        (net-info.json) and ``stderr``."""
        done = self._driver("setup", uuid, network, str(fail_at), "crash" if crash else "fail")
        assert done.returncode in (COMPLETED, FAILED, CRASHED), done.stderr
        result = json.loads(done.stdout) if done.returncode == COMPLETED else {}
        return {"status": done.returncode, "stderr": done.stderr, **result}

    def teardown(self, uuid: str) -> None:
        """stage0's teardown (the backend's, then the namespace); asserts it succeeded."""
        done = self._driver("teardown", uuid)
        assert done.returncode == 0, done.stderr

    def backend_teardown(self, uuid: str) -> None:
        """The backend's own teardown only; asserts it succeeded."""
        done = self._driver("backend-teardown", uuid)
        assert done.returncode == 0, done.stderr

    def pod_dir(self, uuid: str) -> Path:
        """The pod's directory."""
        return self.base / "data" / "pods" / "run" / uuid


def links_and_addresses(netns: str) -> tuple[list[str], dict[str, str]]:
    """The interface names of the namespace pinned at ``netns`` and their IPv4 addresses."""
    name = os.path.basename(netns)
    links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    addrs = subprocess.run(["ip", "-n", name, "-o", "-4", "addr"], capture_output=True,
                           text=True, check=True).stdout
    addresses = {line.split()[1]: line.split()[3].split("/")[0] for line in addrs.splitlines()}
    return names, addresses


@pytest.mark.root
class NetworkContract:
    """What a network backend promises (see the module docstring). Subclasses set
    :attr:`backend` and :attr:`network`, and override :meth:`local_config` to write what the
    network needs (``net.d`` files...)."""

    backend: str = ""  # the NetworkBackend's name
    network: str = ""  # a name given to --net that the backend handles
    contained: bool = True  # False: the pod keeps the host's namespace (no setup at all)
    interfaces: int = 1  # interfaces (besides lo) a pod gets on the network
    lease_dirs: tuple[Path, ...] = (LEASES,)  # host-local dataDirs of the network

    @pytest.fixture
    def local_config(self, tmp_path) -> Path:
        """The local configuration directory the network is configured in."""
        path = tmp_path / "etc"
        path.mkdir()
        return path

    @pytest.fixture
    def pods(self, tmp_path, local_config):
        """:class:`Pods` of the test; after it, nothing of them may be left on the host."""
        assert self.backend and self.network, "set backend and network in the subclass"
        before = set(os.listdir(LEASES)) if LEASES.is_dir() else set()
        found = Pods(tmp_path, local_config)
        yield found
        left = leaks(found.uuids, self.lease_dirs)
        if left != NOTHING:
            scrub(found.uuids, self.lease_dirs)
        remove_empty_lease_dirs(before)
        assert left == NOTHING

    def _up(self, pods: Pods) -> tuple[str, dict]:
        uuid = pods.create()
        result = pods.setup(uuid, self.network)
        assert result["status"] == COMPLETED, result["stderr"]
        return uuid, result

    def test_setup_gives_a_namespace_with_the_requested_interfaces(self, pods):
        uuid, result = self._up(pods)
        pod = pods.pod_dir(uuid)
        if not self.contained:
            assert (result["netns"], result["interfaces"]) == ("", [])
            assert not (pod / "netns").exists() and leaks({uuid}) == NOTHING
            return
        assert result["netns"] == f"/run/netns/rkt-{uuid}"
        assert (pod / "net-backend").read_text() == self.backend
        names, addresses = links_and_addresses(result["netns"])
        interfaces = result["interfaces"]
        assert len(interfaces) == self.interfaces
        assert names == ["lo", *(i["ifName"] for i in interfaces)]
        for interface in interfaces:
            assert interface["netName"] == self.network
            assert addresses.get(interface["ifName"]) == (interface["ip"] or None)
        pods.teardown(uuid)

    def test_teardown_releases_everything_and_may_be_repeated(self, pods):
        uuid, _ = self._up(pods)
        pods.backend_teardown(uuid)
        pods.backend_teardown(uuid)
        pods.teardown(uuid)
        assert leaks({uuid}, self.lease_dirs) == NOTHING
        pods.teardown(uuid)
        pod = pods.pod_dir(uuid)
        assert not (pod / "netns").exists() and not (pod / "net-backend").exists()

    def test_two_pods_get_namespaces_and_addresses_of_their_own(self, pods):
        first, one = self._up(pods)
        second, other = self._up(pods)
        if self.contained:
            assert one["netns"] != other["netns"]
            assert os.stat(one["netns"]).st_ino != os.stat(other["netns"]).st_ino
        addresses = [i["ip"] for i in one["interfaces"] + other["interfaces"]]
        assert len(addresses) == 2 * self.interfaces and len(set(addresses)) == len(addresses)
        pods.teardown(first)
        assert leaks({first}, self.lease_dirs) == NOTHING
        if self.contained:  # the other pod's namespace stays
            assert leaks({second}, self.lease_dirs)["netns"] == [f"rkt-{second}"]
        pods.teardown(second)

    def test_a_setup_failing_at_any_step_leaves_nothing(self, pods):
        for step in range(1, MAX_STEPS):
            uuid = pods.create()
            result = pods.setup(uuid, self.network, fail_at=step)
            if result["status"] == COMPLETED:  # setup has fewer steps: all were tried
                pods.teardown(uuid)
                break
            assert result["status"] == FAILED, result["stderr"]
            assert leaks({uuid}, self.lease_dirs) == NOTHING, f"failed at step {step}"
            pod = pods.pod_dir(uuid)
            assert not (pod / "netns").exists() and not (pod / "net-backend").exists()
        assert step < MAX_STEPS

    def test_teardown_after_a_crash_at_any_step_of_setup_releases_everything(self, pods):
        for step in range(1, MAX_STEPS):
            uuid = pods.create()
            result = pods.setup(uuid, self.network, fail_at=step, crash=True)
            pods.teardown(uuid)
            assert leaks({uuid}, self.lease_dirs) == NOTHING, f"crashed at step {step}"
            pods.teardown(uuid)
            if result["status"] == COMPLETED:
                break
            assert result["status"] == CRASHED, result["stderr"]
        assert step < MAX_STEPS


# --- the driver: one step of a pod's networking, in a process of its own -----------------------


def _inject(step: int, crash: bool) -> list[bool]:
    """Make the ``step``-th ``os.rename`` of this process (the last step of every state file
    written) fail with an OSError or, if ``crash``, end the process; returns a flag set once
    it fired."""
    import errno

    rename, count, fired = os.rename, [0], [False]

    def faulty(src, dst, *args, **kwargs):
        count[0] += 1
        if count[0] == step:
            fired[0] = True
            if crash:
                os._exit(CRASHED)
            raise OSError(errno.ENOSPC, "injected failure")
        return rename(src, dst, *args, **kwargs)

    os.rename = faulty
    return fired


def main(argv: list[str]) -> int:
    """``DATA LOCAL_CONFIG SYSTEM_CONFIG create|setup UUID NET STEP MODE|teardown UUID|
    backend-teardown UUID``: see :class:`Pods`."""
    from ..appc import PodManifest
    from ..context import Context
    from ..pod.pod import Pod
    from .. import network
    from ..types import RunOptions

    data, local, system, command, *args = argv
    ctx = Context(dir=data, local_config=local, system_config=system)
    if command == "create":
        pod = Pod.create(ctx.data_dir)
        with open(pod.file("pod"), "w") as f:
            f.write(PodManifest(apps=[]).to_json())
        pod.to_run()
        print(pod.uuid)
        return 0
    pod = Pod.open(ctx.data_dir, args[0])
    if command == "teardown":
        return 0 if network.teardown(ctx, pod) else 1
    if command == "backend-teardown":
        from ..pod.view import PodView

        name = pod.read_text(network.BACKEND_FILE)
        if name:
            ctx.plugins.network_backends()[name].factory().teardown(PodView.of(pod), ctx)
        return 0
    net, step, mode = args[1], int(args[2]), args[3]
    ctx.plugins.network_backends()  # discovered before any fault is injected
    fired = _inject(step, mode == "crash") if step else [False]
    try:
        options = network.setup(ctx, pod, RunOptions(lock_fd=-1, net=(net,)))
    except Exception:
        if fired[0]:
            return FAILED
        raise
    info = pod.read_text(network.NET_INFO_FILE)
    print(json.dumps({"netns": options.netns, "interfaces": json.loads(info) if info else []}))
    return COMPLETED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
