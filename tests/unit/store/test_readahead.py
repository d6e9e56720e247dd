"""The read-ahead reader: same bytes, errors raised in the reader, forward-only seeks, and a
thread that always stops."""

import hashlib
import io
import threading

import pytest

from rkt_core.store.readahead import ReadAhead, skip_to


def test_reads_give_the_source_bytes_in_full_and_tap_sees_all_of_them():
    data = bytes(range(256)) * 5000
    digest = hashlib.sha512()
    with ReadAhead(io.BytesIO(data), tap=digest.update, chunk=1000, depth=2) as reader:
        parts = [reader.read(777) for _ in range(3)]
        assert all(len(p) == 777 for p in parts)  # across chunk boundaries, still full reads
        rest = reader.read()
        assert reader.read(10) == b""
        assert digest.hexdigest() == hashlib.sha512(data).hexdigest()
    assert b"".join(parts) + rest == data


def test_an_error_in_the_thread_is_raised_by_the_read_that_reaches_it():
    class Failing(io.RawIOBase):
        def __init__(self):
            self.calls = 0

        def read(self, size=-1):
            self.calls += 1
            if self.calls > 2:
                raise ValueError("corrupt stream")
            return b"x" * size

    with ReadAhead(Failing(), chunk=10) as reader:
        assert reader.read(20) == b"x" * 20
        with pytest.raises(ValueError, match="corrupt stream"):
            reader.read(10)


def test_seek_goes_forward_only_and_tell_follows():
    with ReadAhead(io.BytesIO(b"0123456789" * 100), chunk=7) as reader:
        reader.seek(15)
        assert reader.tell() == 15
        assert reader.read(3) == b"567"
        reader.seek(2, io.SEEK_CUR)
        assert reader.read(1) == b"0"
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(0)
        reader.seek(5000)  # past the end: stops at the end
        assert reader.tell() == 1000


def test_closing_stops_a_thread_blocked_on_a_full_queue():
    endless = type("Endless", (), {"read": lambda self, size: b"y" * size})()
    before = threading.active_count()
    reader = ReadAhead(endless, chunk=10, depth=1)
    assert reader.read(5) == b"yyyyy"
    reader.close()
    assert threading.active_count() == before


def test_skip_to_reads_on_through_the_reader():
    source = io.BytesIO(b"abcdef")
    skip_to(source, 4)
    assert source.read() == b"ef"
