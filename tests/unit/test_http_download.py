"""rkt_core.remote.download against a real loopback server: whole and resumed transfers, restarts when the
resource changed, caps, statuses, and what is left on disk."""

import io
import os

import pytest

from rkt_core.remote.download import BROKEN, download, max_age, partial_name
from rkt_core.remote.httpclient import HttpClient, HttpError, HttpOptions
from rkt_core.remote.progress import Progress
from rkt_core.testing.httpserver import TestServer

DATA = os.urandom(300_000)


@pytest.fixture
def server():
    with TestServer() as srv:
        yield srv


@pytest.fixture
def client():
    with HttpClient(HttpOptions()) as c:
        yield c


@pytest.fixture
def partial(tmp_path):
    return str(tmp_path / "part")


def _left(partial):
    return sorted(os.listdir(os.path.dirname(partial)))


def test_whole_download_returns_the_open_file_and_leaves_no_names(server, client, partial):
    server.add("/x", DATA, etag='"1"', headers={"Cache-Control": "max-age=60"})
    result = download(client, server.url("/x"), partial)
    assert result.file.read() == DATA and result.size == len(DATA) and result.resumed_at == 0
    assert result.etag == '"1"' and max_age(result.cache_control) == 60
    result.file.close()
    assert _left(partial) == []


def test_broken_transfer_keeps_the_partial_and_resumes_with_the_missing_bytes(server, client, partial):
    server.add("/x", DATA, etag='"1"', drop_after=100_000)
    with pytest.raises(HttpError) as e:
        download(client, server.url("/x"), partial)
    assert e.value.status == BROKEN
    assert os.path.getsize(partial) == 100_000 and _left(partial) == ["part", "part.meta"]
    result = download(client, server.url("/x"), partial)
    assert result.resumed_at == 100_000 and result.file.read() == DATA
    assert server.bytes_sent["/x"] == len(DATA)
    assert _left(partial) == []


def test_a_server_ignoring_if_range_with_a_new_etag_restarts_from_zero(server, client, partial):
    server.add("/x", DATA, etag='"1"', drop_after=100_000, if_range=False)
    with pytest.raises(HttpError):
        download(client, server.url("/x"), partial)
    new = os.urandom(200_000)
    server.add("/x", new, etag='"2"', if_range=False)
    result = download(client, server.url("/x"), partial)
    assert result.file.read() == new and result.resumed_at == 0


def test_a_server_ignoring_range_sends_everything_and_that_is_used(server, client, partial):
    server.add("/x", DATA, etag='"1"', drop_after=100_000, ranges=False)
    with pytest.raises(HttpError):
        download(client, server.url("/x"), partial)
    assert download(client, server.url("/x"), partial).file.read() == DATA


def test_416_for_a_partial_that_is_already_too_long_restarts(server, client, partial):
    server.add("/x", DATA, etag='"1"')
    with open(partial, "wb") as f:
        f.write(DATA + b"extra")
    with open(partial + ".meta", "w") as f:
        f.write('{"url": "%s", "etag": "\\"1\\"", "last_modified": ""}' % server.url("/x"))
    assert download(client, server.url("/x"), partial).file.read() == DATA


def test_a_partial_of_another_url_is_not_reused(server, client, partial):
    server.add("/x", DATA, etag='"1"')
    with open(partial, "wb") as f:
        f.write(b"junk")
    with open(partial + ".meta", "w") as f:
        f.write('{"url": "http://elsewhere/x", "etag": "\\"1\\""}')
    assert download(client, server.url("/x"), partial).file.read() == DATA
    assert "Range" not in server.seen("/x")[-1].headers


def test_limit_status_and_not_modified(server, client, partial):
    server.add("/x", DATA, etag='"1"')
    with pytest.raises(HttpError, match="larger than 1000 bytes"):
        download(client, server.url("/x"), partial, limit=1000)
    with pytest.raises(HttpError, match="bad HTTP status code: 404"):
        download(client, server.url("/missing"), partial)
    result = download(client, server.url("/x"), partial, if_none_match='"1"')
    assert result.not_modified and result.file is None
    assert _left(partial) == []


def test_progress_is_told_the_total_and_every_byte(server, client, partial):
    server.add("/x", DATA)
    bars = []

    def progress(total, done):
        bars.append(Progress("Downloading", total, done, stream=io.StringIO()))
        return bars[-1]

    download(client, server.url("/x"), partial, progress=progress).file.close()
    assert bars[0].total == len(DATA) and bars[0].done == len(DATA)


def test_partial_names_differ_per_url():
    assert partial_name("https://a/x.aci") != partial_name("https://a/y.aci")
    assert max_age("no-store") == 0 and max_age('max-age="5"') == 5 and max_age("") == 0


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_shows_bytes_rate_and_eta():
    stream = _Tty()
    bar = Progress("Downloading ACI", total=10 << 20, stream=stream)
    bar._last = 0  # draw on the next update
    bar.update(5 << 20)
    bar.finish()
    text = stream.getvalue()
    assert "Downloading ACI: [" in text and "5.0 MiB/10.0 MiB" in text
    assert "/s" in text and "ETA" in text and text.endswith("\n")


def test_no_progress_output_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress("Downloading ACI", total=100, stream=stream)
    bar._last = 0
    bar.update(50)
    bar.finish()
    assert stream.getvalue() == ""
