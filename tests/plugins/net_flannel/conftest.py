"""The flannel tests as root use the networking fixtures of the net_cni tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "net_cni"))

from netcheck import lease_directories, rkt  # noqa: E402,F401 - fixtures
