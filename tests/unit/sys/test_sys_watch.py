"""DirectoryWatch: a pollable wait for names to appear in a directory (real inotify)."""

import os
import select

import pytest

from rkt_core.sys.watch import DirectoryWatch


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_created_and_moved_in_names_wake_the_poller(tmp_path):
    with DirectoryWatch(str(tmp_path), ["a", "b"]) as watch:
        assert not _readable(watch.fileno()) and not watch.has_all()
        (tmp_path / "a").write_text("0")
        assert _readable(watch.fileno())
        assert not watch.has_all()  # b is missing
        assert not _readable(watch.fileno())  # the events were read
        (tmp_path / ".b.tmp").write_text("0")
        os.rename(tmp_path / ".b.tmp", tmp_path / "b")  # as the reaper writes a status
        assert _readable(watch.fileno()) and watch.has_all()


def test_names_there_before_the_watch_count(tmp_path):
    (tmp_path / "a").write_text("0")
    with DirectoryWatch(str(tmp_path), ["a"]) as watch:
        assert watch.has_all()


def test_a_missing_directory_is_an_os_error(tmp_path):
    with pytest.raises(OSError, match="cannot watch"):
        DirectoryWatch(str(tmp_path / "missing"), ["a"])
