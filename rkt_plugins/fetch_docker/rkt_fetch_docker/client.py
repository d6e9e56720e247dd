"""A Docker Registry v2 client for one repository: scheme, authentication, manifests, blobs.

Requests go through rkt's HTTP client (``rkt_core.plugin_api.fetch.HttpClient``), so the
registry is held to the policy of every other fetch: certificates checked against the same CA
bundle unless ``--insecure-options=tls``, every redirect checked (a redirect to plain http is
refused unless ``--insecure-options=http``), no ``.netrc``, and a token or password sent only
to the host it is for (not to the storage a blob is redirected to).

- Scheme: ``GET /v2/`` over https; plain http only when the user allowed it
  (``--insecure-options=http``), and then also as a fallback when https fails.
- Authentication is driven by the registry's ``401`` challenges: ``Bearer`` (a token from the
  realm, asked with the dockerAuth credentials if there are any, ``token`` or ``access_token``
  accepted; a new token whenever a request is refused again, e.g. once the token expired
  during a long pull) or ``Basic`` (the dockerAuth credentials, sent only once the registry
  asked for them). One request answers each challenge once: the same challenge again means
  access is denied. Credentials go to a token realm only over https unless http is allowed.
  ``auth.d`` credentials (for appc fetches) are never sent to a registry.
- Responses read into memory (manifests, configs, tokens, error bodies) are capped.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode, urlsplit

from rkt_core.plugin_api import NotFoundError, RktError
from rkt_core.plugin_api.fetch import HttpClient, HttpError, HttpOptions, read_body

from .challenge import Challenge, parse_challenges
from .reference import DockerRef

MiB = 1 << 20
MAX_MANIFEST_BYTES = 4 * MiB
MAX_CONFIG_BYTES = 8 * MiB
MAX_TOKEN_BYTES = 1 * MiB
MAX_ERROR_BYTES = 64 * 1024


class RegistryError(RktError):
    """The registry could not be reached, refused access or answered something unusable."""


def _with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return parts._replace(query=query).geturl()


def _registry_errors(response) -> str:
    """``CODE: message`` of a registry error body, if it has one."""
    try:
        errors = json.loads(read_body(response, MAX_ERROR_BYTES, "error"))["errors"]
        return "; ".join(f'{e.get("code", "")}: {e.get("message", "")}' for e in errors[:3])
    except (HttpError, ValueError, KeyError, TypeError, AttributeError):
        return ""


class Registry:
    """A session with the registry of ``ref``, for ``ref.repository``; call :meth:`connect`
    first, :meth:`close` last (or use it as a context manager)."""

    def __init__(self, ref: DockerRef, *, credentials: tuple[str, str] | None = None,
                 allow_http: bool = False, verify_tls: bool = True, log=lambda message: None):
        self.ref = ref
        self.credentials = credentials
        self.allow_http = allow_http
        self.log = log
        self.base = ""
        self._authorization = ""
        self.http = HttpClient(HttpOptions(allow_http=allow_http, verify_tls=verify_tls, log=log))

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    # --- connecting -----------------------------------------------------------------------

    def connect(self) -> None:
        """Find the scheme the registry answers ``GET /v2/`` on (200, or 401 before auth)."""
        problems, hint = [], None
        for scheme in ("https", "http") if self.allow_http else ("https",):
            url = f"{scheme}://{self.ref.registry}/v2/"
            try:
                with self.http.request("GET", url) as response:
                    if response.status_code in (200, 401):
                        self.base = f"{scheme}://{self.ref.registry}"
                        self.log(f"docker: using {self.base}")
                        return
                    problems.append(f"{url} answered HTTP {response.status_code}")
            except HttpError as e:
                problems.append(e.message)
                hint = hint or e.hint
        if not self.allow_http and "--insecure-options=http" not in (hint or ""):
            hint = (hint + "; " if hint else "") + \
                "if the registry speaks plain http, allow it with --insecure-options=http"
        raise RegistryError(f"cannot use the Docker registry {self.ref.registry}: "
                            f"{'; '.join(problems)}", hint=hint)

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
            response = self.http.request("GET", self.base + path, all_headers, what)
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
        with self.http.request("GET", _with_query(realm, params), headers,
                               f"{what}: token server {realm}") as response:
            if response.status_code in (401, 403):
                who = (f'the credentials of user "{self.credentials[0]}"' if self.credentials
                       else "anonymous access")
                raise RegistryError(f"{what}: the token server {realm} refused {who} "
                                    f"(HTTP {response.status_code})",
                                    hint=None if self.credentials else self._credentials_hint())
            if response.status_code != 200:
                raise RegistryError(f"{what}: the token server {realm} answered HTTP "
                                    f"{response.status_code}")
            body = read_body(response, MAX_TOKEN_BYTES, f"token from {realm}")
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
            body = read_body(response, MAX_MANIFEST_BYTES, what)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            return body, media_type, response.headers.get("Docker-Content-Digest", "").strip()

    def get_blob(self, digest: str, limit: int, what: str) -> bytes:
        """A small blob (an image config) read into memory, at most ``limit`` bytes; not
        checked here."""
        response = self._get(f"/v2/{self.ref.repository}/blobs/{digest}", what)
        with response:
            self._check_status(response, what)
            return read_body(response, limit, what)

    def open_blob(self, digest: str, headers: dict[str, str]):
        """A streaming response with the blob, asked for with ``headers`` (a ``Range`` to resume:
        status 206, or 200 when the registry sends all of it, or 416). The caller closes it and
        checks the digest."""
        what = f"blob {digest}"
        response = self._get(f"/v2/{self.ref.repository}/blobs/{digest}", what, headers=headers)
        self._check_status(response, what, ok=(200, 206, 416) if "Range" in headers else (200,))
        return response
