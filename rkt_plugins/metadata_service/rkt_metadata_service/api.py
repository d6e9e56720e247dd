"""The two HTTP interfaces of the metadata service.

**Apps** (TCP; :class:`MetadataHandler`), with appc v0.7.4's wire details as rkt served them.
Every path starts with the pod's token, ``/<token>/acMetadata/v1``, and every request must
carry ``Metadata-Flavor: AppContainer`` (400 without it):

==========================================  ==================================================
``GET  /pod/annotations/``                  the pod's annotation names, one per line
``GET  /pod/annotations/<name>``            one value, as is
``GET  /pod/manifest``                      the pod manifest (JSON)
``GET  /pod/uuid``                          the pod's uuid (no newline)
``GET  /apps/<app>/annotations/``           the app's annotation names (image's, then the pod's
                                            for the app; the pod's values win)
``GET  /apps/<app>/annotations/<name>``     one value
``GET  /apps/<app>/image/manifest``         the app's image manifest (JSON)
``GET  /apps/<app>/image/id``               its image ID (no newline)
``POST /pod/hmac/sign``                     form ``content``: its base64 HMAC-SHA512 signature
``POST /pod/hmac/verify``                   form ``content``, ``uuid`` (of the signer),
                                            ``signature``: 200 if it verifies, else 403
==========================================  ==================================================

An unknown token, or a token of a pod that is not served on this listener, gets 401; an unknown
annotation or app 404; a malformed name, uuid or signature 400.

**Registration** (root-only unix socket; :class:`RegistrationHandler`), rkt's protocol:
``PUT /pods/<uuid>?token=T[&netns=PATH][&dir=PATH]`` with the pod manifest (answers the pod's
``AC_METADATA_URL``), ``PUT /pods/<uuid>/<app>`` with the app's image manifest, and
``DELETE /pods/<uuid>``. ``netns`` makes the service listen inside the pod's network namespace
(on its loopback, at the same port); ``dir`` is the pod directory, whose lock tells the service
when the pod is gone.
"""

from __future__ import annotations

import socket
import struct
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

from rkt_core.plugin_api.appc import (AppcError, ImageManifest, PodManifest,
                                      validate_ac_identifier, validate_ac_name)

from .registry import TOKEN, RegisteredPod, canonical_uuid

PREFIX = ("acMetadata", "v1")
FLAVOR_HEADER, FLAVOR = "Metadata-Flavor", "AppContainer"
TEXT = "text/plain; charset=us-ascii"
JSON = "application/json"
MAX_FORM = 1 << 20  # bytes of a sign or verify request
MAX_FORM_FIELDS = 100
MAX_MANIFEST = 4 << 20  # bytes of a registered manifest
REQUEST_TIMEOUT = 10  # seconds a connection may take to send its request


class HttpError(Exception):
    """Ends a request with ``status`` and a short text body."""

    def __init__(self, status: int, text: str = "", headers: dict[str, str] | None = None):
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    """One request per connection, plain answers, and errors as :class:`HttpError`.

    ``server`` is the listener (``rkt_metadata_service.server.Listener``): it holds the
    service and the scope of the requests it accepts.
    """

    protocol_version = "HTTP/1.0"
    server_version = "rkt-metadata-service"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    routes: dict[str, str] = {}  # HTTP method -> name of the method that answers it
    max_body = MAX_FORM

    def _dispatch(self) -> None:
        self.logged_path = urlsplit(self.path).path
        self.body_read = False
        try:
            getattr(self, self.routes[self.command])()
        except HttpError as e:
            self._skip_body()
            self.answer(e.status, e.text.encode(), headers=e.headers)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def answer(self, status: int, body: bytes = b"", content_type: str = TEXT,
               headers: dict[str, str] | None = None) -> None:
        """Send the whole response."""
        self.send_response(status)
        if body or status == HTTPStatus.OK:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _skip_body(self) -> None:
        """Read what is left of a refused request's body (if it is not too big), so that the
        client, still sending it, gets the answer rather than a reset connection."""
        if not self.body_read:
            try:
                self.body()
            except HttpError:
                pass

    def body(self) -> bytes:
        """The request's body (Content-Length required, at most ``max_body`` bytes)."""
        self.body_read = True
        limit = self.max_body
        length = self.headers.get("Content-Length")
        if length is None:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        if not length.isdigit():
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
        if int(length) > limit:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {limit} bytes")
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            raise HttpError(HTTPStatus.BAD_REQUEST, "truncated body")
        return data

    def segments(self) -> list[str]:
        """The path's segments, percent-decoded (the leading empty one dropped)."""
        return [unquote(s) for s in urlsplit(self.path).path.split("/")[1:]]

    def log_request(self, code="-", size="-") -> None:
        self.server.log(f"{self.command or '-'} {getattr(self, 'logged_path', '-')} {int(code)}")

    def log_error(self, format, *args) -> None:
        pass  # the failed request is logged by log_request with its status


def _form(handler: _Handler) -> dict[str, bytes]:
    """A form's fields, as bytes: the body's (application/x-www-form-urlencoded), then the
    query's; the first value of each name wins."""
    fields: dict[str, bytes] = {}
    content_type = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
    body = handler.body()
    sources = [urlsplit(handler.path).query]
    if content_type == "application/x-www-form-urlencoded":
        sources.insert(0, body.decode("latin-1"))
    for source in sources:
        try:
            pairs = parse_qsl(source, keep_blank_values=True, encoding="latin-1",
                              max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "too many form fields") from None
        for name, value in pairs:
            fields.setdefault(name, value.encode("latin-1"))
    return fields


class MetadataHandler(_Handler):
    """What apps ask the metadata service (see the module documentation)."""

    routes = {"GET": "get", "POST": "post", "PUT": "other", "DELETE": "other"}

    def _pod(self) -> tuple[RegisteredPod, list[str]]:
        """The pod the request's token names on this listener, and the path after the prefix."""
        parts = self.segments()
        if len(parts) < 3 or tuple(parts[1:3]) != PREFIX:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")
        self.logged_path = "/<token>/" + "/".join(parts[1:])  # tokens are never logged
        if self.headers.get(FLAVOR_HEADER) != FLAVOR:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"header {FLAVOR_HEADER}: {FLAVOR} required")
        pod = self.server.service.registry.for_request(parts[0], self.server.scope)
        if pod is None:
            raise HttpError(HTTPStatus.UNAUTHORIZED, "pod not found")
        return pod, parts[3:]

    def get(self) -> None:
        pod, rest = self._pod()
        if rest[:2] == ["pod", "annotations"] and len(rest) >= 3:
            self._annotation(pod.manifest.annotations, "/".join(rest[2:]), "pod")
        elif rest == ["pod", "manifest"]:
            self.answer(HTTPStatus.OK, pod.manifest_json, JSON)
        elif rest == ["pod", "uuid"]:
            self.answer(HTTPStatus.OK, pod.uuid.encode())
        elif len(rest) >= 3 and rest[0] == "apps":
            self._app(pod, rest[1], rest[2:])
        elif rest in (["pod", "hmac", "sign"], ["pod", "hmac", "verify"]):
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST", {"Allow": "POST"})
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")

    def _app(self, pod: RegisteredPod, app: str, rest: list[str]) -> None:
        try:
            validate_ac_name(app, "app name")
        except AppcError:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"app name {app!r} is not a valid AC Name")
        if app not in pod.images:
            raise HttpError(HTTPStatus.NOT_FOUND, "app not found")
        if rest[0] == "annotations" and len(rest) >= 2:
            self._annotation(pod.app_annotations(app), "/".join(rest[1:]), "app")
        elif rest == ["image", "manifest"]:
            self.answer(HTTPStatus.OK, pod.images[app][0], JSON)
        elif rest == ["image", "id"]:
            self.answer(HTTPStatus.OK, pod.image_id(app).encode())
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")

    def _annotation(self, annotations, name: str, whose: str) -> None:
        """The names (``name`` empty: the listing), or the value of one annotation."""
        if not name:
            self.answer(HTTPStatus.OK, "".join(f"{n}\n" for n, _ in annotations).encode())
            return
        try:
            validate_ac_identifier(name, "annotation name")
        except AppcError:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"{whose} annotation {name!r} is not a valid AC Identifier")
        value = annotations.get(name)
        if value is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"{whose} annotation {name!r} not found")
        self.answer(HTTPStatus.OK, value.encode())

    def post(self) -> None:
        pod, rest = self._pod()
        if rest == ["pod", "hmac", "sign"]:
            content = _form(self).get("content", b"")
            if not content:
                raise HttpError(HTTPStatus.BAD_REQUEST, "content form value not found")
            signer = self.server.service.signer
            self.answer(HTTPStatus.OK, signer.sign(pod.uuid, content).encode())
        elif rest == ["pod", "hmac", "verify"]:
            self._verify(_form(self))
        else:
            self.other()

    def _verify(self, form: dict[str, bytes]) -> None:
        try:
            uuid = canonical_uuid(form.get("uuid", b"").decode("latin-1"))
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "uuid field missing or malformed")
        content = form.get("content", b"")
        if not content:
            raise HttpError(HTTPStatus.BAD_REQUEST, "content field missing")
        try:
            valid = self.server.service.signer.verify(uuid, content,
                                                      form.get("signature", b"").decode("latin-1"))
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "signature field missing or corrupt")
        self.answer(HTTPStatus.OK if valid else HTTPStatus.FORBIDDEN)

    def other(self) -> None:
        _, rest = self._pod()
        if rest in (["pod", "hmac", "sign"], ["pod", "hmac", "verify"]):
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST", {"Allow": "POST"})
        raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "use GET", {"Allow": "GET"})


SO_PEERCRED_FORMAT = "3i"  # struct ucred: pid, uid, gid


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                           struct.calcsize(SO_PEERCRED_FORMAT))
    return struct.unpack(SO_PEERCRED_FORMAT, data)[1]


class RegistrationHandler(_Handler):
    """How ``rkt run`` registers pods and ``rkt gc`` unregisters them (root only)."""

    routes = {"GET": "other", "POST": "other", "PUT": "put", "DELETE": "delete"}
    max_body = MAX_MANIFEST

    def _target(self) -> tuple[str, str | None]:
        """The uuid (and app name, if any) the path names; only root may ask."""
        if peer_uid(self.connection) != self.server.service.registrar_uid:
            raise HttpError(HTTPStatus.FORBIDDEN, "only root may register pods")
        parts = self.segments()
        if len(parts) not in (2, 3) or parts[0] != "pods":
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")
        try:
            uuid = canonical_uuid(parts[1])
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "UUID is missing or malformed")
        return uuid, parts[2] if len(parts) == 3 else None

    def put(self) -> None:
        uuid, app = self._target()
        data = self.body()
        service = self.server.service
        if app is None:
            query = dict(parse_qsl(urlsplit(self.path).query))
            token = query.get("token", "")
            if not TOKEN.match(token):
                raise HttpError(HTTPStatus.BAD_REQUEST, "token missing or malformed")
            manifest = _decode(PodManifest, data, "pod manifest")
            url = service.register(RegisteredPod(uuid, token, data, manifest),
                                   query.get("netns", ""), query.get("dir", ""))
            self.answer(HTTPStatus.OK, url.encode())
            return
        manifest = _decode(ImageManifest, data, "image manifest")
        try:
            service.registry.add_image(uuid, app, data, manifest)
        except KeyError:
            raise HttpError(HTTPStatus.NOT_FOUND, "pod with given UUID not found")
        except ValueError as e:
            raise HttpError(HTTPStatus.BAD_REQUEST, str(e))
        self.answer(HTTPStatus.OK)

    def delete(self) -> None:
        uuid, app = self._target()
        if app is not None or not self.server.service.unregister(uuid):
            raise HttpError(HTTPStatus.NOT_FOUND, "pod not found")
        self.answer(HTTPStatus.OK)

    def other(self) -> None:
        self._target()
        raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "use PUT or DELETE",
                        {"Allow": "PUT, DELETE"})


def _decode(kind, data: bytes, what: str):
    try:
        return kind.from_json(data)
    except (AppcError, ValueError, UnicodeDecodeError) as e:  # JSON errors are ValueErrors
        raise HttpError(HTTPStatus.BAD_REQUEST, f"invalid {what}: {e}") from None

