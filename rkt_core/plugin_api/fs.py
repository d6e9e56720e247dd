"""Crash-safe file writes: temp file, fsync, rename, fsync of the directory."""

from ..sys.fs import fsync_dir, rename_durable, write_atomic

__all__ = ["fsync_dir", "rename_durable", "write_atomic"]
