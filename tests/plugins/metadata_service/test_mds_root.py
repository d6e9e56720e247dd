"""The metadata service as root, end to end: the real ``rkt metadata-service`` and ``rkt run
--mds-register`` with the fly and nspawn flavors, on the host's network and on contained ones.
Apps ask with busybox ``wget`` from inside their pods; traffic stays on the host's loopback and
inside the pods' own network namespaces. Every service, pod, namespace and socket a test makes
is gone when it ends."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest
from rkt_metadata_service import client

pytestmark = pytest.mark.root

TIMEOUT = 120  # seconds any one command may take
WAIT = 60  # seconds to wait for something to happen

# What an app of the pod asks the service; one "key=value" line per answer.
ASK = r'''
H="Metadata-Flavor: AppContainer"
M="$AC_METADATA_URL/acMetadata/v1"
get() { wget -q -O - --header "$H" "$M$1"; }
post() { wget -q -O - --header "$H" --post-data "$2" "$M$1"; }
echo "url=$AC_METADATA_URL"
uuid=$(get /pod/uuid)
echo "uuid=$uuid"
echo "pod=$(get /pod/manifest | base64 -w0)"
echo "pod-annotations=$(get /pod/annotations/ | tr '\n' ,)"
echo "annotations=$(get /apps/$AC_APP_NAME/annotations/ | tr '\n' ,)"
echo "authors=$(get /apps/$AC_APP_NAME/annotations/authors)"
echo "image=$(get /apps/$AC_APP_NAME/image/manifest | base64 -w0)"
echo "id=$(get /apps/$AC_APP_NAME/image/id)"
sig=$(post /pod/hmac/sign "content=Old MacDonald")
echo "signature=$sig"
enc=$(printf %s "$sig" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
post /pod/hmac/verify "content=Old MacDonald&uuid=$uuid&signature=$enc" >/dev/null
echo "verify=$?"
post /pod/hmac/verify "content=Old McDonald&uuid=$uuid&signature=$enc" >/dev/null 2>&1
echo "tampered=$?"
wget -O /dev/null --header "$H" "${AC_METADATA_URL%/*}/$WRONG/acMetadata/v1/pod/uuid" 2>&1 \
  | grep -o '401 Unauthorized' | sed 's/^/wrong-token=/'
'''
WRONG = "0123456789abcdef0123456789abcdef"
FLAVOR_NETS = [("fly", "host"), ("nspawn", "host"), ("nspawn", "default"), ("nspawn", "none")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def answers(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Service:
    """``rkt metadata-service`` on a socket and port of its own."""

    def __init__(self, directory: Path):
        self.socket = directory / "mds.sock"
        self.port = free_port()
        self.log = directory / "mds.log"
        self.process = None

    def start(self, *wrapper: str) -> "Service":
        env = dict(os.environ, RKT_METADATA_SOCKET=str(self.socket))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "rkt_core.cli.main", "metadata-service",
                 f"--listen-port={self.port}"], env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, "the metadata service to listen")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited: {self.log.read_text()}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
            except OSError:
                return False
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT)

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()


@pytest.fixture
def service(tmp_path):
    svc = Service(tmp_path).start()
    yield svc
    assert svc.stop() == 0
    assert not svc.socket.exists()  # removed by the service itself


class Rkt:
    """The ``rkt`` command on a data directory of its own, registering with ``socket``."""

    def __init__(self, data: Path, socket_path: Path):
        self.data = data
        self.env = dict(os.environ, RKT_METADATA_SOCKET=str(socket_path))
        self.pods: list[str] = []
        self.background: list[subprocess.Popen] = []

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data}",
                "--insecure-options=image", *map(str, args)]

    def __call__(self, *args, **env) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), capture_output=True, text=True,
                              env={**self.env, **env}, timeout=TIMEOUT)

    def run(self, *args, **env) -> tuple[subprocess.CompletedProcess, str]:
        """``rkt run ARGS``; returns the result and the pod's uuid."""
        uuid_file = self.data.parent / f"uuid-{len(self.pods)}"
        done = self("run", f"--uuid-file-save={uuid_file}", *args, **env)
        self.pods.append(uuid_file.read_text())
        return done, self.pods[-1]

    def start(self, *args) -> tuple[subprocess.Popen, Path, str]:
        """``rkt run ARGS`` in the background; its output file and the pod's uuid."""
        n = len(self.pods)
        uuid_file, output = self.data.parent / f"uuid-{n}", self.data.parent / f"output-{n}"
        with open(output, "wb") as out:
            process = subprocess.Popen(self.argv("run", f"--uuid-file-save={uuid_file}", *args),
                                       env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT)
        self.background.append(process)
        self.pods.append(wait_until(lambda: uuid_file.exists() and uuid_file.read_text(),
                                    "the pod's uuid"))
        return process, output, self.pods[-1]

    def pod_dir(self, uuid: str) -> Path:
        return next(self.data.glob(f"pods/*/{uuid}"))

    def cleanup(self) -> None:
        for process in self.background:
            if process.poll() is None:
                for uuid in self.pods:
                    self("stop", "--force", uuid)
                process.wait(timeout=WAIT)
        assert self("gc", "--grace-period=0s").returncode == 0
        for uuid in self.pods:
            assert not os.path.exists(f"/run/netns/rkt-{uuid}")
            assert not list(self.data.glob(f"pods/*/{uuid}"))


@pytest.fixture
def rkt(tmp_path, service):
    r = Rkt(tmp_path / "data", service.socket)
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """busybox with image annotations, asking the metadata service what ASK asks."""
    work = tmp_path_factory.mktemp("image")
    manifest = image_manifest(
        "example.com/mds-app", exec=["/bin/sh", "-c", ASK],
        annotations=[{"name": "authors", "value": "The Image"},
                     {"name": "example.com/note", "value": "from the image"}])
    manifest["app"]["environment"] = [{"name": "WRONG", "value": WRONG}]
    return build_aci(work / "app.aci", manifest, busybox_rootfs(work / "rootfs"))


@pytest.mark.parametrize("flavor,net", FLAVOR_NETS)
def test_an_app_reads_its_pod_and_signs(rkt, service, image, flavor, net):
    done, uuid = rkt.run(f"--stage1-name={flavor}", f"--net={net}", "--mds-register", image)
    assert done.returncode == 0, done.stderr
    got = answers(done.stdout)
    assert got["url"].startswith(f"http://127.0.0.1:{service.port}/")
    assert len(got["url"].rsplit("/", 1)[1]) == 32
    assert got["uuid"] == uuid
    pod = rkt.pod_dir(uuid)
    assert base64.b64decode(got["pod"]) == (pod / "pod").read_bytes()
    assert got["pod-annotations"] == ""
    assert got["annotations"] == "authors,example.com/note,"
    assert got["authors"] == "The Image"
    image_manifest_file = pod / "appsinfo" / "mds-app" / "manifest"
    assert base64.b64decode(got["image"]) == image_manifest_file.read_bytes()
    assert got["id"] == json.loads((pod / "pod").read_text())["apps"][0]["image"]["id"]
    assert len(base64.b64decode(got["signature"], validate=True)) == 64
    assert (got["verify"], got["tampered"], got["wrong-token"]) == ("0", "1", "401 Unauthorized")
    assert (pod / "mds-registered").exists()
    wait_until(lambda: service.logged(f"unregistered pod {uuid}"), "the pod's unregistration")


def test_run_prepared_registers_too(rkt, service, image, tmp_path):
    prepared = rkt("prepare", "--stage1-name=fly", f"--uuid-file-save={tmp_path}/uuid", image)
    assert prepared.returncode == 0, prepared.stderr
    uuid = (tmp_path / "uuid").read_text()
    rkt.pods.append(uuid)
    done = rkt("run-prepared", "--mds-register", uuid)
    assert done.returncode == 0, done.stderr
    got = answers(done.stdout)
    assert (got["uuid"], got["verify"]) == (uuid, "0")


def test_pod_annotations_from_a_pod_manifest(rkt, service, image, tmp_path):
    fetched = rkt("fetch", "--full", image)
    assert fetched.returncode == 0, fetched.stderr
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps({
        "acVersion": "0.7.4", "acKind": "PodManifest",
        "apps": [{"name": "mds-app", "image": {"name": "example.com/mds-app",
                                               "id": fetched.stdout.strip()},
                  "annotations": [{"name": "authors", "value": "The Pod"}]}],
        "annotations": [{"name": "example.com/pod-note", "value": "hello pod"},
                        {"name": "example.com/other", "value": "2"}]}))
    done, _ = rkt.run("--stage1-name=nspawn", "--net=default", "--mds-register",
                      f"--pod-manifest={manifest}")
    assert done.returncode == 0, done.stderr
    got = answers(done.stdout)
    assert got["pod-annotations"] == "example.com/pod-note,example.com/other,"
    assert got["authors"] == "The Pod"  # the pod's annotation of the app wins
    assert got["annotations"] == "authors,example.com/note,"


WAIT_FOR_STOP = 'echo "url=$AC_METADATA_URL"; while [ ! -e /control/stop ]; do sleep 0.1; done'
ASK_WITH = ('H="Metadata-Flavor: AppContainer"; '
            'wget -O - --header "$H" "$URL/acMetadata/v1/pod/uuid" 2>&1; echo; '
            'wget -O - --header "$H" "$AC_METADATA_URL/acMetadata/v1/pod/uuid"')


def test_another_pods_token_is_refused(rkt, service, image, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    first, output, first_uuid = rkt.start(
        "--stage1-name=nspawn", "--net=default", "--mds-register",
        f"--volume=control,kind=host,source={control}", image,
        "--mount=volume=control,target=/control", "--exec", "/bin/sh", "--", "-c",
        WAIT_FOR_STOP)
    url = wait_until(lambda: answers(output.read_text()).get("url"), "the first pod's URL")
    for flavor, net in (("nspawn", "default"), ("fly", "host")):
        done, uuid = rkt.run(f"--stage1-name={flavor}", f"--net={net}", "--mds-register",
                             f"--set-env=URL={url}", image, "--exec", "/bin/sh", "--", "-c",
                             ASK_WITH)
        assert "401 Unauthorized" in done.stdout and first_uuid not in done.stdout, done.stdout
        assert done.stdout.endswith(uuid)  # its own token works
    # nor from the host: that pod is served only inside its network namespace
    token = url.rsplit("/", 1)[1]
    request = (f"GET /{token}/acMetadata/v1/pod/uuid HTTP/1.0\r\n"
               "Metadata-Flavor: AppContainer\r\n\r\n")
    with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as s:
        s.sendall(request.encode())
        assert s.makefile("rb").readline().split()[1] == b"401"
    (control / "stop").touch()
    assert first.wait(timeout=WAIT) == 0
    wait_until(lambda: service.logged(f"unregistered pod {first_uuid}"),
               "the first pod's unregistration")


@pytest.mark.parametrize("flavor,net", [("fly", "host"), ("nspawn", "default")])
def test_rkt_enter_gets_the_apps_metadata_url(rkt, service, image, tmp_path, flavor, net):
    """As in rkt, a command run by ``rkt enter`` has the app's ``AC_METADATA_URL`` and reaches
    the service with it; the URL (the pod's secret) is in the pod for root only."""
    control = tmp_path / "control"
    control.mkdir()
    run, output, uuid = rkt.start(
        f"--stage1-name={flavor}", f"--net={net}", "--mds-register",
        f"--volume=control,kind=host,source={control}", image,
        "--mount=volume=control,target=/control", "--exec", "/bin/sh", "--", "-c",
        WAIT_FOR_STOP)
    url = wait_until(lambda: answers(output.read_text()).get("url"), "the pod's URL")
    recorded = rkt.pod_dir(uuid) / "metadata-url"
    assert recorded.read_text() == url
    assert recorded.stat().st_mode & 0o777 == 0o600
    entered = rkt("enter", uuid, "/bin/sh", "-c",
                  'echo "url=$AC_METADATA_URL"; H="Metadata-Flavor: AppContainer"; '
                  'echo "uuid=$(wget -q -O - --header "$H" "$AC_METADATA_URL/acMetadata/v1/pod/uuid")"')
    assert entered.returncode == 0, entered.stderr
    assert answers(entered.stdout) == {"url": url, "uuid": uuid}
    (control / "stop").touch()
    assert run.wait(timeout=WAIT) == 0


def test_an_unregistered_pod_enters_without_a_metadata_url(rkt, image, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    run, output, uuid = rkt.start(
        "--stage1-name=fly", f"--volume=control,kind=host,source={control}", image,
        "--mount=volume=control,target=/control", "--exec", "/bin/sh", "--", "-c",
        WAIT_FOR_STOP)
    wait_until(lambda: "url=" in output.read_text(), "the app")
    entered = rkt("enter", uuid, "/bin/sh", "-c", 'echo "url=${AC_METADATA_URL-unset}"')
    assert (entered.returncode, entered.stdout) == (0, "url=unset\n"), entered.stderr
    assert not (rkt.pod_dir(uuid) / "metadata-url").exists()
    (control / "stop").touch()
    assert run.wait(timeout=WAIT) == 0


@pytest.mark.parametrize("flavor,net", [("fly", "host"), ("nspawn", "default")])
def test_without_a_service_the_run_fails_before_any_app_starts(tmp_path, image, flavor, net):
    rkt = Rkt(tmp_path / "data", tmp_path / "nobody.sock")
    try:
        done, uuid = rkt.run(f"--stage1-name={flavor}", f"--net={net}", "--mds-register", image)
        assert done.returncode == 254 and done.stdout == ""
        assert f"cannot reach the metadata service at {tmp_path}/nobody.sock" in done.stderr
        assert "rkt: --mds-register: no metadata service registered the pod" in done.stderr
        pod = rkt.pod_dir(uuid)
        assert not (pod / "pid").exists()
        assert not os.path.exists(f"/run/netns/rkt-{uuid}")
        assert not (pod / "netns").exists() and not (pod / "net-backend").exists()
        leases = Path("/var/lib/cni/networks/default")
        assert not [f for f in leases.glob("*") if f.is_file() and uuid in f.read_text()]
        assert "running" not in rkt("status", uuid).stdout
    finally:
        rkt.cleanup()


def test_gc_unregisters_what_the_service_still_holds(rkt, service, image, monkeypatch):
    """A pod whose lock the service could not watch (a service restarted under it, here a
    registration made by hand) is unregistered by ``rkt gc``."""
    done, uuid = rkt.run("--stage1-name=fly", "--net=host", "--mds-register", image)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: service.logged(f"unregistered pod {uuid}"), "the unregistration")
    pod = rkt.pod_dir(uuid)
    monkeypatch.setenv(client.SOCKET_ENV, str(service.socket))
    status, _ = client.request("PUT", f"/pods/{uuid}?token={'e' * 32}", (pod / "pod").read_bytes())
    assert status == 200
    assert rkt("gc", "--grace-period=0s").returncode == 0
    assert service.log.read_text().count(f"unregistered pod {uuid}") == 2


def test_socket_activation(tmp_path, image):
    svc = Service(tmp_path)
    svc.start("systemd-socket-activate", f"--listen={svc.socket}")
    rkt = Rkt(tmp_path / "data", svc.socket)
    try:
        done, uuid = rkt.run("--stage1-name=fly", "--net=host", "--mds-register", image)
        assert done.returncode == 0, done.stderr
        assert answers(done.stdout)["uuid"] == uuid
        assert svc.logged("registrations on the socket systemd passed")
    finally:
        assert svc.stop() == 0
        rkt.cleanup()
    assert svc.socket.exists()  # systemd's to remove, not the service's
    svc.socket.unlink()


def test_a_second_service_is_refused(service, tmp_path):
    second = subprocess.run(
        [sys.executable, "-m", "rkt_core.cli.main", "metadata-service",
         f"--listen-port={free_port()}"], capture_output=True, text=True, timeout=TIMEOUT,
        env=dict(os.environ, RKT_METADATA_SOCKET=str(service.socket)))
    assert second.returncode == 254
    assert f"another metadata service is listening on {service.socket}" in second.stderr
