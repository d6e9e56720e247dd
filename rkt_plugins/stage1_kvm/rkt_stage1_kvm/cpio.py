"""Writing cpio archives in the "newc" format the kernel unpacks as an initramfs."""

from __future__ import annotations

import stat


class Writer:
    """An archive built in memory: directories, files and symlinks, owned by root."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.inode = 1
        self.names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.strip("/")
        parent = name.rpartition("/")[0]
        if parent and parent not in self.names:
            self.directory(parent)
        if name in self.names:
            return
        self.names.add(name)
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0,
                  0, 0, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.inode += 1
        self.parts += [header, encoded, _pad(len(header) + len(encoded)), data, _pad(len(data))]

    def directory(self, name: str, mode: int = 0o755) -> None:
        """A directory (and its missing parents)."""
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """A regular file (its missing parent directories too)."""
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        """A symbolic link."""
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        """The archive, with its trailer."""
        self.parts.append(b"")
        self._trailer()
        return b"".join(self.parts)

    def _trailer(self) -> None:
        encoded = b"TRAILER!!!\0"
        header = b"070701" + b"".join(b"%08X" % v for v in (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                                           len(encoded), 0))
        self.parts += [header, encoded, _pad(len(header) + len(encoded))]


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)
