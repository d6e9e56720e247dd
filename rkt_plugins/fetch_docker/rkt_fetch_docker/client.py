"""A Docker Registry v2 client for one repository: scheme, authentication, manifests, blobs.

- Scheme: ``GET /v2/`` over https; plain http only when the user allowed it
  (``--insecure-options=http``), and then also as a fallback when https fails. A redirect to
  plain http is refused unless http is allowed. TLS certificates are checked unless
  ``--insecure-options=tls``.
- Authentication is driven by the registry's ``401`` challenges: ``Bearer`` (a token from the
  realm, asked with the dockerAuth credentials if there are any, ``token`` or ``access_token``
  accepted; a new token whenever a request is refused again, e.g. once the token expired
  during a long pull) or ``Basic`` (the dockerAuth credentials, sent only once the registry
  asked for them). One request answers each challenge once: the same challenge again means
  access is denied. Credentials go to a token realm only
  over https unless http is allowed. ``requests`` never adds ``.netrc`` credentials.
- Responses read into memory (manifests, configs, tokens, error bodies) are capped.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

import requests
import urllib3

from rkt_core.plugin_api import NotFoundError, RktError, __version__

from .challenge import Challenge, parse_challenges
from .reference import DockerRef

MiB = 1 << 20
TIMEOUT = (30, 120)  # (connect, between bytes) in seconds
MAX_REDIRECTS = 10
MAX_MANIFEST_BYTES = 4 * MiB
MAX_CONFIG_BYTES = 8 * MiB
MAX_TOKEN_BYTES = 1 * MiB
MAX_ERROR_BYTES = 64 * 1024
CHUNK = 1 * MiB
# urllib3's "HTTPConnection(host='h', port=1): " or "<...Connection object at 0x..>: ".
_CONNECTION_PREFIX = re.compile(r"^(?:\w*Connection\w*\(.*?\)|<[^>]*>): ")


class RegistryError(RktError):
    """The registry could not be reached, refused access or answered something unusable."""


def _no_netrc(request):
    """A no-op ``requests`` auth: with a session auth set, requests never reads ``~/.netrc``,
    whose Basic header would replace our own ``Authorization``."""
    return request


class _Session(requests.Session):
    """A session that, on a redirect, only drops ``Authorization`` when the host or scheme
    changes (blobs are often served from another host) and never adds ``.netrc``
    credentials for the new host, as ``requests`` otherwise would."""

    def rebuild_auth(self, prepared_request, response):
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(response.request.url,
                                                                 prepared_request.url):
            del headers["Authorization"]


def _reason(error: BaseException) -> str:
    """The innermost, readable cause of a ``requests`` or ``urllib3`` exception."""
    for _ in range(10):
        nested = getattr(error, "reason", None)
        if not isinstance(nested, BaseException):
            nested = error.args[0] if error.args and isinstance(error.args[0], BaseException) \
                else None
        if nested is None:
            break
        error = nested
    text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return _CONNECTION_PREFIX.sub("", text)


def read_capped(response, limit: int, what: str) -> bytes:
    """The whole body of ``response``, refusing more than ``limit`` bytes."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise RegistryError(f"{what}: {length} bytes is more than the {limit} allowed")
    data = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise RegistryError(f"{what}: more than the {limit} bytes allowed")
    except requests.RequestException as e:
        raise RegistryError(f"{what}: {_reason(e)}") from None
    return bytes(data)


def _registry_errors(response) -> str:
    """``CODE: message`` of a registry error body, if it has one."""
    try:
        errors = json.loads(read_capped(response, MAX_ERROR_BYTES, "error"))["errors"]
        return "; ".join(f'{e.get("code", "")}: {e.get("message", "")}' for e in errors[:3])
    except (RegistryError, ValueError, KeyError, TypeError, AttributeError):
        return ""


class Registry:
    """A session with the registry of ``ref``, for ``ref.repository``; call :meth:`connect`
    first, :meth:`close` last (or use it as a context manager)."""

    def __init__(self, ref: DockerRef, *, credentials: tuple[str, str] | None = None,
                 allow_http: bool = False, verify_tls: bool = True, log=lambda message: None):
        self.ref = ref
        self.credentials = credentials
        self.allow_http = allow_http
        self.verify_tls = verify_tls
        self.log = log
        self.base = ""
        self._authorization = ""
        self.session = _Session()
        self.session.max_redirects = MAX_REDIRECTS
        self.session.auth = _no_netrc
        self.session.headers["User-Agent"] = f"rkt-python/{__version__}"
        if not verify_tls:  # the user said so (--insecure-options=tls): no warning per request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.session.close()

    # --- connecting -----------------------------------------------------------------------

    def connect(self) -> None:
        """Find the scheme the registry answers ``GET /v2/`` on (200, or 401 before auth)."""
        problems, hint = [], None
        for scheme in ("https", "http") if self.allow_http else ("https",):
            url = f"{scheme}://{self.ref.registry}/v2/"
            try:
                with self.session.get(url, timeout=TIMEOUT, verify=self.verify_tls,
                                      stream=True) as response:
                    self._check_url(response)
                    if response.status_code in (200, 401):
                        self.base = f"{scheme}://{self.ref.registry}"
                        self.log(f"docker: using {self.base}")
                        return
                    problems.append(f"{url} answered HTTP {response.status_code}")
            except requests.exceptions.SSLError as e:
                problems.append(f"{url}: {_reason(e)}")
                if "WRONG_VERSION_NUMBER" not in str(e):  # else it speaks plain http
                    hint = hint or "if you trust this registry, skip TLS verification with " \
                                   "--insecure-options=tls"
            except requests.RequestException as e:
                problems.append(f"{url}: {_reason(e)}")
        if not self.allow_http:
            hint = (hint + "; " if hint else "") + \
                "if the registry speaks plain http, allow it with --insecure-options=http"
        raise RegistryError(f"cannot use the Docker registry {self.ref.registry}: "
                            f"{'; '.join(problems)}", hint=hint)

    def _check_url(self, response) -> None:
        """Refuse a response that came (through redirects) over plain http unless allowed."""
        if urlsplit(response.url).scheme != "https" and not self.allow_http:
            response.close()
            raise RegistryError(f"{response.url}: refusing plain http",
                                hint="allow it with --insecure-options=http")

    # --- requests and authentication --------------------------------------------------------

    def _get(self, path: str, what: str, accept: tuple[str, ...] = (),
             headers: dict[str, str] | None = None):
        """``GET base+path``, answering up to two authentication challenges."""
        tried: set[tuple[str, ...]] = set()
        for _ in range(3):
            all_headers = dict(headers or {})
            if accept:
                all_headers["Accept"] = ", ".join(accept)
            if self._authorization:
                all_headers["Authorization"] = self._authorization
            try:
                response = self.session.get(self.base + path, headers=all_headers, stream=True,
                                            timeout=TIMEOUT, verify=self.verify_tls)
            except requests.RequestException as e:
                raise RegistryError(f"{what}: {_reason(e)}") from None
            self._check_url(response)
            if response.status_code != 401:
                return response
            header = response.headers.get("WWW-Authenticate", "")
            response.close()
            self._authenticate(parse_challenges(header), header, what, tried)
        raise RegistryError(f"{what}: the registry keeps asking for authentication")

    def _authenticate(self, challenges: list[Challenge], header: str, what: str,
                      tried: set[tuple[str, ...]]) -> None:
        """Get what the first usable challenge asks for; ``tried`` holds the challenges this
        request answered already."""
        by_scheme = {c.scheme: c for c in reversed(challenges)}
        bearer, basic = by_scheme.get("bearer"), by_scheme.get("basic")
        if bearer is not None and bearer.params.get("realm"):
            self._get_token(bearer, what, tried)
        elif basic is not None:
            if self.credentials is None:
                raise RegistryError(f"{what}: the registry {self.ref.registry} requires "
                                    "authentication", hint=self._credentials_hint())
            if ("basic",) in tried:
                raise RegistryError(f"{what}: the registry refused the credentials of user "
                                    f'"{self.credentials[0]}"')
            tried.add(("basic",))
            self._authorization = self._basic()
        else:
            raise RegistryError(f"{what}: HTTP 401 without a usable authentication challenge "
                                f"({header[:200]!r})")

    def _credentials_hint(self) -> str:
        return ("add credentials for it in a dockerAuth file of auth.d, e.g. "
                f'{{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": '
                f'["{self.ref.registry}"], "credentials": {{"user": "...", "password": "..."}}}}')

    def _basic(self) -> str:
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _get_token(self, challenge: Challenge, what: str, tried: set[tuple[str, ...]]) -> None:
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        scope = challenge.params.get("scope") or f"repository:{self.ref.repository}:pull"
        if (realm, service, scope) in tried:
            error = challenge.params.get("error", "")
            raise RegistryError(f"{what}: access denied for scope {scope}"
                                + (f" ({error})" if error else ""),
                                hint=None if self.credentials else self._credentials_hint())
        tried.add((realm, service, scope))
        scheme = urlsplit(realm).scheme
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_http):
            raise RegistryError(f"{what}: refusing the token realm {realm!r} (not https)",
                                hint="allow plain http with --insecure-options=http")
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Authorization": self._basic()} if self.credentials else {}
        try:
            with self.session.get(realm, params=params, headers=headers, stream=True,
                                  timeout=TIMEOUT, verify=self.verify_tls) as response:
                self._check_url(response)
                if response.status_code in (401, 403):
                    who = (f'the credentials of user "{self.credentials[0]}"' if self.credentials
                           else "anonymous access")
                    raise RegistryError(f"{what}: the token server {realm} refused {who} "
                                        f"(HTTP {response.status_code})",
                                        hint=None if self.credentials else
                                        self._credentials_hint())
                if response.status_code != 200:
                    raise RegistryError(f"{what}: the token server {realm} answered HTTP "
                                        f"{response.status_code}")
                body = read_capped(response, MAX_TOKEN_BYTES, f"token from {realm}")
        except requests.RequestException as e:
            raise RegistryError(f"{what}: token server {realm}: {_reason(e)}") from None
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise RegistryError(f"{what}: the token server {realm} sent no usable token")
        self.log(f"docker: got a token for {scope} from {realm}")
        self._authorization = f"Bearer {token}"

    def _check_status(self, response, what: str, ok: tuple[int, ...] = (200,)) -> None:
        if response.status_code in ok:
            return
        details = _registry_errors(response)
        response.close()
        message = f"{what}: HTTP {response.status_code}" + (f" ({details})" if details else "")
        if response.status_code == 404:
            raise NotFoundError(message)
        raise RegistryError(message)

    # --- content ----------------------------------------------------------------------------

    def get_manifest(self, reference: str, accept: tuple[str, ...]) -> tuple[bytes, str, str]:
        """The manifest named by a tag or digest: (body, media type, Docker-Content-Digest)."""
        what = f"manifest {reference} of {self.ref.registry}/{self.ref.repository}"
        response = self._get(f"/v2/{self.ref.repository}/manifests/{reference}", what, accept)
        with response:
            self._check_status(response, what)
            body = read_capped(response, MAX_MANIFEST_BYTES, what)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            return body, media_type, response.headers.get("Docker-Content-Digest", "").strip()

    def get_blob(self, digest: str, limit: int, what: str) -> bytes:
        """A small blob (an image config) read into memory, at most ``limit`` bytes; not
        checked here."""
        response = self._get(f"/v2/{self.ref.repository}/blobs/{digest}", what)
        with response:
            self._check_status(response, what)
            return read_capped(response, limit, what)

    def open_blob(self, digest: str, offset: int = 0):
        """A streaming response with the blob from byte ``offset`` (status 200, or 206 when the
        registry honoured the range). The caller closes it and checks the digest."""
        what = f"blob {digest}"
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self._get(f"/v2/{self.ref.repository}/blobs/{digest}", what, headers=headers)
        self._check_status(response, what, ok=(200, 206, 416) if offset else (200,))
        return response
