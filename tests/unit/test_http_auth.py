"""auth.d for http fetching: layers (system < local < user), domains with ports, which host gets
which header, and malformed domains."""

import json

import pytest

from rkt_core.config import ConfigError, load_config
from rkt_core.remote.httpclient import HttpClient, HttpOptions, read_body


def _auth(directory, name, domains, kind, credentials):
    path = directory / "auth.d"
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(json.dumps({"rktKind": "auth", "rktVersion": "v1",
                                         "domains": domains, "type": kind,
                                         "credentials": credentials}))


def test_user_overrides_local_overrides_system_per_domain(tmp_path):
    system, local, user = tmp_path / "s", tmp_path / "l", tmp_path / "u"
    _auth(system, "a.json", ["a.com", "b.com", "c.com"], "oauth", {"token": "system"})
    _auth(local, "a.json", ["b.com", "c.com"], "oauth", {"token": "local"})
    _auth(user, "a.json", ["c.com"], "basic", {"user": "me", "password": "pw"})
    auth = load_config(str(system), str(local), str(user)).auth
    assert auth["a.com"].headers() == {"Authorization": "Bearer system"}
    assert auth["b.com"].headers() == {"Authorization": "Bearer local"}
    assert auth["c.com"].headers() == {"Authorization": "Basic bWU6cHc="}


def test_headers_go_to_the_exact_host_and_port_over_https_only(tmp_path):
    _auth(tmp_path, "a.json", ["a.com"], "oauth", {"token": "any-port"})
    _auth(tmp_path, "b.json", ["a.com:8443"], "oauth", {"token": "port-8443"})
    with HttpClient(HttpOptions(auth=load_config(str(tmp_path)).auth)) as client:
        assert client._auth_headers("https://a.com/x") == {"Authorization": "Bearer any-port"}
        assert client._auth_headers("https://a.com:8443/x") == {"Authorization": "Bearer port-8443"}
        assert client._auth_headers("https://b.a.com/x") == {}
        assert client._auth_headers("https://a.com.evil/x") == {}


@pytest.mark.parametrize("domain", ["", "https://a.com", "a.com/path", 7, " a.com"])
def test_malformed_domains_are_errors(tmp_path, domain):
    _auth(tmp_path, "a.json", [domain], "oauth", {"token": "t"})
    with pytest.raises(ConfigError, match="invalid domain"):
        load_config(str(tmp_path))


def test_an_authorization_the_caller_gives_goes_only_to_its_own_host():
    """A registry token passes a redirect to the same host, never to another one (a blob's
    storage); the server that redirects gets it."""
    from rkt_core.testing.httpserver import TestServer

    with TestServer() as registry, TestServer(host="127.0.0.2") as storage:
        storage.add("/blob", b"data")
        registry.add("/moved", redirect=registry.url("/here"))
        registry.add("/here", redirect=storage.url("/blob"))
        with HttpClient(HttpOptions()) as client:
            with client.request("GET", registry.url("/moved"),
                                {"Authorization": "Bearer registry-token"}) as response:
                assert read_body(response, 100, "blob") == b"data"
        assert [r.headers.get("Authorization") for r in registry.requests] == \
            ["Bearer registry-token"] * 2
        assert [r.headers.get("Authorization") for r in storage.requests] == [None]
