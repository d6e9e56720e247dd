"""``rkt version``."""

import os
import sys

from .. import APPC_VERSION, __version__
from .declare import command

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}


@command()
def version() -> None:
    """Print the version and exit."""
    from importlib.util import find_spec

    system = os.uname()
    tpm = "+" if find_spec("rkt_tpm") else "-"
    journal = "+" if any(os.path.isfile(p) and os.access(p, os.X_OK)
                         for p in (os.path.join(d, "journalctl") for d in os.get_exec_path())) else "-"
    print(f"rkt Version: {__version__}\n"
          f"appc Version: {APPC_VERSION}\n"
          f"Python Version: {sys.version.split()[0]}\n"
          f"Python OS/Arch: {system.sysname.lower()}/{_ARCH.get(system.machine, system.machine)}\n"
          f"Features: {tpm}TPM {journal}SDJOURNAL", flush=True)
