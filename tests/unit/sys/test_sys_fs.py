"""write_atomic: a reader sees the old content or the new, never a part; fsync only when asked."""

import os

import pytest

from rkt_core.sys import fs


def test_replaces_the_content_with_the_mode_asked(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    fs.write_atomic(str(target), b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(outside)
    fs.write_atomic(str(tmp_path / "link"), b"new")
    assert outside.read_bytes() == b"keep"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_bytes() == b"new"


@pytest.mark.parametrize("durable, fsyncs", [(True, 2), (False, 0)])
def test_fsyncs_the_file_and_its_directory_only_when_durable(tmp_path, monkeypatch, durable, fsyncs):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    fs.write_atomic(str(tmp_path / "f"), b"x", durable=durable)
    assert len(calls) == fsyncs


def test_a_taken_temporary_name_is_skipped(tmp_path, monkeypatch):
    names = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(names))
    (tmp_path / (".tmp-" + "00" * 6)).write_bytes(b"someone else's")
    fs.write_atomic(str(tmp_path / "f"), b"x")
    assert (tmp_path / "f").read_bytes() == b"x"
    assert (tmp_path / (".tmp-" + "00" * 6)).read_bytes() == b"someone else's"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def fail(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fchmod", fail)
    with pytest.raises(OSError):
        fs.write_atomic(str(target), b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
