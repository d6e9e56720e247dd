"""File trees compared before and after a command: what changed under a directory."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under ``top`` with its type, mode, owner and content hash."""
    state = {}
    for path in sorted(Path(top).rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        state[str(path.relative_to(top))] = (st.st_mode, st.st_uid, st.st_gid, digest)
    return state
