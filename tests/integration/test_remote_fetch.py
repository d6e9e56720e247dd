"""Fetching by appc name end to end: meta discovery, ``rkt trust --prefix`` by discovery,
dependencies, and hostile discovery servers.

The names are real DNS-style names (``example.com``) on port 443, so the test makes a network
namespace of its own with HTTPS servers on 127.0.0.1:443 and 127.0.0.2:443 inside it, and runs
rkt in that namespace and in a private mount namespace where its own hosts file is bind-mounted
over /etc/hosts (the host's /etc/hosts is never touched). The servers' certificates come from a
CA made by the test, which rkt trusts through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import os
import pty
import secrets
import subprocess
from pathlib import Path

import pytest

from rkt_core.testing.aci import build_aci, image_manifest, tar_uncompressed_sha512
from rkt_core.testing.fetcher_contract import FetcherContract, Source, good_aci, hostile_aci
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.httpserver import TestCA, TestServer, listen_in_netns
from rkt_core.testing.runner import Rkt
from rkt_core.testing.terminal import drain

pytestmark = pytest.mark.root

HELLO = "example.com/hello"
TEMPLATE = "https://example.com/images/{name}-{version}-{os}-{arch}.{ext}"


def _page(*tags: tuple[str, str, str]) -> bytes:
    metas = "".join(f'<meta name="{n}" content="{p} {u}">\n' for n, p, u in tags)
    return f"<!DOCTYPE html><html><head>{metas}</head><body>hi</body></html>".encode()


class World:
    """A netns with example.com (127.0.0.1:443), other.example (127.0.0.2:443) and an
    unreachable down.example (127.0.0.3), a hosts file for them, and an rkt runner inside."""

    def __init__(self, base: Path, ca: TestCA, netns: str):
        self.base, self.ca, self.netns = base, ca, netns
        self.hosts = base / "hosts"
        # down.example: nothing listens there
        self.hosts.write_text("127.0.0.1 localhost example.com\n127.0.0.2 other.example\n"
                              "127.0.0.3 down.example\n")
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        self.rkt = Rkt(base, insecure="", env={"REQUESTS_CA_BUNDLE": str(ca.ca_path)},
                       prefix=["nsenter", f"--net={netns}", "unshare", "--mount", "--propagation",
                               "private", "sh", "-c", script, str(self.hosts)])
        self.data, self.local = self.rkt.data_dir, self.rkt.local_config
        self.main = TestServer(ca=ca, names=["example.com"],
                               sock=listen_in_netns(netns, "127.0.0.1", 443))
        self.other = TestServer(ca=ca, names=["other.example"],
                                sock=listen_in_netns(netns, "127.0.0.2", 443))

    def close(self) -> None:
        self.main.close()
        self.other.close()

    def rkt_on_tty(self, *args, answer: bytes):
        """rkt with stdin and stderr on a pseudo-terminal (stdout a pipe)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen(self.rkt.argv(*args), stdin=slave, stderr=slave,
                                stdout=subprocess.PIPE, env=self.rkt.env)
        os.close(slave)
        os.write(master, answer)
        out = proc.stdout.read().decode()
        code = proc.wait(timeout=120)
        terminal = drain(master)
        return code, out, terminal.decode(errors="replace").replace("\r\n", "\n")

    def images(self) -> list[str]:
        return sorted(self.rkt("image", "list", "--no-legend", "--fields=name",
                               check=0).stdout.split())

    def key_files(self) -> list[str]:
        root = self.local / "trustedkeys"
        return sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs)

    def publish(self, signer: GpgSigner, name: str, version: str, aci: Path,
                url_version: str | None = None) -> None:
        """Serve ``aci`` and its signature where TEMPLATE puts ``name:version``."""
        stem = f"/images/{name}-{url_version or version}-linux-amd64"
        self.main.add(stem + ".aci", aci.read_bytes())
        self.main.add(stem + ".aci.asc", signer.sign(aci).read_bytes())


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("signer"), uid="Hello <hello@example.com>") as s:
        yield s


@pytest.fixture
def netns():
    from rkt_core.sys import netns as sys_netns

    path = f"/run/netns/rkt-test-{secrets.token_hex(4)}"
    sys_netns.create(path)
    try:
        yield path
    finally:
        sys_netns.destroy(path)


@pytest.fixture
def world(tmp_path, ca, netns, signer):
    w = World(tmp_path, ca, netns)
    try:
        w.main.add("/hello", _page(("ac-discovery", HELLO, TEMPLATE),
                                   ("ac-discovery-pubkeys", HELLO, "https://example.com/pubkeys.gpg")))
        w.main.add("/", _page(("ac-discovery", "example.com", TEMPLATE),
                              ("ac-discovery-pubkeys", "example.com",
                               "https://other.example/keys/example.gpg")))
        w.main.add("/pubkeys.gpg", signer.export_public())
        w.other.add("/keys/example.gpg", signer.export_public())
        aci = build_aci(tmp_path / "hello.aci", image_manifest(HELLO, "1.0"),
                        files={"hello.txt": b"hello\n"})
        w.publish(signer, HELLO, "1.0", aci)
        w.publish(signer, HELLO, "1.0", aci, url_version="latest")
        yield w
    finally:
        w.close()


def test_trust_prefix_by_discovery_then_fetch_by_name(world, signer):
    code, out, terminal = world.rkt_on_tty("trust", "--prefix", HELLO, answer=b"yes\n")
    fp = signer.fingerprint.lower()
    assert code == 0, terminal
    assert 'key: "https://example.com/pubkeys.gpg"' in terminal
    assert "Are you sure you want to trust this key (yes/no)?" in out
    assert f'Added key for prefix "{HELLO}" at "{world.local}/trustedkeys/prefix.d/{HELLO}/{fp}"' in out
    assert world.key_files() == [f"prefix.d/{HELLO}/{fp}"]
    assert world.main.seen("/hello")[0].path == "/hello?ac-discovery=1"

    out = world.rkt("fetch", f"{HELLO}:1.0", check=0)
    assert out.stdout.startswith("sha512-")
    assert world.images() == [f"{HELLO}:1.0"]
    fetched = [r.path for r in world.main.requests if r.path.startswith("/images/")]
    assert fetched == [f"/images/{HELLO}-1.0-linux-amd64.aci",
                       f"/images/{HELLO}-1.0-linux-amd64.aci.asc"]
    # a second fetch with the default pull policy asks the server again (ETag-less: re-download
    # is allowed), --pull-policy=new uses the store
    count = len(world.main.requests)
    world.rkt("fetch", "--pull-policy=new", f"{HELLO}:1.0", check=0)
    assert len(world.main.requests) == count


def test_no_version_means_latest(world, signer, tmp_path):
    key = tmp_path / "k.asc"
    key.write_bytes(signer.export_public())
    world.rkt("trust", "--prefix", HELLO, "--skip-fingerprint-review", key, check=0)
    world.rkt("fetch", HELLO, check=0)
    assert world.main.seen(f"/images/{HELLO}-latest-linux-amd64.aci")
    from rkt_core.store.imagestore import ImageStore

    [info] = ImageStore(str(world.data)).list_images()
    assert info.name == HELLO and info.latest


def test_trust_keys_from_https_but_never_a_second_key_silently(world, signer, tmp_path):
    world.rkt("--trust-keys-from-https", "trust", "--prefix", HELLO, check=0)
    assert world.key_files() == [f"prefix.d/{HELLO}/{signer.fingerprint.lower()}"]
    with GpgSigner(tmp_path / "new", uid="Intruder <x@example.com>") as intruder:
        world.main.add("/pubkeys.gpg", intruder.export_public())
        out = world.rkt("--trust-keys-from-https", "trust", "--prefix", HELLO, check=254)
        assert "already has a trusted key" in out.stderr
        assert "lack of tty" in out.stderr
        assert world.key_files() == [f"prefix.d/{HELLO}/{signer.fingerprint.lower()}"]


def test_fetch_by_name_discovers_keys_only_with_trust_keys_from_https(world, signer):
    out = world.rkt("fetch", f"{HELLO}:1.0", check=254)  # no tty to ask on
    assert "rkt trust --prefix" in out.stderr
    assert world.images() == [] and world.key_files() == []
    out = world.rkt("--trust-keys-from-https", "fetch", f"{HELLO}:1.0", check=0)
    assert f'Added key for prefix "{HELLO}"' in out.stdout
    assert world.images() == [f"{HELLO}:1.0"]


def test_keys_of_a_parent_prefix_and_from_another_host(world, signer):
    code, out, terminal = world.rkt_on_tty("trust", "--prefix", "example.com/other",
                                           answer=b"yes\n")
    assert code == 0, terminal
    assert 'key: "https://other.example/keys/example.gpg"' in terminal
    assert world.other.seen("/keys/example.gpg")


def _dep(name, version=None, image_id=None):
    dep = {"imageName": name}
    if version:
        dep["labels"] = [{"name": "version", "value": version}]
    if image_id:
        dep["imageID"] = image_id
    return dep


def test_two_levels_of_dependencies_are_fetched_and_render(world, signer, tmp_path):
    key = tmp_path / "k.asc"
    key.write_bytes(signer.export_public())
    world.rkt("trust", "--prefix", "example.com", "--skip-fingerprint-review", key, check=0)
    base = build_aci(tmp_path / "base.aci", image_manifest("example.com/base", "1.0"),
                     files={"etc/base": b"base\n", "etc/shared": b"from base\n"})
    mid = build_aci(tmp_path / "mid.aci", image_manifest(
        "example.com/mid", "1.0", dependencies=[
            _dep("example.com/base", image_id=tar_uncompressed_sha512(base))]),
        files={"etc/mid": b"mid\n", "etc/shared": b"from mid\n"})
    app = build_aci(tmp_path / "app.aci", image_manifest(
        "example.com/app", "1.0", dependencies=[_dep("example.com/mid", "1.0")]),
        files={"etc/app": b"app\n"})
    for name, aci in (("example.com/base", base), ("example.com/mid", mid),
                      ("example.com/app", app)):
        world.publish(signer, name, "1.0", aci)
    # the base image is asked for by ID without a version: discovery uses "latest"
    world.publish(signer, "example.com/base", "1.0", base, url_version="latest")

    world.rkt("fetch", "example.com/app:1.0", check=0)
    assert world.images() == ["example.com/app:1.0", "example.com/base:1.0", "example.com/mid:1.0"]
    out = tmp_path / "rendered"
    world.rkt("image", "render", "--rootfs-only", "example.com/app:1.0", out, check=0)
    assert (out / "etc/app").read_text() == "app\n"
    assert (out / "etc/mid").read_text() == "mid\n"
    assert (out / "etc/base").read_text() == "base\n"
    assert (out / "etc/shared").read_text() == "from mid\n"  # the higher layer wins


def test_a_stored_dependency_is_used_when_the_check_for_a_newer_one_fails(world, tmp_path):
    base = build_aci(tmp_path / "base.aci", image_manifest("down.example/base", "1.0"),
                     files={"etc/base": b"base\n"})
    app = build_aci(tmp_path / "app.aci", image_manifest(
        "example.com/app", "1.0", dependencies=[_dep("down.example/base", "1.0")]))
    world.rkt("--insecure-options=image", "fetch", base, check=0)
    out = world.rkt("--insecure-options=image", "fetch", app, check=0)  # pull policy "update"
    assert ('rkt: warning: dependency "down.example/base" of "example.com/app": discovery '
            'failed for "down.example/base"') in out.stderr
    assert "using the one in the store" in out.stderr
    assert world.images() == ["down.example/base:1.0", "example.com/app:1.0"]
    # without one in the store, the failed discovery is the error it was
    world.rkt("image", "rm", "example.com/app:1.0", "down.example/base:1.0", check=0)
    out = world.rkt("--insecure-options=image", "fetch", app, check=254)
    assert ('\nrkt: dependency "down.example/base" of "example.com/app": discovery failed'
            in out.stderr) and "warning: dependency" not in out.stderr
    assert world.images() == []


def test_dependency_cycles_and_wrong_ids_are_refused_and_leave_nothing(world, signer, tmp_path):
    key = tmp_path / "k.asc"
    key.write_bytes(signer.export_public())
    world.rkt("trust", "--prefix", "example.com", "--skip-fingerprint-review", key, check=0)
    a = build_aci(tmp_path / "a.aci", image_manifest(
        "example.com/cyc-a", "1.0", dependencies=[_dep("example.com/cyc-b", "1.0")]))
    b = build_aci(tmp_path / "b.aci", image_manifest(
        "example.com/cyc-b", "1.0", dependencies=[_dep("example.com/cyc-a", "1.0")]))
    world.publish(signer, "example.com/cyc-a", "1.0", a)
    world.publish(signer, "example.com/cyc-b", "1.0", b)
    out = world.rkt("fetch", "example.com/cyc-a:1.0", check=254)
    assert "dependency cycle" in out.stderr
    assert world.images() == []

    wrong = build_aci(tmp_path / "w.aci", image_manifest(
        "example.com/wrong", "1.0", dependencies=[_dep("example.com/hello", "1.0",
                                                       image_id="sha512-" + "ab" * 64)]))
    world.publish(signer, "example.com/wrong", "1.0", wrong)
    out = world.rkt("fetch", "example.com/wrong:1.0", check=254)
    assert "the manifest asks for sha512-abab" in out.stderr
    assert world.images() == []


@pytest.mark.parametrize("route, kwargs", [
    ("/bad", {"body": b"<meta name='ac-discovery' content='example.com/bad'><<<\x00\xff<meta"}),
    ("/bad", {"body": b"<meta name='ac-discovery' content='" + b"x" * (2 << 20) + b"'>"}),
    ("/bad", {"redirect": "https://example.com/bad?ac-discovery=1"}),
    ("/bad", {"redirect": "http://example.com/bad?ac-discovery=1"}),
    ("/bad", {"status": 500}),
])
def test_hostile_discovery_pages_give_a_clear_error(world, route, kwargs):
    world.main.routes.pop("/")
    world.main.add(route, **kwargs)
    out = world.rkt("fetch", "example.com/bad:1.0", check=254)
    assert out.stderr.startswith('rkt: discovery failed for "example.com/bad"')
    assert world.images() == []


def test_an_image_with_another_name_than_discovered_is_refused(world, signer, tmp_path):
    other = build_aci(tmp_path / "o.aci", image_manifest("example.com/impostor", "1.0"))
    world.publish(signer, HELLO, "1.0", other)
    out = world.rkt("--insecure-options=image", "fetch", f"{HELLO}:1.0", check=254)
    assert 'the manifest names "example.com/impostor"' in out.stderr
    assert world.images() == []


def test_discovery_over_plain_http_only_with_insecure_http(world, signer, tmp_path):
    with TestServer(sock=listen_in_netns(world.netns, "127.0.0.1", 80)) as plain:
        plain.add("/plain", _page(("ac-discovery", "example.com/plain",
                                   "http://example.com/{name}-{version}.{ext}")))
        aci = build_aci(tmp_path / "plain.aci", image_manifest("example.com/plain", "1.0"))
        plain.add("/example.com/plain-1.0.aci", aci.read_bytes())
        world.main.routes.pop("/")
        out = world.rkt("--insecure-options=image", "fetch", "example.com/plain:1.0", check=254)
        assert "discovery failed" in out.stderr and plain.requests == []
        world.rkt("--insecure-options=image,http", "fetch", "example.com/plain:1.0", check=0)
        assert world.main.seen("/plain")  # https was asked first
        assert world.images() == ["example.com/plain:1.0"]


def test_a_template_pointing_at_a_local_file_is_refused(world, tmp_path):
    secret = tmp_path / "secret-1.0.aci"
    build_aci(secret, image_manifest("example.com/local", "1.0"))
    world.main.add("/local", _page(("ac-discovery", "example.com/local",
                                    f"file://{tmp_path}/secret-{{version}}.{{ext}}")))
    out = world.rkt("--insecure-options=image", "fetch", "example.com/local:1.0", check=254)
    assert "unsupported URL scheme" in out.stderr
    assert world.images() == []


# --- the fetcher contract ----------------------------------------------------------------------


class AppcSource(Source):
    """Images named under example.com, found by meta discovery in the world's namespace."""

    def __init__(self, world: World):
        self.world = world
        self.env, self.prefix = world.rkt.env, world.rkt.prefix

    def _publish(self, name: str, data: bytes) -> str:
        self.world.main.add(f"/images/{name}-1.0-linux-amd64.aci", data, etag='"v1"')
        return f"{name}:1.0"

    def image(self) -> str:
        name = "example.com/contract"
        return self._publish(name, good_aci(self.world.base, name))

    def hostile(self, kind: str) -> str:
        name = f"example.com/{kind}"
        if kind == "missing":
            return f"{name}:1.0"
        return self._publish(name, hostile_aci(kind, self.world.base, name))


class TestAppcFetcherContract(FetcherContract):
    fetcher = "appc"

    @pytest.fixture
    def source(self, world):
        return AppcSource(world)
