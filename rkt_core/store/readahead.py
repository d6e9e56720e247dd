"""Reading a stream ahead in a background thread, so that decompressing or hashing it overlaps
with what the reader does with the data (parsing a tar, creating files).

zlib, bz2, lzma, hashlib and file reads release the GIL, so on two cores a fetch decompresses
while it checks and writes, and a render reads and hashes an image while it extracts it.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import BinaryIO, Callable

CHUNK = 1 << 20


class ReadAhead(io.RawIOBase):
    """A reader of ``source`` whose reads happen in a thread, up to ``depth`` chunks ahead.

    ``tap``, if given, sees every chunk in that thread before it is handed over (e.g. a digest's
    ``update``): when :meth:`read` returns end-of-file, ``tap`` has seen everything. An error in
    the thread is raised by the :meth:`read` that reaches it. Use as a context manager (or call
    :meth:`close`): closing stops the thread, even when it is blocked on a full queue.
    """

    def __init__(self, source: BinaryIO, *, tap: Callable[[bytes], object] | None = None,
                 chunk: int = CHUNK, depth: int = 8):
        super().__init__()
        self._source = source
        self._tap = tap
        self._chunk = chunk
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._view = memoryview(b"")
        self._done = False
        self._position = 0
        self._thread = threading.Thread(target=self._produce, name="rkt-readahead", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._source.read(self._chunk)
                if data and self._tap is not None:
                    self._tap(data)
                self._put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the reader, raised there
            self._put(e)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Make the current chunk non-empty; False at the end of the stream."""
        while not self._view:
            if self._done:
                return False
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
                return False
            self._view = memoryview(item)
        return True

    def readinto(self, buffer) -> int:
        if not self._fill():
            return 0
        size = min(len(buffer), len(self._view))
        buffer[:size] = self._view[:size]
        self._view = self._view[size:]
        self._position += size
        return size

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes, fewer only at the end (all that is left when negative), as
        ``tarfile`` expects of a file; a read within the current chunk costs one copy."""
        if size is None or size < 0:
            return self.readall()
        if not self._fill():
            return b""
        if len(self._view) >= size:
            data = bytes(self._view[:size])
            self._view = self._view[size:]
            self._position += size
            return data
        parts = []
        while size > 0 and self._fill():
            part = self._view[:size]
            parts.append(bytes(part))
            self._view = self._view[len(part):]
            self._position += len(part)
            size -= len(part)
        return b"".join(parts)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Skip forward to ``offset`` (from the start); going back is not possible."""
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("ReadAhead seeks from the start or the current position")
        skip_to(self, offset)
        return self._position

    def close(self) -> None:
        """Stop the thread and wait for it."""
        if not self.closed:
            self._stop.set()
            self._thread.join()
        super().close()


def skip_to(reader, offset: int) -> None:
    """Read ``reader`` (which has ``tell``) on to ``offset``, or to its end if shorter; refuse
    to go back."""
    position = reader.tell()
    if offset < position:
        raise io.UnsupportedOperation(f"cannot seek back from {position} to {offset}")
    while position < offset:
        data = reader.read(min(CHUNK, offset - position))
        if not data:
            return
        position += len(data)
