"""Stage1 images end to end, as root: a stage1 image the test builds (interface versions 1 and
5, signed and unsigned), given by path, URL, ID, name, ``stage1.d`` and v0.14's flag, runs a
busybox app whose exit status ``rkt run`` returns; each entrypoint gets the arguments of its
version; gc calls the image's gc; hostile images are refused and leave nothing behind."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from teststage1 import NAME, stage1_aci

from rkt_core.testing.aci import busybox_aci, tar_uncompressed_sha512
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.httpserver import TestServer

pytestmark = pytest.mark.root

TIMEOUT = 120
WAIT = 30


class Rkt:
    """``rkt`` with its own data and configuration directories."""

    def __init__(self, base: Path):
        self.base = base
        self.data, self.local, self.system = base / "data", base / "etc", base / "usr-lib"
        self.background: list[subprocess.Popen] = []

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data}",
                f"--local-config={self.local}", f"--system-config={self.system}",
                *map(str, args)]

    def __call__(self, *args, check=None) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(*args), capture_output=True, text=True,
                                timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        if check is not None:
            assert result.returncode == check, (result.stdout, result.stderr)
        return result

    def run(self, *args, check=None) -> tuple[subprocess.CompletedProcess, str]:
        """``rkt run ARGS``, and the pod's uuid."""
        uuid_file = self.base / "uuid"
        uuid_file.unlink(missing_ok=True)
        result = self("run", f"--uuid-file-save={uuid_file}", *args, check=check)
        return result, uuid_file.read_text().strip() if uuid_file.exists() else ""

    def start(self, *args) -> tuple[subprocess.Popen, str]:
        """``rkt run ARGS`` in the background, once its pod is running with a pid."""
        uuid_file = self.base / f"uuid-{len(self.background)}"
        process = subprocess.Popen(self.argv("run", f"--uuid-file-save={uuid_file}", *args),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.background.append(process)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            uuid = uuid_file.read_text().strip() if uuid_file.exists() else ""
            if uuid and "pid" in self.status(uuid) and self.status(uuid)["state"] == "running":
                return process, uuid
            assert process.poll() is None, f"rkt run exited early ({process.returncode})"
            time.sleep(0.1)
        raise AssertionError("the pod did not start")

    def status(self, uuid: str) -> dict[str, str]:
        out = self("status", uuid).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def pod_dir(self, uuid: str) -> Path:
        (found,) = (self.data / "pods").glob(f"*/{uuid}")
        return found

    def pods(self) -> list[Path]:
        return list((self.data / "pods").glob("*/*"))

    def images(self) -> dict[str, dict]:
        listing = json.loads(self("image", "list", "--format=json", check=0).stdout)
        return {image["name"]: image for image in listing}

    def cleanup(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(WAIT)


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Signed test images: stage1 of interface versions 5 and 1 (the latter without a stop
    entrypoint), one writing ``ppid``, and a busybox app that prints and exits 3."""
    base = tmp_path_factory.mktemp("images")
    gc_log = base / "gc.log"
    with GpgSigner(base / "gnupg") as signer:
        key = base / "key.asc"
        key.write_bytes(signer.export_public())
        found = SimpleNamespace(
            base=base, key=key, gc_log=gc_log,
            v5=stage1_aci(base / "stage1-v5.aci", gc_log=gc_log),
            v1=stage1_aci(base / "stage1-v1.aci", interface_version=None, version="0.1",
                          stop=False, gc_log=gc_log),
            ppid=stage1_aci(base / "stage1-ppid.aci", version="0.2", ppid=True),
            app=busybox_aci(base / "app.aci", exec=["/bin/sh", "-c", "echo ran; exit 3"]),
            sleeper=busybox_aci(base / "sleeper.aci", name="example.com/sleeper",
                                exec=["/bin/sleep", "1000"]))
        for aci in (found.v5, found.v1, found.ppid, found.app, found.sleeper):
            signer.sign(aci)
        yield found


@pytest.fixture
def rkt(tmp_path, images):
    rkt = Rkt(tmp_path)
    rkt("trust", "--prefix=example.com", "--skip-fingerprint-review", images.key, check=0)
    yield rkt
    rkt.cleanup()
    rkt("gc", "--grace-period=0s")
    assert mounts_under(rkt.data) == []


def gc_calls(images, uuid) -> list[list[str]]:
    lines = images.gc_log.read_text().splitlines() if images.gc_log.exists() else []
    return [args for args in map(json.loads, lines) if args[-1] == uuid]


# --- choosing the stage1 image -----------------------------------------------------------------


def test_by_path_the_apps_exit_status_and_no_reimport_on_the_second_run(rkt, images):
    result, uuid = rkt.run(f"--stage1-path={images.v5}", images.app)
    assert (result.returncode, result.stdout) == (3, "ran\n"), result.stderr
    pod = rkt.pod_dir(uuid)
    assert (pod / "stage1" / "flavor").read_text() == "image"
    assert rkt.status(uuid)["app-busybox"] == "3"
    tree = (pod / "stage1TreeStoreID").read_text()
    rendered = (rkt.data / "cas" / "tree" / tree / "rendered").stat()
    imported = rkt.images()[f"{NAME}:1.0"]["import_time"]
    assert mounts_under(rkt.data) == []  # unmounted once the pod exited

    result, _ = rkt.run(f"--stage1-path={images.v5}", images.app)
    assert result.returncode == 3, result.stderr
    assert rkt.images()[f"{NAME}:1.0"]["import_time"] == imported
    again = (rkt.data / "cas" / "tree" / tree / "rendered").stat()
    assert (again.st_ino, again.st_mtime_ns) == (rendered.st_ino, rendered.st_mtime_ns)


def test_an_unsigned_stage1_image_is_refused_and_leaves_no_pod(rkt, images, tmp_path):
    unsigned = tmp_path / "unsigned.aci"
    shutil.copy(images.v5, unsigned)
    result, _ = rkt.run(f"--stage1-path={unsigned}", images.app)
    assert result.returncode == 254
    assert "has no signature" in result.stderr
    assert rkt.pods() == [] and rkt.images() == {}
    result = rkt("--insecure-options=image", "run", f"--stage1-path={unsigned}", images.app)
    assert result.returncode == 3, result.stderr


def test_by_url_over_loopback_http(rkt, images):
    with TestServer() as server:
        server.add("/stage1.aci", images.v5.read_bytes())
        server.add("/stage1.aci.asc", Path(f"{images.v5}.asc").read_bytes())
        result, uuid = rkt.run(f"--stage1-url={server.url('/stage1.aci')}", images.app)
        assert result.returncode == 3, result.stderr
        assert len(server.seen("/stage1.aci.asc")) == 1
    assert (rkt.pod_dir(uuid) / "stage1" / "flavor").read_text() == "image"


def test_by_hash_and_by_name_after_a_fetch(rkt, images):
    fetched = rkt("fetch", images.v5, check=0).stdout.strip()
    assert tar_uncompressed_sha512(images.v5).startswith(fetched)
    result, uuid = rkt.run(f"--stage1-hash={fetched}", images.app)
    assert result.returncode == 3, result.stderr
    result, uuid = rkt.run(f"--stage1-name={NAME}:1.0", images.app)
    assert result.returncode == 3, result.stderr
    assert (rkt.pod_dir(uuid) / "stage1" / "flavor").read_text() == "image"


def test_stage1_d_location_is_the_default(rkt, images):
    (rkt.local / "stage1.d").mkdir(parents=True)
    (rkt.local / "stage1.d" / "default.json").write_text(json.dumps(
        {"rktKind": "stage1", "rktVersion": "v1", "location": str(images.v5)}))
    result, uuid = rkt.run(images.app)
    assert result.returncode == 3, result.stderr
    assert (rkt.pod_dir(uuid) / "stage1" / "flavor").read_text() == "image"


def test_rkts_own_image_names_choose_the_installed_flavor(rkt, images):
    result, uuid = rkt.run("--stage1-name=coreos.com/rkt/stage1-fly:0.14.0", images.app)
    assert result.returncode == 3, result.stderr
    assert (rkt.pod_dir(uuid) / "stage1" / "flavor").read_text() == "fly"
    result, uuid = rkt.run("--stage1-image=/usr/lib/rkt/stage1-fly.aci", images.app)
    assert result.returncode == 3, result.stderr
    assert (rkt.pod_dir(uuid) / "stage1" / "flavor").read_text() == "fly"
    result, _ = rkt.run("--stage1-name=fly", f"--stage1-path={images.v5}", images.app)
    assert result.returncode == 254
    assert "flags --stage1-name and --stage1-path are mutually exclusive" in result.stderr


def test_without_overlay_the_tree_is_copied_into_the_pod(rkt, images):
    result, uuid = rkt.run("--no-overlay", f"--stage1-path={images.v5}", images.app)
    assert result.returncode == 3, result.stderr
    rootfs = rkt.pod_dir(uuid) / "stage1" / "rootfs"
    assert (rootfs / "stage1" / "run").is_file() and (rootfs / "rkt" / "status" / "busybox").is_file()


# --- the contract, per interface version -------------------------------------------------------


def test_run_arguments_per_interface_version(rkt, images):
    flags = ["--hostname=pod1", "--dns=192.0.2.53", "--hosts-entry=192.0.2.10=db"]
    result, uuid = rkt.run(*flags, f"--stage1-path={images.v5}", images.app)
    assert result.returncode == 3, result.stderr
    pod = rkt.pod_dir(uuid)
    args = json.loads((pod / "run-args").read_text())
    assert args == ["--net=host", f"--local-config={rkt.local}", "--hostname=pod1",
                    "--dns-conf-mode=resolv=stage0,hosts=stage0", uuid]
    assert "nameserver 192.0.2.53" in (pod / "stage1/rootfs/etc/rkt-resolv.conf").read_text()
    assert "192.0.2.10\tdb" in (pod / "stage1/rootfs/etc/rkt-hosts").read_text()
    assert "warning" not in result.stderr

    result, uuid = rkt.run("--debug", *flags, f"--stage1-path={images.v1}", images.app)
    assert result.returncode == 3, result.stderr
    args = json.loads((rkt.pod_dir(uuid) / "run-args").read_text())
    assert args == ["--debug", "--net=host", f"--local-config={rkt.local}", uuid]
    for dropped in ("--hostname", "--dns-conf-mode"):
        assert (f"warning: {dropped}" in result.stderr
                and f'stage1 image "{NAME}" (interface version 1; ' in result.stderr), dropped


def test_gc_calls_the_gc_entrypoint_with_the_arguments_of_its_version(rkt, images):
    _, v5 = rkt.run(f"--stage1-path={images.v5}", images.app, check=3)
    _, v1 = rkt.run(f"--stage1-path={images.v1}", images.app, check=3)
    result = rkt("gc", "--grace-period=0s", check=0)
    assert f'Garbage collecting pod "{v5}"' in result.stdout
    assert gc_calls(images, v5) == [["--local-config", str(rkt.local), v5]]
    assert gc_calls(images, v1) == [[v1]]
    assert rkt.pods() == [] and mounts_under(rkt.data) == []


def test_enter_stop_status_and_list_of_a_running_pod(rkt, images):
    process, uuid = rkt.start(f"--stage1-path={images.v5}", images.sleeper)
    listing = rkt("list", "--no-legend", check=0).stdout.split()
    assert listing[:4] == [uuid[:8], "sleeper", "example.com/sleeper:1.0", "running"]
    result = rkt("enter", uuid, "/bin/sh", "-c", "echo $AC_APP_NAME; exit 4")
    assert (result.returncode, result.stdout) == (4, "sleeper\n"), result.stderr
    assert rkt("stop", uuid, check=0).stdout == f'"{uuid}"\n'
    assert process.wait(WAIT) == 128 + signal.SIGTERM
    assert rkt.status(uuid)["app-sleeper"] == str(128 + signal.SIGTERM)


def test_image_gc_keeps_the_stage1_image_of_a_running_pod_and_its_tree_for_gc(rkt, images):
    process, uuid = rkt.start(f"--stage1-path={images.v5}", images.sleeper)
    stage1 = rkt.images()[f"{NAME}:1.0"]["id"]
    assert (rkt.pod_dir(uuid) / "stage1ID").read_text() == stage1
    rkt("image", "gc", "--grace-period=0s", check=0)
    assert set(rkt.images()) == {f"{NAME}:1.0", "example.com/sleeper:1.0"}  # the pod runs
    rkt("stop", uuid, check=0)
    assert process.wait(WAIT) == 128 + signal.SIGTERM
    rkt("image", "gc", "--grace-period=0s", check=0)
    assert rkt.images() == {}
    tree = (rkt.pod_dir(uuid) / "stage1TreeStoreID").read_text()
    assert (rkt.data / "cas" / "tree" / tree / "rendered").exists()  # the pod's gc needs it
    rkt("gc", "--grace-period=0s", check=0)
    assert gc_calls(images, uuid) == [["--local-config", str(rkt.local), uuid]]


def test_a_stage1_without_stop_entrypoint_cannot_be_stopped(rkt, images):
    process, uuid = rkt.start(f"--stage1-path={images.v1}", images.sleeper)
    result = rkt("stop", uuid)
    assert result.returncode == 254
    assert "rkt stop is not implemented for this pod's stage1" in result.stderr
    process.send_signal(signal.SIGTERM)  # passed on to the run entrypoint, and by it to the app
    assert process.wait(WAIT) == 128 + signal.SIGTERM


def test_a_stage1_that_writes_ppid(rkt, images):
    process, uuid = rkt.start(f"--stage1-path={images.ppid}", images.sleeper)
    pod = rkt.pod_dir(uuid)
    assert not (pod / "pid").exists()
    ppid = int((pod / "ppid").read_text())
    assert rkt.status(uuid)["pid"] == str(ppid)  # as rkt's status shows it
    result = rkt("enter", uuid, "/bin/sh", "-c", "cat /proc/self/stat")  # through ppid's child
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[3]) != ppid  # the entered command's parent is not stage1
    rkt("stop", "--force", uuid, check=0)
    assert process.wait(WAIT) == 128 + signal.SIGKILL


# --- hostile and broken images -----------------------------------------------------------------


@pytest.mark.parametrize("what,build,message", [
    ("an app image", lambda d: busybox_aci(d / "x.aci"), "is not a stage1 image"),
    ("a climbing entrypoint", lambda d: stage1_aci(d / "x.aci", entrypoints={
        "run": "/../../../../bin/sh"}), 'the run entrypoint "/../../../../bin/sh" is not an'),
    ("a bad interface version", lambda d: stage1_aci(d / "x.aci", interface_version="five"),
     'interface version "five" is not a number'),
])
def test_images_that_are_no_stage1_are_refused_before_any_pod(rkt, images, tmp_path, what, build,
                                                              message):
    aci = build(tmp_path)
    result = rkt("--insecure-options=image", "run", f"--stage1-path={aci}", images.app)
    assert result.returncode == 254, what
    assert message in result.stderr, what
    assert rkt.pods() == [] and mounts_under(rkt.data) == []


def test_an_entrypoint_link_out_of_the_image_is_resolved_inside_it(rkt, images, tmp_path):
    aci = stage1_aci(tmp_path / "x.aci", entrypoints={"run": "/escape"},
                     symlinks={"/escape": "/bin/true"})  # the host's /bin/true would exit 0
    result = rkt("--insecure-options=image", "run", f"--stage1-path={aci}", images.app)
    assert result.returncode == 254
    assert 'the run entrypoint "/escape" of stage1 image' in result.stderr
    assert mounts_under(rkt.data) == []
    assert all(rkt.status(p.name)["state"] in ("exited", "aborted prepare") for p in rkt.pods())
