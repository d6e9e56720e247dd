"""A local Docker Registry v2 for tests, and Docker/OCI test images built from busybox.

Debian's ``docker-registry`` (distribution 2.8) listens on 127.0.0.1 on a free port, with no
authentication, htpasswd (Basic) or token (Bearer) authentication, over http or https (a
self-signed certificate). In token mode a token server runs in a thread of the test process,
also on 127.0.0.1. Test images are built with ``umoci`` from the host's ``busybox-static`` and
pushed with ``skopeo``; hand-made images (hostile layers, wrong digests) with :meth:`push_image`.
Everything runs as root (umoci keeps ownership)::

    from rkt_core.testing.registry import Registry, build_test_image

    layout = build_test_image(tmp_path / "oci")
    with Registry("token") as registry:      # its own temporary directory, removed on close
        registry.push_test_images(layout)
        ref = f"docker://{registry.address}/{TEST_REPO}:latest"

:meth:`Registry.close` stops every process and thread the registry started and removes its
directory; the registry process also dies with the process that started it. Nothing here talks
to anything but 127.0.0.1: proxy settings of the environment are ignored.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from ..sys import proc
from .aci import BUSYBOX
from .runner import local_env

USER, PASSWORD = "testuser", "testpassword"
TEST_REPO = "test/busybox"
SERVICE, ISSUER = "test-registry", "test-token-issuer"
START_TIMEOUT = 30  # seconds for the registry to answer
MODES = ("noauth", "htpasswd", "token")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}

#: What :func:`build_test_image` puts in the squashed rootfs besides busybox (path: content),
#: and what it deletes in upper layers.
KEPT_FILES = {"etc/motd": b"welcome\n", "var/opq/new": b"upper-new\n",
              "usr/share/hl/a": b"hardlinked\n", "app/hello.txt": b"hello from app\n",
              "home/user/secret": b"secret\n"}
DELETED = ("etc/todelete.txt", "opt/olddir", "var/opq/x", "var/opq/y")


def host_goarch() -> str:
    """This machine's architecture as registries name it (``amd64``, ``arm64``...)."""
    return _GOARCH.get(platform.machine(), platform.machine())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In a child before exec: be killed (SIGTERM) when the thread that forked it ends."""
    proc.set_parent_death_signal(signal.SIGTERM)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies, no .netrc
    return session


def _run(*argv, **kwargs) -> str:
    kwargs.setdefault("env", local_env())
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return result.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- certificates and tokens ------------------------------------------------------------------


def self_signed(key_path: Path, cert_path: Path, name: str) -> None:
    """An RSA key and a self-signed certificate for ``name`` and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class TokenServer:
    """A registry token server (``GET /token?service=&scope=``) on 127.0.0.1, in a thread.

    Tokens are RS256 JWTs with the certificate in ``x5c``; they grant whatever scope is asked.
    Requests need Basic ``testuser:testpassword`` unless ``anonymous``. ``requests`` records
    ``(query, user)`` of each request; ``token_field`` names the JSON field of the token
    (``"token"``, ``"access_token"`` or ``"both"``).
    """

    def __init__(self, key_path: Path, cert_path: Path, tls: bool = False,
                 anonymous: bool = False, token_field: str = "both"):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self._key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.anonymous = anonymous
        self.token_field = token_field
        self.requests: list[tuple[dict, str | None]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_port}/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and join the thread."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def token(self, user: str | None, audience: str, scopes: list[str]) -> str:
        """A signed token granting ``scopes`` (``repository:NAME:ACTIONS``)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": ISSUER, "sub": user or "", "aud": audience, "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode())).encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + _b64url(signature)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                if url.path != "/token":
                    self.send_error(404)
                    return
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    user = name if (name, password) == (USER, PASSWORD) else None
                query = parse_qs(url.query)
                server.requests.append((query, user))
                if user is None and not server.anonymous:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="token"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = server.token(user, query.get("service", [""])[0],
                                     query.get("scope", []))
                fields = ("token", "access_token") if server.token_field == "both" \
                    else (server.token_field,)
                body = json.dumps({**{f: token for f in fields}, "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


# --- the registry ---------------------------------------------------------------------------


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<free port> (see the module docstring).

    ``content`` is another registry's :attr:`storage`: this one starts with a copy of it (the
    images pushed there). The token server speaks https if ``token_tls`` (default: ``tls``);
    ``token_options`` go to :class:`TokenServer`. ``port`` fixes the port (default: a free
    one).
    """

    def __init__(self, mode: str = "noauth", tls: bool = False, content: Path | None = None,
                 token_tls: bool | None = None, port: int | None = None, **token_options):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if token_options and mode != "token":
            raise ValueError(f"token server options in {mode} mode: {sorted(token_options)}")
        self.mode = mode
        self.tls = tls
        self.token_server: TokenServer | None = None
        self.process: subprocess.Popen | None = None
        self.address = ""
        self._token = ""
        self._http = _session()
        self.base = Path(tempfile.mkdtemp(prefix="rkt-test-registry-"))
        self.storage = self.base / "storage"
        try:
            if content is not None:
                shutil.copytree(content, self.storage, symlinks=True)
            self._start(token_tls, token_options, port)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def _verify(self) -> str | bool:
        return str(self.base / "cert.pem") if self.tls else True

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) the registry wants, None in noauth mode."""
        return None if self.mode == "noauth" else (USER, PASSWORD)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the registry and the token server; remove the directory."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.token_server is not None:
            self.token_server.close()
            self.token_server = None
        self._http.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        """What the registry wrote to its log so far."""
        path = self.base / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- starting ---------------------------------------------------------------------------

    def _start(self, token_tls: bool | None, token_options: dict, port: int | None) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.tls or self.mode == "token":
            self_signed(self.base / "key.pem", self.base / "cert.pem", ISSUER)
        if self.mode == "htpasswd":
            (self.base / "htpasswd").write_text(_run("htpasswd", "-Bbn", USER, PASSWORD))
            auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {self.base}/htpasswd\n"
        elif self.mode == "token":
            self.token_server = TokenServer(self.base / "key.pem", self.base / "cert.pem",
                                            tls=self.tls if token_tls is None else token_tls,
                                            **token_options)
            auth = (f"auth:\n  token:\n    realm: {self.token_server.url}\n"
                    f"    service: {SERVICE}\n    issuer: {ISSUER}\n"
                    f"    rootcertbundle: {self.base}/cert.pem\n")
        for _ in range(1 if port else 3):  # a free port may be taken before the registry binds
            self.address = f"127.0.0.1:{port or free_port()}"
            config = self.base / "config.yml"
            config.write_text(self._config(auth))
            with open(self.base / "registry.log", "ab") as log:
                self.process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                                stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=local_env(),
                                                preexec_fn=_die_with_parent)
            if self._wait_up():
                return
            self.process.wait()
            self.process = None
        raise RuntimeError(f"docker-registry did not start: {self.log()[-2000:]}")

    def _config(self, auth: str) -> str:
        tls = (f"  tls:\n    certificate: {self.base}/cert.pem\n    key: {self.base}/key.pem\n"
               if self.tls else "")
        return (f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: {self.address}\n  secret: test-only-secret\n{tls}"
                "compatibility:\n  schema1:\n    enabled: true\n" + auth)

    def _wait_up(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if self._http.get(self.url + "/v2/", verify=self._verify,
                                  timeout=5).status_code in (200, 401):
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    # --- talking to it ------------------------------------------------------------------------

    def request(self, method: str, path: str, repo: str = TEST_REPO, **kwargs):
        """An HTTP request to the registry (``path`` relative to its URL, or absolute) with
        whatever authentication it asks for (push rights in token mode)."""
        url = urljoin(self.url + "/", path.lstrip("/")) if "://" not in path else path
        headers = kwargs.pop("headers", {})
        for _ in range(2):
            if self.mode == "htpasswd":
                kwargs["auth"] = (USER, PASSWORD)
            elif self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            response = self._http.request(method, url, headers=headers, verify=self._verify,
                                          timeout=60, **kwargs)
            if response.status_code != 401 or self.mode != "token":
                return response
            self._token = self.token_server.token(USER, SERVICE,
                                                  [f"repository:{repo}:pull,push"])
        return response

    def manifest(self, reference: str, accept: str, repo: str = TEST_REPO) -> tuple[bytes, str]:
        """(body, Docker-Content-Digest) of a manifest, asked with one Accept type."""
        response = self.request("GET", f"/v2/{repo}/manifests/{reference}", repo,
                                headers={"Accept": accept})
        response.raise_for_status()
        return response.content, response.headers["Docker-Content-Digest"]

    def put_manifest(self, tag: str, body: bytes, media_type: str, repo: str = TEST_REPO) -> str:
        """Push a manifest (or list) under ``tag``; its digest."""
        response = self.request("PUT", f"/v2/{repo}/manifests/{tag}", repo, data=body,
                                headers={"Content-Type": media_type})
        if response.status_code != 201:
            raise RuntimeError(f"PUT manifest {tag}: HTTP {response.status_code} {response.text}")
        return response.headers["Docker-Content-Digest"]

    def push_blob(self, data: bytes, repo: str = TEST_REPO) -> str:
        """Upload a blob (no questions asked about its content); its digest."""
        response = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo)
        if response.status_code != 202:
            raise RuntimeError(f"blob upload: HTTP {response.status_code} {response.text}")
        location = urljoin(self.url + "/", response.headers["Location"])
        sep = "&" if "?" in location else "?"
        response = self.request("PUT", f"{location}{sep}digest={digest(data)}", repo, data=data,
                                headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 201:
            raise RuntimeError(f"blob upload: HTTP {response.status_code} {response.text}")
        return digest(data)

    def blob_path(self, blob_digest: str) -> Path:
        """The file holding a blob in the registry's storage (to tamper with it)."""
        hex_ = blob_digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def push_image(self, tag: str, layers: list[bytes], config: dict | None = None,
                   repo: str = TEST_REPO, oci: bool = True, diff_ids: list[str] | None = None,
                   compress: bool = True) -> str:
        """Push an image made of plain tar ``layers`` (gzipped unless not ``compress``) and the
        container ``config``; ``diff_ids`` replaces the true ones. Returns the manifest
        digest."""
        blobs = [gzip.compress(layer, mtime=0) if compress else layer for layer in layers]
        image_config = {"architecture": host_goarch(), "os": "linux",
                        "config": config if config is not None else {},
                        "rootfs": {"type": "layers",
                                   "diff_ids": diff_ids or [digest(layer) for layer in layers]}}
        config_bytes = json.dumps(image_config).encode()
        layer_type = OCI_LAYER if oci else DOCKER_LAYER
        if not compress:
            layer_type = layer_type.removesuffix("+gzip").replace(".tar.gzip", ".tar")
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_V2,
                    "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
                               "digest": self.push_blob(config_bytes, repo),
                               "size": len(config_bytes)},
                    "layers": [{"mediaType": layer_type, "digest": self.push_blob(blob, repo),
                                "size": len(blob)} for blob in blobs]}
        return self.put_manifest(tag, json.dumps(manifest).encode(), manifest["mediaType"], repo)

    def push_list(self, tag: str, entries: list[tuple[str, str]], oci: bool = False,
                  repo: str = TEST_REPO) -> str:
        """Push a manifest list (``oci``: an OCI index) whose entries are ``(tag, arch)`` of
        images already pushed (for ``linux``); returns its digest."""
        manifests = []
        for source, arch in entries:
            accept = OCI_MANIFEST if oci else DOCKER_V2
            body, manifest_digest = self.manifest(source, accept, repo)
            manifests.append({"mediaType": accept, "size": len(body), "digest": manifest_digest,
                              "platform": {"architecture": arch, "os": "linux"}})
        media_type = OCI_INDEX if oci else DOCKER_LIST
        document = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
        return self.put_manifest(tag, json.dumps(document).encode(), media_type, repo)

    def push_test_images(self, layout: Path, repo: str = TEST_REPO) -> None:
        """Push the images of :func:`build_test_image`: ``latest`` (OCI), ``v2s2``, ``v2s1``
        (signed schema1), ``user`` (v2s2 with ``User 1000:1000``), ``ocuser`` (OCI, same),
        ``list`` (a Docker manifest list) and ``index`` (an OCI index): their entry for this
        machine is the plain image, the other one (s390x, or amd64 on s390x) is the user
        image."""
        policy = self.base / "policy.json"
        policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        creds = [f"--dest-creds={USER}:{PASSWORD}"] if self.credentials else []
        for source, tag, form in (("busybox", "latest", []), ("busybox", "v2s2", ["v2s2"]),
                                  ("busybox", "v2s1", ["v2s1"]), ("busybox-user", "user", ["v2s2"]),
                                  ("busybox-user", "ocuser", [])):
            _run("skopeo", f"--policy={policy}", "copy", "--quiet", "--dest-tls-verify=false",
                 *creds, *[f"--format={f}" for f in form], f"oci:{layout}:{source}",
                 f"docker://{self.address}/{repo}:{tag}")
        other = "amd64" if host_goarch() == "s390x" else "s390x"
        self.push_list("list", [("user", other), ("v2s2", host_goarch())], repo=repo)
        self.push_list("index", [("ocuser", other), ("latest", host_goarch())], oci=True,
                       repo=repo)


# --- test images ------------------------------------------------------------------------------


def layer_tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A plain tar of ``entries``: TarInfo headers (content-less) or (name, content) files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size, info.mode, info.mtime = len(entry[1]), 0o644, 1
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755,
              linkname: str = "") -> tarfile.TarInfo:
    """A content-less tar header (directory by default, or symlink, hard link, whiteout...)."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, linkname, 1
    return info


def build_test_image(layout: Path) -> Path:
    """An OCI layout at ``layout`` with the tags ``busybox`` and ``busybox-user``: three layers
    over busybox (needs root: ownership is kept).

    Layer 1: ``/bin/busybox``, applet symlinks, a hard link ``bin/busybox.hardlink``,
    ``etc/passwd``/``group``, files deleted later (:data:`DELETED`), ``home/user/secret``
    (1000:1000, 0640), ``tmp`` (1777), ``app/hello.txt``, ``data/``. Layer 2 (umoci): the
    whiteouts ``etc/.wh.todelete.txt`` and ``opt/.wh.olddir``, and ``etc/motd``. Layer 3 (by
    hand): the opaque ``var/opq/.wh..wh..opq`` with ``var/opq/new``, and ``usr/share/hl/a`` with
    its hard link ``b``. Config: Entrypoint ``/bin/sh -c``, Cmd printing ``$GREETING from
    $(pwd)`` then ``ls /``, Env ``GREETING=hello``, WorkingDir ``/app``, ports 80/tcp and 53/udp,
    volume ``/data``; ``busybox-user`` adds ``User 1000:1000``.
    """
    layout = Path(layout)
    bundle = layout.parent / (layout.name + ".bundle")
    image = f"{layout}:busybox"
    _run("umoci", "init", "--layout", layout)
    _run("umoci", "new", "--image", image)
    _run("umoci", "unpack", "--image", image, bundle)
    root = bundle / "rootfs"
    try:
        for d in ("bin", "etc", "app", "data", "tmp", "opt/olddir", "var/opq", "home/user"):
            (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "tmp", 0o1777)
        shutil.copy2(BUSYBOX, root / "bin/busybox")
        for applet in ("sh", "ls", "cat", "echo", "env", "id", "pwd", "test", "grep", "stat",
                       "true", "sleep"):
            (root / "bin" / applet).symlink_to("busybox")
        os.link(root / "bin/busybox", root / "bin/busybox.hardlink")
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "user:x:1000:1000:user:/home/user:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\nuser:x:1000:\n")
        (root / "etc/todelete.txt").write_text("delete me\n")
        (root / "opt/olddir/a").write_text("a\n")
        (root / "opt/olddir/b").write_text("b\n")
        (root / "var/opq/x").write_text("lower-x\n")
        (root / "var/opq/y").write_text("lower-y\n")
        (root / "home/user/secret").write_bytes(KEPT_FILES["home/user/secret"])
        os.chmod(root / "home/user/secret", 0o640)
        for path in (root / "home/user", root / "home/user/secret"):
            os.chown(path, 1000, 1000)
        (root / "app/hello.txt").write_bytes(KEPT_FILES["app/hello.txt"])
        _run("umoci", "repack", "--refresh-bundle", "--history.created_by=layer1: busybox",
             "--image", image, bundle)
        (root / "etc/todelete.txt").unlink()
        shutil.rmtree(root / "opt/olddir")
        (root / "etc/motd").write_bytes(KEPT_FILES["etc/motd"])
        _run("umoci", "repack", "--refresh-bundle", "--history.created_by=layer2: whiteouts",
             "--image", image, bundle)
    finally:
        shutil.rmtree(bundle)
    layer3 = layout.parent / (layout.name + ".layer3.tar")
    layer3.write_bytes(layer_tar([
        tar_entry("var/"), tar_entry("var/opq/"),
        tar_entry("var/opq/.wh..wh..opq", tarfile.REGTYPE),
        ("var/opq/new", KEPT_FILES["var/opq/new"]),
        tar_entry("usr/"), tar_entry("usr/share/"), tar_entry("usr/share/hl/"),
        ("usr/share/hl/a", KEPT_FILES["usr/share/hl/a"]),
        tar_entry("usr/share/hl/b", tarfile.LNKTYPE, 0o644, "usr/share/hl/a")]))
    try:
        _run("umoci", "raw", "add-layer", "--history.created_by=layer3: opaque dir, hard links",
             "--image", image, layer3)
    finally:
        layer3.unlink()
    _run("umoci", "config", "--image", image, "--config.entrypoint=/bin/sh",
         "--config.entrypoint=-c", '--config.cmd=echo "$GREETING from $(pwd)"; ls /',
         "--config.env=GREETING=hello", "--config.env=PATH=/bin:/usr/bin",
         "--config.workingdir=/app", "--config.exposedports=80/tcp",
         "--config.exposedports=53/udp", "--config.volume=/data",
         "--config.label=org.example.test=yes", "--author=rkt test", "--os=linux",
         f"--architecture={host_goarch()}")
    _run("umoci", "config", "--image", image, "--tag=busybox-user", "--config.user=1000:1000")
    return layout
