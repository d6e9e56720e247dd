"""``rkt version``."""

import importlib.util
import platform
import shutil

import click

from .. import APPC_VERSION, __version__
from .main import RktCommand

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}


@click.command(cls=RktCommand)
def version() -> None:
    """Print the version and exit."""
    machine = platform.machine()
    tpm = "+" if importlib.util.find_spec("rkt_tpm") else "-"
    journal = "+" if shutil.which("journalctl") else "-"
    click.echo(f"rkt Version: {__version__}")
    click.echo(f"appc Version: {APPC_VERSION}")
    click.echo(f"Python Version: {platform.python_version()}")
    click.echo(f"Python OS/Arch: {platform.system().lower()}/{_ARCH.get(machine, machine)}")
    click.echo(f"Features: {tpm}TPM {journal}SDJOURNAL")
