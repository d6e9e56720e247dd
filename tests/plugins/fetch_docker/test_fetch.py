"""``rkt fetch docker://`` against Debian's docker-registry: every manifest type, the OCI rootfs
rules, the appc mapping, authentication, TLS and caching."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rkt_core.testing.registry import (DELETED, DOCKER_V2, KEPT_FILES, OCI_MANIFEST, TEST_REPO,
                                       USER, PASSWORD, host_goarch, local_env, self_signed)
from rkt_fetch_docker.convert import appc_os_arch

pytestmark = pytest.mark.root


def ref_of(registry, tag="latest"):
    sep = "@" if tag.startswith("sha256:") else ":"
    return f"docker://{registry.address}/{TEST_REPO}{sep}{tag}"


def tree(root: Path) -> dict:
    """path -> (type, mode, uid, gid, content hash or link target, first name of its inode)."""
    result, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            else:
                what = ""
            first = inodes.setdefault(st.st_ino, rel) if not stat.S_ISDIR(st.st_mode) else rel
            result[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                           st.st_gid, what, first)
    return result


@pytest.fixture(scope="module")
def latest_tree(images, tmp_path_factory, rkt_in):
    """The rootfs of ``:latest`` as fetched and extracted by rkt."""
    base = tmp_path_factory.mktemp("latest")
    rkt = rkt_in(base)
    root = rkt.extract(rkt.fetch(ref_of(images)), base / "rootfs")
    yield root, tree(root)


def test_the_rootfs_follows_the_oci_layer_rules(latest_tree):
    root, _ = latest_tree
    for path in DELETED:
        assert not (root / path).exists(), path
    assert os.listdir(root / "opt") == []
    assert os.listdir(root / "var/opq") == ["new"]  # the opaque directory replaced x and y
    for path, content in KEPT_FILES.items():
        assert (root / path).read_bytes() == content, path
    for a, b in (("usr/share/hl/a", "usr/share/hl/b"), ("bin/busybox", "bin/busybox.hardlink")):
        assert (root / a).stat().st_ino == (root / b).stat().st_ino
    secret = (root / "home/user/secret").stat()
    assert (secret.st_uid, secret.st_gid, stat.S_IMODE(secret.st_mode)) == (1000, 1000, 0o640)
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert os.readlink(root / "bin/sh") == "busybox"
    assert os.readlink(root / "dev/stdin") == "/proc/self/fd/0"


MODULES_OF_RKT = """
import json, sys
sys.argv = ["rkt", *sys.argv[1:]]
from rkt_core.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_fetch_into_a_new_store_imports_neither_sqlalchemy_nor_click(images, tmp_path):
    done = subprocess.run([sys.executable, "-c", MODULES_OF_RKT, f"--dir={tmp_path}",
                           "--insecure-options=image,http", "fetch", ref_of(images)],
                          capture_output=True, text=True, check=True, env=local_env())
    key, packages = done.stdout.splitlines()
    assert key.startswith("sha512-"), done.stderr
    assert {"sqlalchemy", "click"}.isdisjoint(json.loads(packages))


def test_the_appc_manifest(rkt, images):
    rkt.fetch(ref_of(images))
    name = f"127.0.0.1_{images.address.split(':')[1]}/{TEST_REPO}"
    manifest = rkt.manifest(f"{name}:latest")
    assert manifest["name"] == name
    assert manifest["labels"] == [{"name": "version", "value": "latest"},
                                  {"name": "os", "value": "linux"},
                                  {"name": "arch", "value": appc_os_arch("linux",
                                                                         host_goarch())[1]}]
    app = manifest["app"]
    assert app["exec"] == ["/bin/sh", "-c", 'echo "$GREETING from $(pwd)"; ls /']
    assert (app["user"], app["group"], app["workingDirectory"]) == ("0", "0", "/app")
    assert app["environment"] == [{"name": "GREETING", "value": "hello"},
                                  {"name": "PATH", "value": "/bin:/usr/bin"}]
    assert [p["name"] for p in app["ports"]] == ["53-udp", "80-tcp"]
    assert app["mountPoints"] == [{"name": "volume-data", "path": "/data"}]
    annotations = {a["name"]: a["value"] for a in manifest["annotations"]}
    body, digest = images.manifest("latest", OCI_MANIFEST)
    assert annotations["appc.io/docker/manifesthash"] == digest
    assert annotations["appc.io/docker/registryurl"] == images.address
    assert annotations["appc.io/docker/repository"] == TEST_REPO
    assert annotations["appc.io/docker/originalname"] == f"{images.address}/{TEST_REPO}:latest"
    assert annotations["author"] == "rkt test"


@pytest.mark.parametrize("tag, user", [("v2s2", "0"), ("v2s1", "0"), ("list", "0"),
                                       ("index", "0"), ("user", "1000"), ("ocuser", "1000")])
def test_every_manifest_type_gives_the_same_rootfs(rkt, images, latest_tree, tmp_path, tag,
                                                   user):
    key = rkt.fetch(ref_of(images, tag))
    assert tree(rkt.extract(key, tmp_path / "rootfs")) == latest_tree[1]
    manifest = rkt.manifest(key)
    assert (manifest["app"]["user"], manifest["app"]["group"]) == (user, user)
    assert {"name": "version", "value": tag} in manifest["labels"]


def test_schema1_annotations(rkt, images):
    annotations = {a["name"]: a["value"]
                   for a in rkt.manifest(rkt.fetch(ref_of(images, "v2s1")))["annotations"]}
    _, digest = images.manifest("v2s1", "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert annotations["appc.io/docker/manifesthash"] == digest  # the JWS payload's digest
    assert annotations["appc.io/docker/tag"] == "v2s1"
    assert len(annotations["appc.io/docker/imageid"]) == 64
    assert annotations["authors"] == "rkt test"


def test_pull_by_digest(rkt, images, latest_tree, tmp_path):
    _, digest = images.manifest("v2s2", DOCKER_V2)
    key = rkt.fetch(ref_of(images, digest))
    assert tree(rkt.extract(key, tmp_path / "rootfs")) == latest_tree[1]
    assert not any(label["name"] == "version" for label in rkt.manifest(key)["labels"])


def test_unknown_tag_and_digest(rkt, images):
    for tag in ("nosuchtag", "sha256:" + "0" * 64):
        result = rkt("fetch", ref_of(images, tag))
        assert result.returncode == 254
        assert "MANIFEST_UNKNOWN" in result.stderr and "HTTP 404" in result.stderr
    assert rkt.image_keys() == []


def test_docker_images_need_insecure_image(rkt, images):
    log = len(images.log())
    result = rkt("fetch", ref_of(images), insecure="http")
    assert result.returncode == 254
    assert "rkt: signature verification for docker images is not supported" in result.stderr
    assert "--insecure-options=image" in result.stderr
    assert "rkt-python" not in images.log()[log:]  # refused before any request


def test_plain_http_needs_insecure_http(rkt, images):
    result = rkt("fetch", ref_of(images), insecure="image")
    assert result.returncode == 254
    assert f"cannot use the Docker registry {images.address}" in result.stderr
    assert "--insecure-options=http" in result.stderr
    assert "--insecure-options=tls" not in result.stderr  # TLS would not help


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_authentication(rkt, start_registry, mode):
    registry = start_registry(mode)
    result = rkt("fetch", ref_of(registry))
    assert result.returncode == 254
    assert "dockerAuth" in result.stderr
    rkt.docker_auth(registry.address, USER, "wrong")
    result = rkt("fetch", ref_of(registry))
    assert result.returncode == 254 and f'user "{USER}"' in result.stderr
    rkt.docker_auth(registry.address, USER, PASSWORD)
    rkt.fetch(ref_of(registry))
    rkt.fetch(ref_of(registry, "list"))
    assert len(rkt.image_keys()) == 2


def test_token_scope_and_credentials_sent_to_the_token_server(rkt, start_registry):
    registry = start_registry("token", token_field="access_token")
    rkt.docker_auth(registry.address, USER, PASSWORD)
    rkt.fetch(ref_of(registry, "v2s1"))
    scopes = {scope for query, user in registry.token_server.requests if user == USER
              for scope in query["scope"]}
    assert scopes == {f"repository:{TEST_REPO}:pull"}
    assert all(query["service"] == ["test-registry"] for query, _ in
               registry.token_server.requests)


def test_anonymous_tokens(rkt, start_registry):
    registry = start_registry("token", anonymous=True)
    rkt.fetch(ref_of(registry))
    assert [user for _, user in registry.token_server.requests] == [None]


@pytest.mark.parametrize("mode", ["noauth", "token"])
def test_tls(rkt, start_registry, mode):
    registry = start_registry(mode, tls=True)
    rkt.docker_auth(registry.address, USER, PASSWORD)
    result = rkt("fetch", ref_of(registry), insecure="image")
    assert result.returncode == 254
    assert "certificate verify failed" in result.stderr
    assert "--insecure-options=tls" in result.stderr
    result = rkt("fetch", ref_of(registry), insecure="image,tls")
    assert result.returncode == 0, result.stderr
    assert "InsecureRequestWarning" not in result.stderr


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_certificates_are_checked_against_the_ca_bundle_of_every_fetch(rkt, start_registry,
                                                                          variable):
    """The registry's certificate is checked like an https image's (``SSL_CERT_FILE`` or
    ``REQUESTS_CA_BUNDLE``, else the system's CAs), not against requests' own bundle."""
    import subprocess

    registry = start_registry(tls=True)
    env = {k: v for k, v in rkt.env.items()
           if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env[variable] = str(registry.base / "cert.pem")
    result = subprocess.run(rkt.argv("fetch", ref_of(registry), insecure="image"), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_credentials_never_go_to_a_plain_http_token_realm(rkt, start_registry):
    registry = start_registry("token", tls=True, token_tls=False)
    rkt.docker_auth(registry.address, USER, PASSWORD)
    result = rkt("fetch", ref_of(registry), insecure="image,tls")
    assert result.returncode == 254
    assert "refusing the token realm 'http://127.0.0.1:" in result.stderr
    assert registry.token_server.requests == []


# --- caching ----------------------------------------------------------------------------------


def blobs_of(registry, tag="latest"):
    """The config and layer digests of an OCI tag."""
    manifest = json.loads(registry.manifest(tag, OCI_MANIFEST)[0])
    return manifest["config"]["digest"], [layer["digest"] for layer in manifest["layers"]]


def test_an_unchanged_tag_downloads_only_its_manifest(rkt, start_registry):
    registry = start_registry()
    key = rkt.fetch(ref_of(registry))
    config, layers = blobs_of(registry)
    for digest in [config, *layers]:
        registry.blob_path(digest).unlink()  # any blob request would now fail
    assert rkt.fetch(ref_of(registry)) == key
    assert rkt("run", "--stage1-name=fly", "--net=host", ref_of(registry), "--exec",
               "/bin/true").returncode == 0  # run's pull policy "new": the store's copy


def test_layers_shared_between_tags_come_from_the_blob_cache(rkt, start_registry):
    registry = start_registry()
    rkt.fetch(ref_of(registry))
    for digest in blobs_of(registry)[1]:
        registry.blob_path(digest).unlink()
    rkt.fetch(ref_of(registry, "v2s2"))
    assert len(rkt.image_keys()) == 2


def test_a_stored_digest_needs_no_registry(rkt, images, start_registry):
    registry = start_registry()
    ref = ref_of(registry, images.manifest("v2s2", DOCKER_V2)[1])
    key = rkt.fetch(ref)
    registry.close()
    assert rkt.fetch(ref) == key


def test_a_damaged_cached_blob_is_downloaded_again(rkt, images):
    rkt.fetch(ref_of(images))
    first = sorted(rkt.blob_cache.iterdir())[0]
    first.write_bytes(b"damaged")
    result = rkt("--debug", "fetch", ref_of(images, "v2s2"))
    assert result.returncode == 0, result.stderr
    assert f"cached blob {first.name.replace('-', ':', 1)}: digest mismatch" in result.stderr
    assert len(rkt.image_keys()) == 2


def test_the_blob_cache_is_bounded(rkt, images, tmp_path):
    from rkt_fetch_docker.blobcache import BlobCache

    rkt.fetch(ref_of(images))
    cached = sorted(rkt.blob_cache.iterdir(), key=lambda p: p.stat().st_size)
    BlobCache(str(rkt.blob_cache), max_bytes=cached[-1].stat().st_size).prune()
    assert len(list(rkt.blob_cache.iterdir())) < len(cached)


def test_concurrent_fetches_of_the_same_image(rkt, images):
    import subprocess

    processes = [subprocess.Popen(rkt.argv("fetch", "--full", ref_of(images, tag)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=rkt.env)
                 for tag in ("latest", "latest", "v2s2")]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    assert rkt.tmp_leftovers() == []


# --- redirects --------------------------------------------------------------------------------


class Redirector:
    """An HTTP(S) server on 127.0.0.1 answering every GET with a 307 to the same path on
    ``target``; ``authorizations`` records the Authorization header of each request."""

    def __init__(self, target: str, tls_dir=None):
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.authorizations = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.headers.get("Authorization"))
                self.send_response(307)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_dir is not None:
            self_signed(tls_dir / "key.pem", tls_dir / "cert.pem", "redirector")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.address = f"127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def redirector():
    started = []

    def start(target, tls_dir=None):
        started.append(Redirector(target, tls_dir))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_redirects_are_followed(rkt, images, redirector):
    front = redirector(f"http://localhost:{images.address.split(':')[1]}")
    key = rkt.fetch(f"docker://{front.address}/{TEST_REPO}:v2s2")
    assert rkt.manifest(key)["name"] == f"127.0.0.1_{front.address.split(':')[1]}/{TEST_REPO}"
    assert len(front.authorizations) > 3  # /v2/, manifest, config and layers all came through it


def test_a_redirect_to_plain_http_needs_insecure_http(rkt, images, redirector, tmp_path):
    front = redirector(f"http://{images.address}", tls_dir=tmp_path)
    ref = f"docker://{front.address}/{TEST_REPO}"
    result = rkt("fetch", ref, insecure="image,tls")
    assert result.returncode == 254
    assert (f"refusing the redirect from https to plain http (http://{images.address}/v2/)"
            in result.stderr)
    assert "--insecure-options=http" in result.stderr
    rkt.fetch(ref, insecure="image,tls,http")


def test_a_token_refused_later_is_renewed(start_registry):
    """A token that stops working (it expired during a long pull) is replaced on the next
    request instead of failing the pull."""
    from rkt_fetch_docker.client import Registry as Client
    from rkt_fetch_docker.reference import parse

    registry = start_registry("token")
    with Client(parse(ref_of(registry)), credentials=(USER, PASSWORD),
                allow_http=True) as client:
        client.connect()
        body, _, _ = client.get_manifest("v2s2", (DOCKER_V2,))
        assert len(registry.token_server.requests) == 1
        client._authorization = "Bearer expired"
        config = json.loads(body)["config"]
        data = client.get_blob(config["digest"], 1 << 20, "config")
        assert len(data) == config["size"]
        assert len(registry.token_server.requests) == 2
