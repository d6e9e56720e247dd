"""Lock files that their last user unlinks: a lock is never taken on an unlinked file beside the
holder of the file now at its path."""

import os

import pytest

from rkt_core.sys.lock import FileLock, LockBusyError


def test_a_lock_on_a_file_unlinked_meanwhile_is_taken_on_the_file_at_the_path(tmp_path):
    path = str(tmp_path / "key")
    remover = FileLock(path, create=True).exclusive()
    waiter = FileLock(path, create=True)  # opened the file the remover is about to unlink
    os.unlink(path)
    remover.close()
    newcomer = FileLock(path, create=True).exclusive()  # made the file again, and holds it
    with pytest.raises(LockBusyError):
        waiter.exclusive(blocking=False)
    newcomer.close()
    waiter.exclusive(blocking=False)
    assert os.fstat(waiter.fd).st_ino == os.stat(path).st_ino
    waiter.close()


def test_a_lock_on_a_file_unlinked_and_not_made_again_creates_it(tmp_path):
    path = str(tmp_path / "key")
    waiter = FileLock(path, create=True)
    os.unlink(path)
    waiter.shared(blocking=False)
    assert os.fstat(waiter.fd).st_ino == os.stat(path).st_ino
    waiter.close()
