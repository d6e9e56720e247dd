"""The pods the metadata service knows, what it tells each of them, and its HMAC identity.

Each registered pod has a random token (its credential: the path prefix of its
``AC_METADATA_URL``) and a *scope*: the listener its apps reach the service on, either the
host's loopback listener or one inside the pod's own network namespace. A request is answered
only for the pod whose token it carries, and only on that pod's listener, so no pod can read
another's data, even with a stolen token, unless both share the host's network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from rkt_core.plugin_api.appc import Annotations, ImageManifest, PodManifest

HOST_SCOPE = ""  # the host's listener; a pod's own listener has the pod's uuid as its scope
HMAC_KEY_BYTES = 64  # the size of a SHA-512 block's worth of key, as rkt used
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")  # >= 128 bits when hex; safe in a URL path


def canonical_uuid(text: str) -> str:
    """A pod uuid in its canonical form (lowercase, dashes); ValueError if it is none."""
    if not isinstance(text, str) or len(text) not in (32, 36):
        raise ValueError(f"malformed pod uuid {text!r}")
    return str(uuidlib.UUID(text))


@dataclass
class RegisteredPod:
    """A pod as registered: its manifest (as sent, and parsed), token, scope and the image
    manifests of its apps."""

    uuid: str
    token: str
    manifest_json: bytes
    manifest: PodManifest
    scope: str = HOST_SCOPE
    images: dict[str, tuple[bytes, ImageManifest]] = field(default_factory=dict)
    listener: Any = None  # the pod's own listening socket, if it has one

    def app_annotations(self, app: str) -> Annotations:
        """The app's image annotations overridden and extended by the pod's annotations of the
        app (appc: image annotations merged with the pod manifest's, the pod winning)."""
        merged = dict(self.images[app][1].annotations)
        runtime = self.manifest.app(app)
        if runtime is not None:
            merged.update(runtime.annotations)
        return Annotations(merged.items())

    def image_id(self, app: str) -> str:
        """The image ID of the app, as the pod manifest names it."""
        runtime = self.manifest.app(app)
        return (runtime.image.id or "") if runtime is not None else ""


class Registry:
    """The registered pods by uuid and by token; safe to use from several threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_uuid: dict[str, RegisteredPod] = {}
        self._by_token: dict[str, RegisteredPod] = {}

    def add(self, pod: RegisteredPod) -> RegisteredPod | None:
        """Register ``pod``; returns the registration of the same uuid it replaces, if any.
        ValueError if another pod has its token."""
        with self._lock:
            holder = self._by_token.get(pod.token)
            if holder is not None and holder.uuid != pod.uuid:
                raise ValueError("the token is taken by another pod")
            old = self._by_uuid.pop(pod.uuid, None)
            if old is not None:
                self._by_token.pop(old.token, None)
            self._by_uuid[pod.uuid] = pod
            self._by_token[pod.token] = pod
            return old

    def add_image(self, uuid: str, app: str, manifest_json: bytes,
                  manifest: ImageManifest) -> None:
        """Record the image manifest of one app of a registered pod (KeyError if the pod is
        not registered, ValueError if it has no such app)."""
        with self._lock:
            pod = self._by_uuid[uuid]
            if pod.manifest.app(app) is None:
                raise ValueError(f'the pod has no app "{app}"')
            pod.images[app] = (manifest_json, manifest)

    def remove(self, uuid: str, only: RegisteredPod | None = None) -> RegisteredPod | None:
        """Unregister the pod ``uuid`` (only if its registration is ``only``, when given);
        returns what was removed."""
        with self._lock:
            pod = self._by_uuid.get(uuid)
            if pod is None or (only is not None and pod is not only):
                return None
            del self._by_uuid[uuid]
            self._by_token.pop(pod.token, None)
            return pod

    def for_request(self, token: str, scope: str) -> RegisteredPod | None:
        """The pod a request carrying ``token`` on the listener of ``scope`` may read, if any."""
        with self._lock:
            pod = self._by_token.get(token)
        if pod is None or pod.scope != scope:
            return None
        return pod

    def all(self) -> list[RegisteredPod]:
        """Every registered pod."""
        with self._lock:
            return list(self._by_uuid.values())


class Signer:
    """The pods' identity: HMAC-SHA512 under a random key that never leaves this process, over
    the signing pod's 16 uuid bytes followed by the content (as rkt signs)."""

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else secrets.token_bytes(HMAC_KEY_BYTES)

    def _mac(self, uuid: str, content: bytes) -> bytes:
        return hmac.new(self._key, uuidlib.UUID(uuid).bytes + content, hashlib.sha512).digest()

    def sign(self, uuid: str, content: bytes) -> str:
        """The base64 signature of ``content`` by the pod ``uuid``."""
        return base64.b64encode(self._mac(uuid, content)).decode("ascii")

    def verify(self, uuid: str, content: bytes, signature: str) -> bool:
        """Whether ``signature`` (base64) is the pod ``uuid``'s signature of ``content``;
        ValueError if it is not base64."""
        try:
            raw = base64.b64decode(signature.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("the signature is not base64") from None
        return hmac.compare_digest(raw, self._mac(uuid, content))
