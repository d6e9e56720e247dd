"""``rkt fetch https://...`` against real HTTPS servers on loopback, with a CA made by the test.

Covers signatures (and 202), TLS verification, ETag / max-age caching and the pull policies,
resumed downloads (byte counters of the server), auth.d credentials and where they are sent,
redirect policy, and hostile answers. Each run has its own data and config directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from rkt_core.testing.aci import build_aci, busybox_aci, image_manifest
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.httpserver import TestCA, TestServer
from rkt_core.testing.runner import Rkt
from rkt_core.testing.terminal import drain

NAME = "example.com/hello"
IMG = NAME + ":1.0"


def runner(base: Path, ca: TestCA) -> Rkt:
    """The kit's runner on ``base`` trusting the test CA, signature checks on."""
    rkt = Rkt(base, insecure="", env={"REQUESTS_CA_BUNDLE": str(ca.ca_path)})
    rkt.env.pop("SSL_CERT_FILE", None)
    return rkt


def trusting(ca: TestCA) -> dict:
    """The environment of one command that trusts ``ca`` instead."""
    return {"REQUESTS_CA_BUNDLE": str(ca.ca_path)}


def auth(rkt: Rkt, domain: str, kind: str, credentials: dict) -> None:
    """An auth.d file giving ``credentials`` for ``domain``."""
    auth_d = rkt.local_config / "auth.d"
    auth_d.mkdir(parents=True, exist_ok=True)
    (auth_d / f"{kind}.json").write_text(json.dumps({
        "rktKind": "auth", "rktVersion": "v1", "domains": [domain], "type": kind,
        "credentials": credentials}))


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A signed busybox ACI: (bytes, signature bytes, key file, signer)."""
    base = tmp_path_factory.mktemp("image")
    aci = busybox_aci(base / "hello.aci", name=NAME, version="1.0")
    with GpgSigner(base / "gnupg") as signer:
        (base / "key.asc").write_bytes(signer.export_public())
        signer.sign(aci)
        yield aci.read_bytes(), (base / "hello.aci.asc").read_bytes(), base / "key.asc", signer


@pytest.fixture
def rkt(tmp_path, ca, image):
    rkt = runner(tmp_path, ca)
    rkt("trust", f"--prefix={NAME}", "--skip-fingerprint-review", image[2], check=0)
    yield rkt
    rkt.cleanup()


@pytest.fixture
def server(ca):
    with TestServer(ca=ca) as srv:
        yield srv


def serve(server, image, **kwargs):
    data, sig = image[0], image[1]
    server.add("/hello.aci", data, **kwargs)
    server.add("/hello.aci.asc", sig)
    return server.url("/hello.aci")


# --- signatures, TLS ---------------------------------------------------------------------------


def test_https_fetch_verifies_the_signature_and_stores_the_image(rkt, server, image):
    url = serve(server, image)
    out = rkt("fetch", url, check=0)
    assert out.stdout.startswith("sha512-")
    assert rkt.images() == [IMG]
    assert server.bytes_sent["/hello.aci"] == len(image[0])
    assert rkt.tmp_leftovers() == []
    assert out.stderr == ""  # no progress bar when stderr is not a terminal


def test_signature_deferred_with_202_is_asked_again(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].accepted = 2
    rkt("fetch", url, check=0)
    assert [r.method for r in server.seen("/hello.aci.asc")] == ["GET", "GET", "GET"]


def test_missing_or_wrong_signature_is_refused_and_nothing_is_stored(rkt, server, image, ca):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].status = 404
    out = rkt("fetch", url, check=254)
    assert out.stderr.startswith("rkt: ") and "404" in out.stderr
    assert "--insecure-options=image" in out.stderr
    server.routes["/hello.aci.asc"].status = 200
    server.routes["/hello.aci.asc"].body = image[1].replace(b"A", b"B", 3)
    out = rkt("fetch", url, check=254)
    assert "rkt: " in out.stderr
    assert rkt.images() == [] and rkt.tmp_leftovers() == []


def test_insecure_image_skips_the_signature(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].status = 404
    rkt("--insecure-options=image", "fetch", url, check=0)
    assert server.seen("/hello.aci.asc") == []


def test_an_untrusted_certificate_is_refused_unless_tls_checks_are_off(rkt, server, image, tmp_path):
    url = serve(server, image)
    other = TestCA(tmp_path / "other-ca")
    out = rkt("fetch", url, check=254, env=trusting(other))
    assert "certificate verify failed" in out.stderr
    assert "--insecure-options=tls" in out.stderr
    assert rkt.images() == []
    out = rkt("--insecure-options=tls", "fetch", url, check=0, env=trusting(other))
    assert "TLS verification has been disabled" in out.stderr
    assert rkt.images() == [IMG]


def test_without_a_ca_variable_the_systems_hashed_ca_directory_is_used(rkt, server, image, ca,
                                                                        tmp_path):
    """The directory OpenSSL reads on demand (``SSL_CERT_DIR``, /etc/ssl/certs by default), when
    it is hashed; else the bundle file, which does not hold the test CA."""
    url = serve(server, image)
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        rkt.env.pop(variable, None)
    unhashed = tmp_path / "unhashed"
    unhashed.mkdir()
    (unhashed / "test-ca.pem").write_bytes(Path(ca.ca_path).read_bytes())
    out = rkt("fetch", url, check=254, env={"SSL_CERT_DIR": str(unhashed)})
    assert "certificate verify failed" in out.stderr
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "test-ca.pem").write_bytes(Path(ca.ca_path).read_bytes())
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)
    rkt("fetch", url, check=0, env={"SSL_CERT_DIR": str(hashed)})
    assert rkt.images() == [IMG]


def test_an_explicit_signature_file_is_used(rkt, server, image, tmp_path):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].status = 404
    sig = tmp_path / "sig.asc"
    sig.write_bytes(image[1])
    rkt("fetch", "--signature", sig, url, check=0)
    assert server.seen("/hello.aci.asc") == []


# --- caching and pull policies ----------------------------------------------------------------


def test_etag_gives_304_and_reuses_the_stored_image(rkt, server, image):
    url = serve(server, image, etag='"v1"')
    first = rkt("fetch", url, check=0).stdout
    second = rkt("fetch", url, check=0).stdout
    assert first == second
    assert server.bytes_sent["/hello.aci"] == len(image[0])
    assert server.seen("/hello.aci")[-1].headers.get("If-None-Match") == '"v1"'


def test_max_age_means_no_request_at_all_until_it_expires(rkt, server, image):
    url = serve(server, image, headers={"Cache-Control": "public, max-age=3600"})
    rkt("fetch", url, check=0)
    requests_before = len(server.requests)
    rkt("fetch", url, check=0)
    assert len(server.requests) == requests_before


def test_no_cache_and_a_changed_image_fetch_again(rkt, server, image, tmp_path):
    url = serve(server, image, etag='"v1"', headers={"Cache-Control": "no-cache, max-age=3600"})
    first = rkt("fetch", url, check=0).stdout
    other = busybox_aci(tmp_path / "v2.aci", name=NAME, version="2.0")
    with GpgSigner(tmp_path / "g2") as signer:
        rkt("trust", f"--prefix={NAME}", "--skip-fingerprint-review",
            _write(tmp_path / "k2.asc", signer.export_public()), check=0)
        server.add("/hello.aci", other.read_bytes(), etag='"v2"')
        server.add("/hello.aci.asc", signer.sign(other).read_bytes())
    second = rkt("fetch", url, check=0).stdout
    assert first != second
    assert sorted(rkt.images()) == [IMG, NAME + ":2.0"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_pull_policies(rkt, server, image):
    url = serve(server, image, etag='"v1"')
    out = rkt("fetch", "--pull-policy=never", url, check=254)
    assert 'pull policy is "never"' in out.stderr
    assert server.requests == []
    key = rkt("fetch", "--pull-policy=new", url, check=0).stdout
    count = len(server.requests)
    assert rkt("fetch", "--pull-policy=new", url, check=0).stdout == key
    assert rkt("fetch", "--pull-policy=never", url, check=0).stdout == key
    assert len(server.requests) == count  # store only
    rkt("fetch", "--pull-policy=update", url, check=0)
    assert len(server.requests) > count  # asked the server (304)


# --- resumed downloads -------------------------------------------------------------------------


def test_a_broken_download_resumes_with_only_the_missing_bytes(rkt, server, image):
    data = image[0]
    half = len(data) // 2
    url = serve(server, image, etag='"v1"', drop_after=half)
    out = rkt("fetch", url, check=254)
    assert "broke off" in out.stderr and "run the command again" in out.stderr
    assert rkt.images() == []
    assert server.bytes_sent["/hello.aci"] == half
    assert len(rkt.tmp_leftovers()) == 2  # the partial file and its validators
    rkt("fetch", url, check=0)
    assert server.bytes_sent["/hello.aci"] == len(data)  # the first half was not sent again
    last = server.seen("/hello.aci")[-1]
    assert last.headers["Range"] == f"bytes={half}-" and last.headers["If-Range"] == '"v1"'
    assert rkt.images() == [IMG] and rkt.tmp_leftovers() == []


def test_a_changed_resource_restarts_the_download_cleanly(rkt, server, image, tmp_path):
    data = image[0]
    url = serve(server, image, etag='"v1"', drop_after=len(data) // 2)
    rkt("fetch", url, check=254)
    # The file changes on the server (new ETag): the partial half must not be reused.
    server.routes["/hello.aci"].etag = '"v2"'
    rkt("fetch", url, check=0)
    assert server.bytes_sent["/hello.aci"] == len(data) // 2 + len(data)
    assert rkt.images() == [IMG]


def test_without_a_validator_a_broken_download_is_not_resumed(rkt, server, image):
    data = image[0]
    url = serve(server, image, drop_after=1000)
    rkt("fetch", url, check=254)
    assert rkt.tmp_leftovers() == []  # nothing worth keeping
    rkt("fetch", url, check=0)
    assert "Range" not in server.seen("/hello.aci")[-1].headers
    assert server.bytes_sent["/hello.aci"] == 1000 + len(data)


def test_a_resumed_download_with_corrupted_bytes_fails_verification(rkt, server, image):
    data = image[0]
    url = serve(server, image, last_modified="Mon, 02 Jan 2006 15:04:05 GMT",
                drop_after=len(data) // 2)
    rkt("fetch", url, check=254)
    # Same validator, different bytes in the second half: the signature check catches it.
    route = server.routes["/hello.aci"]
    route.body = data[: len(data) // 2] + bytes(len(data) - len(data) // 2)
    out = rkt("fetch", url, check=254)
    assert out.stderr.startswith("rkt: ")
    assert rkt.images() == [] and rkt.tmp_leftovers() == []


# --- credentials and redirects ------------------------------------------------------------------


def test_basic_auth_from_auth_d(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci"].basic = ("alice", "s3cret")
    out = rkt("fetch", url, check=254)
    assert "401" in out.stderr
    auth(rkt, f"127.0.0.1:{server.port}", "basic", {"user": "alice", "password": "s3cret"})
    rkt("fetch", url, check=0)


def test_oauth_bearer_token_from_auth_d(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci"].bearer = "t0ken"
    auth(rkt, "127.0.0.1", "oauth", {"token": "t0ken"})
    rkt("fetch", url, check=0)
    assert server.seen("/hello.aci")[-1].headers["Authorization"] == "Bearer t0ken"


def test_credentials_are_not_sent_to_the_host_a_redirect_leads_to(rkt, server, image, ca):
    with TestServer(ca=ca) as other:
        other.add("/hello.aci", image[0])
        other.add("/hello.aci.asc", image[1])
        server.add("/hello.aci", redirect=other.url("/hello.aci"))
        server.add("/hello.aci.asc", redirect=other.url("/hello.aci.asc"))
        auth(rkt, f"127.0.0.1:{server.port}", "basic", {"user": "alice", "password": "s3cret"})
        rkt("fetch", server.url("/hello.aci"), check=0)
        assert server.seen("/hello.aci")[0].headers["Authorization"].startswith("Basic ")
        assert all("Authorization" not in r.headers for r in other.requests)


def test_redirect_from_https_to_http_is_refused_and_never_carries_credentials(rkt, server, image):
    with TestServer() as plain:
        plain.add("/hello.aci", image[0])
        plain.add("/hello.aci.asc", image[1])
        server.add("/hello.aci", redirect=plain.url("/hello.aci"))
        server.add("/hello.aci.asc", redirect=plain.url("/hello.aci.asc"))
        # the same host name: only the scheme (and port) changes
        auth(rkt, "127.0.0.1", "basic", {"user": "alice", "password": "s3cret"})
        out = rkt("fetch", server.url("/hello.aci"), check=254)
        assert "refusing the redirect from https to plain http" in out.stderr
        assert plain.requests == []
        rkt("--insecure-options=http", "fetch", server.url("/hello.aci"), check=0)
        assert plain.requests and all("Authorization" not in r.headers for r in plain.requests)


def test_redirect_loops_and_chains_are_capped(rkt, server, image):
    server.add("/a.aci", redirect=server.url("/b.aci"))
    server.add("/b.aci", redirect=server.url("/a.aci"))
    out = rkt("fetch", server.url("/a.aci"), check=254)
    assert "redirect loop" in out.stderr
    for i in range(15):
        server.add(f"/r{i}.aci", redirect=server.url(f"/r{i + 1}.aci"))
    out = rkt("fetch", server.url("/r0.aci"), check=254)
    assert "too many redirects" in out.stderr
    assert rkt.images() == []


# --- hostile answers ----------------------------------------------------------------------------


def test_a_huge_signature_is_refused(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].body = b"-----BEGIN PGP SIGNATURE-----\n" + b"A" * (2 << 20)
    out = rkt("fetch", url, check=254)
    assert "larger than" in out.stderr
    assert rkt.images() == [] and rkt.tmp_leftovers() == []


def test_a_manifest_without_the_expected_content_is_still_checked(rkt, server, tmp_path):
    # An image served under a trusted name but signed by nobody we trust.
    bad = build_aci(tmp_path / "bad.aci", image_manifest(NAME, "6.6"))
    with GpgSigner(tmp_path / "evil") as evil:
        server.add("/hello.aci", bad.read_bytes())
        server.add("/hello.aci.asc", evil.sign(bad).read_bytes())
    out = rkt("fetch", server.url("/hello.aci"), check=254)
    assert "signature made by unknown entity" in out.stderr
    assert rkt.images() == []


def test_connection_refused_is_a_clear_error(rkt):
    out = rkt("fetch", "https://127.0.0.1:1/hello.aci", check=254)
    assert out.stderr.startswith("rkt: ") and "refused" in out.stderr.lower()


def test_progress_bar_only_on_a_terminal(rkt, server, image):
    import pty
    
    url = serve(server, image)
    master, slave = pty.openpty()
    proc = subprocess.Popen(rkt.argv("fetch", url), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=rkt.env)
    os.close(slave)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0
    terminal = drain(master)
    text = terminal.decode()
    assert "Downloading ACI: [" in text and "KiB" in text and "/s" in text
    assert out.startswith("sha512-") and "Downloading" not in out


def test_credentials_never_go_over_plain_http(rkt, image):
    with TestServer() as plain:
        url = serve(plain, image)
        auth(rkt, "127.0.0.1", "basic", {"user": "alice", "password": "s3cret"})
        auth(rkt, f"127.0.0.1:{plain.port}", "oauth", {"token": "t0ken"})
        rkt("fetch", url, check=0)
        assert plain.requests and all("Authorization" not in r.headers for r in plain.requests)


def test_trust_reads_a_key_over_https_and_honours_tls_checks(tmp_path, server, image, ca):
    rkt = runner(tmp_path, ca)
    server.add("/key.asc", image[2].read_bytes())
    other = TestCA(tmp_path / "other-ca")
    out = rkt("trust", f"--prefix={NAME}", "--skip-fingerprint-review", server.url("/key.asc"),
              check=254, env=trusting(other))
    assert "certificate verify failed" in out.stderr
    rkt("--insecure-options=tls", "trust", f"--prefix={NAME}", "--skip-fingerprint-review",
        server.url("/key.asc"), check=0, env=trusting(other))
    fp = image[3].fingerprint.lower()
    assert (rkt.local_config / "trustedkeys/prefix.d" / NAME / fp).is_file()
    server.add("/missing.asc", status=404)
    out = rkt("trust", "--root", "--skip-fingerprint-review", server.url("/missing.asc"),
              check=254)
    assert "bad HTTP status code: 404" in out.stderr


def test_a_missing_signature_file_fails_before_downloading(rkt, server, image, tmp_path):
    url = serve(server, image)
    out = rkt("fetch", "--signature", tmp_path / "nope.asc", url, check=254)
    assert "no such file" in out.stderr
    assert server.requests == []


def test_a_signature_deferred_forever_is_an_error(rkt, server, image):
    url = serve(server, image)
    server.routes["/hello.aci.asc"].accepted = 100
    out = rkt("fetch", url, check=254)
    assert "asked to defer the download 6 times" in out.stderr
    assert rkt.images() == [] and rkt.tmp_leftovers() == []


def test_an_interrupted_fetch_resumes_where_it_stopped(rkt, server, image):
    import signal

    data = image[0]
    first = 512 * 1024
    url = serve(server, image, etag='"v1"', stall_after=first)
    proc = subprocess.Popen(rkt.argv("fetch", url), env=rkt.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # the server stalls after `first` bytes; Ctrl-C once rkt has written them all
        deadline = time.monotonic() + 60
        while _partial_size(rkt) < first and proc.poll() is None:
            assert time.monotonic() < deadline, "the first bytes never reached the disk"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 254  # click turns Ctrl-C into "rkt: aborted"
        assert "rkt: aborted" in proc.stderr.read().decode()
    finally:
        server.routes["/hello.aci"].go_on()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rkt.images() == [] and len(rkt.tmp_leftovers()) == 2
    rkt("fetch", url, check=0)
    assert server.seen("/hello.aci")[-1].headers["Range"] == f"bytes={first}-"
    assert server.bytes_sent["/hello.aci"] == len(data)  # nothing was sent twice
    assert rkt.images() == [IMG]


def _partial_size(rkt) -> int:
    """The size of the partial download in the store's tmp directory (0 if there is none)."""
    tmp = rkt.data_dir / "cas" / "tmp"
    sizes = [os.path.getsize(tmp / n) for n in rkt.tmp_leftovers()
             if n.startswith("download-") and "." not in n]
    return max(sizes, default=0)
