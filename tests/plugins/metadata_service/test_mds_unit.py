"""The metadata service in this process, on the loopback and a unix socket in a temporary
directory (no root needed): what apps get, with appc v0.7.4's wire details; who may read what;
registration through rkt's client; HMAC signatures; hostile requests."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import socket
import threading
import time
import uuid as uuidlib
from urllib.parse import quote, urlencode

import pytest

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.appc import PodManifest
from rkt_metadata_service import client, plugin
from rkt_metadata_service.api import MetadataHandler
from rkt_metadata_service.registry import Registry, RegisteredPod, Signer
from rkt_metadata_service.server import Service, registration_socket

IMAGE_ID = "sha512-" + "ab" * 32
FLAVOR = {"Metadata-Flavor": "AppContainer"}
KEY = bytes(range(64))


def pod_manifest(apps=("web",)) -> bytes:
    return json.dumps({
        "acVersion": "0.7.4", "acKind": "PodManifest",
        "apps": [{"name": app,
                  "image": {"name": f"example.com/{app}", "id": IMAGE_ID},
                  "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
                  "annotations": [{"name": "authors", "value": "the pod wins"},
                                  {"name": "example.com/extra", "value": "from the pod"}]}
                 for app in apps],
        "annotations": [{"name": "example.com/a", "value": "1"},
                        {"name": "example.com/b/c", "value": "two words"}],
    }).encode()


def image_manifest(app="web") -> bytes:
    return json.dumps({
        "acKind": "ImageManifest", "acVersion": "0.7.4", "name": f"example.com/{app}",
        "annotations": [{"name": "authors", "value": "the image"},
                        {"name": "created", "value": "2015-12-09T10:00:00Z"}],
    }, indent=1).encode()


class FakePod:
    """What the client reads of a pod: a directory with ``pod`` and ``appsinfo``, locked as a
    running pod's is (until :meth:`exit`)."""

    def __init__(self, path, apps=("web",)):
        self.uuid = str(uuidlib.uuid4())
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self.lock_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        with open(self.file("pod"), "wb") as f:
            f.write(pod_manifest(apps))
        for app in apps:
            os.makedirs(self.file("appsinfo", app))
            with open(self.file("appsinfo", app, "manifest"), "wb") as f:
                f.write(image_manifest(app))

    def exit(self):
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def manifest_json(self):
        with open(self.file("pod"), "rb") as f:
            return f.read()

    def manifest(self):
        return PodManifest.from_json(self.manifest_json())


class Options:
    netns = ""


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv(client.SOCKET_ENV, str(tmp_path / "mds.sock"))
    public = socket.socket()
    public.bind(("127.0.0.1", 0))
    public.listen()
    svc = Service(public.getsockname()[1], Signer(KEY), registrar_uid=os.getuid())
    registration, owned = registration_socket(str(tmp_path / "mds.sock"))
    assert owned and oct(os.stat(tmp_path / "mds.sock").st_mode & 0o777) == "0o600"
    from rkt_metadata_service.api import RegistrationHandler

    svc.add_listener(registration, RegistrationHandler, name="registration")
    svc.host = svc.add_listener(public, MetadataHandler)
    thread = threading.Thread(target=svc.run)
    thread.start()
    yield svc
    svc.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.fixture
def make_pod(tmp_path):
    """Fake pods, which exit when the test ends."""
    made = []

    def make(name="pod"):
        made.append(FakePod(tmp_path / name))
        return made[-1]

    yield make
    for pod in made:
        pod.exit()


@pytest.fixture
def pod(make_pod):
    return make_pod()


def call(port, method, path, body=None, headers=FLAVOR):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        reply = connection.getresponse()
        return reply.status, reply.read(), reply.getheader("Content-Type")
    finally:
        connection.close()


class Api:
    """The metadata API of one pod, as its apps call it."""

    def __init__(self, url):
        self.port = int(url.split(":")[2].split("/")[0])
        self.base = "/" + url.split("/", 3)[3] + "/acMetadata/v1"

    def get(self, path, headers=FLAVOR):
        return call(self.port, "GET", self.base + path, headers=headers)

    def post(self, path, form, headers=FLAVOR):
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        return call(self.port, "POST", self.base + path, urlencode(form).encode(), headers)


@pytest.fixture
def api(service, pod):
    url = client.register(pod, Options())
    assert url.startswith(f"http://127.0.0.1:{service.port}/")
    return Api(url)


# --- what an app gets -------------------------------------------------------------------------


def test_pod_uuid_and_manifest(api, pod):
    assert api.get("/pod/uuid") == (200, pod.uuid.encode(), "text/plain; charset=us-ascii")
    assert api.get("/pod/manifest") == (200, pod.manifest_json(), "application/json")


def test_pod_annotations_as_v0_7_4_lists_them(api):
    status, body, _ = api.get("/pod/annotations/")
    assert (status, body) == (200, b"example.com/a\nexample.com/b/c\n")
    assert api.get("/pod/annotations/example.com/a")[:2] == (200, b"1")
    assert api.get("/pod/annotations/example.com%2Fb%2Fc")[:2] == (200, b"two words")
    assert api.get("/pod/annotations/example.com/missing")[0] == 404
    assert api.get("/pod/annotations/Not_An-Identifier!")[0] == 400
    assert api.get("/pod/annotations")[0] == 404  # the listing is at .../annotations/


def test_app_annotations_merge_the_images_with_the_pods(api):
    status, body, _ = api.get("/apps/web/annotations/")
    assert (status, body) == (200, b"authors\ncreated\nexample.com/extra\n")
    assert api.get("/apps/web/annotations/authors")[:2] == (200, b"the pod wins")
    assert api.get("/apps/web/annotations/created")[:2] == (200, b"2015-12-09T10:00:00Z")
    assert api.get("/apps/web/annotations/example.com/extra")[:2] == (200, b"from the pod")
    assert api.get("/apps/web/annotations/nope")[0] == 404


def test_app_image_manifest_and_id(api):
    assert api.get("/apps/web/image/manifest") == (200, image_manifest(), "application/json")
    assert api.get("/apps/web/image/id")[:2] == (200, IMAGE_ID.encode())  # no newline
    assert api.get("/apps/other/image/id")[0] == 404
    assert api.get("/apps/Bad_Name/image/id")[0] == 400


def test_sign_and_verify(api, pod):
    status, signature, _ = api.post("/pod/hmac/sign", {"content": "Old MacDonald Had A Farm"})
    assert status == 200
    expected = hmac.new(KEY, uuidlib.UUID(pod.uuid).bytes + b"Old MacDonald Had A Farm",
                        hashlib.sha512).digest()
    assert base64.b64decode(signature, validate=True) == expected
    good = {"content": "Old MacDonald Had A Farm", "uuid": pod.uuid, "signature": signature}
    assert api.post("/pod/hmac/verify", good)[0] == 200
    assert api.post("/pod/hmac/verify", {**good, "content": "Old MacDonald Had A Cow"})[0] == 403
    assert api.post("/pod/hmac/verify", {**good, "uuid": str(uuidlib.uuid4())})[0] == 403
    assert api.post("/pod/hmac/verify", {**good, "signature": "not base64!"})[0] == 400
    assert api.post("/pod/hmac/verify", {**good, "uuid": "nope"})[0] == 400
    assert api.post("/pod/hmac/verify", {**good, "content": ""})[0] == 400
    assert api.post("/pod/hmac/sign", {"content": ""})[0] == 400


def test_binary_content_is_signed_byte_for_byte(api, pod):
    content = bytes(range(256))
    body = ("content=" + quote(content)).encode()
    headers = {**FLAVOR, "Content-Type": "application/x-www-form-urlencoded"}
    status, signature, _ = call(api.port, "POST", api.base + "/pod/hmac/sign", body, headers)
    assert status == 200
    assert base64.b64decode(signature) == hmac.new(
        KEY, uuidlib.UUID(pod.uuid).bytes + content, hashlib.sha512).digest()


def test_a_signature_verifies_for_another_pod(service, api, pod, make_pod):
    other = Api(client.register(make_pod("other"), Options()))
    signature = api.post("/pod/hmac/sign", {"content": "hello"})[1]
    form = {"content": "hello", "uuid": pod.uuid, "signature": signature}
    assert other.post("/pod/hmac/verify", form)[0] == 200


# --- who may read what ------------------------------------------------------------------------


def test_a_wrong_token_gets_401_everywhere(api):
    stranger = Api(f"http://127.0.0.1:{api.port}/" + "0" * 32)
    for path in ("/pod/uuid", "/pod/manifest", "/pod/annotations/", "/apps/web/image/id"):
        assert stranger.get(path)[0] == 401, path
    assert stranger.post("/pod/hmac/sign", {"content": "x"})[0] == 401


def test_the_metadata_flavor_header_is_required(api):
    assert api.get("/pod/uuid", headers={})[0] == 400
    assert api.get("/pod/uuid", headers={"Metadata-Flavor": "Google"})[0] == 400


def test_a_token_is_only_good_on_its_pods_listener(service, api, pod, make_pod):
    """A pod registered with its own namespace is served only there: here, a second loopback
    listener stands in for that namespace's."""
    own = socket.socket()
    own.bind(("127.0.0.1", 0))
    own.listen()
    other = make_pod("other")
    url = client.register(other, Options())
    token = url.rsplit("/", 1)[1]
    service.registry.for_request(token, "").scope = other.uuid  # as if in its namespace
    service.add_listener(own, MetadataHandler, other.uuid, "pod")
    on_own = Api(f"http://127.0.0.1:{own.getsockname()[1]}/{token}")
    assert on_own.get("/pod/uuid")[:2] == (200, other.uuid.encode())
    assert Api(url).get("/pod/uuid")[0] == 401  # its token on the host's listener
    first_token = api.base.split("/")[1]
    assert Api(f"http://127.0.0.1:{own.getsockname()[1]}/{first_token}").get("/pod/uuid")[0] == 401


def test_methods_and_paths_that_do_not_exist(api):
    assert api.get("/pod/hmac/sign")[0] == 405
    assert call(api.port, "DELETE", api.base + "/pod/uuid")[0] == 405
    assert api.get("/pod/nothing")[0] == 404
    assert call(api.port, "GET", "/no/such/path")[0] == 404
    assert api.get("/apps/web/image")[0] == 404


def test_a_post_without_length_or_too_big_is_refused(api):
    with socket.create_connection(("127.0.0.1", api.port)) as s:
        s.sendall(f"POST {api.base}/pod/hmac/sign HTTP/1.0\r\nMetadata-Flavor: AppContainer\r\n"
                  "\r\n".encode())
        assert s.makefile("rb").readline().split()[1] == b"411"
    headers = {**FLAVOR, "Content-Type": "application/x-www-form-urlencoded",
               "Content-Length": str(64 << 20)}
    with socket.create_connection(("127.0.0.1", api.port)) as s:
        s.sendall(f"POST {api.base}/pod/hmac/sign HTTP/1.0\r\n".encode()
                  + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
        assert s.makefile("rb").readline().split()[1] == b"413"


def test_garbage_gets_an_answer(api):
    form = "&".join(f"f{i}=x" for i in range(1000))
    assert api.post("/pod/hmac/sign", {"content": "x", "more": form})[0] == 200  # one field
    headers = {**FLAVOR, "Content-Type": "application/x-www-form-urlencoded"}
    status = call(api.port, "POST", api.base + "/pod/hmac/sign", form.encode(), headers)[0]
    assert status == 400
    with socket.create_connection(("127.0.0.1", api.port)) as s:
        s.sendall(b"\x00\xff garbage\r\n\r\n")
        assert b"Error code: 400" in s.makefile("rb").read()
    assert api.get("/pod/uuid")[0] == 200


def test_a_silent_client_does_not_hold_up_the_others(api):
    idle = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(5)]
    try:
        assert api.get("/pod/uuid")[0] == 200
    finally:
        for s in idle:
            s.close()


# --- registration -----------------------------------------------------------------------------


def registration(method, target, body=None):
    return client.request(method, target, body)


def test_registration_validates_what_it_is_given(service, pod):
    good = f"/pods/{pod.uuid}?token={'a' * 32}"
    assert registration("PUT", f"/pods/not-a-uuid?token={'a' * 32}", pod_manifest())[0] == 400
    assert registration("PUT", f"/pods/{pod.uuid}?token=short", pod_manifest())[0] == 400
    assert registration("PUT", f"/pods/{pod.uuid}?token={'a' * 31}%2F", pod_manifest())[0] == 400
    assert registration("PUT", good, b"{not json")[0] == 400
    assert registration("PUT", good, b'{"acKind": "ImageManifest"}')[0] == 400
    assert registration("PUT", f"/pods/{pod.uuid}/web", image_manifest())[0] == 404  # no pod yet
    status, url = registration("PUT", good, pod_manifest())
    assert status == 200 and url == f"http://127.0.0.1:{service.port}/{'a' * 32}".encode()
    assert registration("PUT", f"/pods/{pod.uuid}/nope", image_manifest())[0] == 400
    assert registration("PUT", f"/pods/{pod.uuid}/web", b"[]")[0] == 400
    other = str(uuidlib.uuid4())
    assert registration("PUT", f"/pods/{other}?token={'a' * 32}", pod_manifest())[0] == 409
    assert registration("GET", f"/pods/{pod.uuid}")[0] == 405
    assert registration("DELETE", f"/pods/{pod.uuid}")[0] == 200
    assert registration("DELETE", f"/pods/{pod.uuid}")[0] == 404


def test_registration_with_a_missing_namespace_or_directory_fails(service, pod, tmp_path):
    base = f"/pods/{pod.uuid}?token={'b' * 32}"
    status, reply = registration("PUT", base + f"&netns={tmp_path}/none", pod_manifest())
    assert status == 400 and b"cannot listen in the network namespace" in reply
    assert registration("PUT", base + f"&dir={tmp_path}/none", pod_manifest())[0] == 400
    assert service.registry.all() == []


def test_only_the_registrar_may_register(service, pod):
    service.registrar_uid = os.getuid() + 1
    status, reply = client.request("PUT", f"/pods/{pod.uuid}?token={'c' * 32}", pod_manifest())
    assert status == 403 and service.registry.all() == []


def test_a_re_registration_replaces_the_pod(service, pod):
    first = client.register(pod, Options())
    second = client.register(pod, Options())
    assert first != second
    assert Api(first).get("/pod/uuid")[0] == 401
    assert Api(second).get("/pod/uuid")[0] == 200


def test_a_pod_is_unregistered_once_its_lock_is_free(service, pod):
    api = Api(client.register(pod, Options()))
    assert api.get("/pod/uuid")[0] == 200
    pod.exit()
    deadline = time.monotonic() + 30
    while service.registry.all() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.registry.all() == []
    assert api.get("/pod/uuid")[0] == 401


def test_gc_unregisters_a_registered_pod(service, pod):
    api = Api(plugin.rkt_register_pod(pod, Options()))
    assert os.path.exists(pod.file(client.REGISTERED_FILE))
    plugin.rkt_pod_gc(pod)
    assert api.get("/pod/uuid")[0] == 401
    assert not os.path.exists(pod.file(client.REGISTERED_FILE))
    plugin.rkt_pod_gc(pod)  # nothing left to do


def test_gc_of_a_pod_never_registered_asks_nothing(pod, tmp_path, monkeypatch):
    monkeypatch.setenv(client.SOCKET_ENV, str(tmp_path / "nothing-here.sock"))
    plugin.rkt_pod_gc(pod)


def test_gc_with_the_service_gone_drops_the_marker(pod, tmp_path, monkeypatch):
    monkeypatch.setenv(client.SOCKET_ENV, str(tmp_path / "gone.sock"))
    open(pod.file(client.REGISTERED_FILE), "w").close()
    plugin.rkt_pod_gc(pod)
    assert not os.path.exists(pod.file(client.REGISTERED_FILE))


def test_registering_without_a_service_names_the_socket(pod, tmp_path, monkeypatch):
    monkeypatch.setenv(client.SOCKET_ENV, str(tmp_path / "gone.sock"))
    with pytest.raises(RktError) as error:
        client.register(pod, Options())
    assert f"cannot reach the metadata service at {tmp_path}/gone.sock" in str(error.value)


def test_a_failed_app_registration_unregisters_the_pod(service, pod):
    with open(pod.file("appsinfo", "web", "manifest"), "wb") as f:
        f.write(b"not a manifest")
    with pytest.raises(RktError, match='refused to register app "web": 400'):
        client.register(pod, Options())
    assert service.registry.all() == []


# --- the registration socket ------------------------------------------------------------------


def test_a_stale_socket_is_replaced_and_a_live_one_is_not(tmp_path):
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens
    sock, owned = registration_socket(path)
    try:
        with pytest.raises(RktError, match="another metadata service is listening"):
            registration_socket(path)
    finally:
        sock.close()
    os.unlink(path)
    with open(path, "w"):
        pass
    with pytest.raises(RktError, match="exists and is not a socket"):
        registration_socket(path)


# --- the registry and the signer --------------------------------------------------------------


def test_registry_scopes():
    registry = Registry()
    pod = RegisteredPod(str(uuidlib.uuid4()), "t" * 32, pod_manifest(),
                        PodManifest.from_json(pod_manifest()), scope="its-namespace")
    registry.add(pod)
    assert registry.for_request("t" * 32, "its-namespace") is pod
    assert registry.for_request("t" * 32, "") is None
    assert registry.for_request("u" * 32, "its-namespace") is None
    assert registry.remove(pod.uuid, only=object()) is None
    assert registry.remove(pod.uuid) is pod


def test_each_service_has_its_own_key():
    uuid = str(uuidlib.uuid4())
    one, two = Signer(), Signer()
    assert not two.verify(uuid, b"x", one.sign(uuid, b"x"))
    assert one.verify(uuid, b"x", one.sign(uuid, b"x"))
