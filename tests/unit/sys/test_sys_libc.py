"""rkt_core.sys.libc: the one seam between rkt_core and the C library."""

import errno
import os

import pytest

from rkt_core.sys import fs
from rkt_core.sys import libc as seam


def test_a_failing_call_raises_oserror_with_errno_and_what_failed(fake_libc):
    fake_libc.fail["umount2"] = errno.EBUSY
    with pytest.raises(OSError, match=r"^\[Errno 16\] cannot unmount /x: Device or resource "
                                      r"busy$") as failure:
        seam.call("umount2", b"/x", 0, what="cannot unmount /x")
    assert failure.value.errno == errno.EBUSY
    assert fake_libc.calls == [("umount2", b"/x", 0)]


def test_syncfs_goes_through_the_seam(fake_libc, tmp_path):
    fs.syncfs(str(tmp_path))
    assert [c[0] for c in fake_libc.calls] == ["syncfs"]
    fake_libc.fail["syncfs"] = errno.EIO
    with pytest.raises(OSError, match=f"cannot sync the filesystem of {tmp_path}: "
                                      "Input/output error"):
        fs.syncfs(str(tmp_path))


def test_the_real_library_reports_errno(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert seam.call("syncfs", fd, what="sync") == 0
        with pytest.raises(OSError) as failure:
            seam.call("setns", fd, 0, what="join a directory")  # not a namespace fd
        assert failure.value.errno == errno.EINVAL
        assert str(failure.value).endswith("join a directory: Invalid argument")
    finally:
        os.close(fd)
    with pytest.raises(OSError) as failure:
        seam.call("syncfs", fd, what="sync a closed fd")
    assert failure.value.errno == errno.EBADF
