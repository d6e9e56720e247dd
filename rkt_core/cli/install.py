"""``rkt install``: set up the data directory with rkt v0.14's permissions.

Directories belong to root and the ``rkt`` group with the setgid bit, so members of ``rkt`` can
run the read-only commands (``list``, ``status``, ``image list``) without root; the rendered
trees (``cas/tree``) stay root-only, hiding setuid binaries of untrusted images.
"""

import grp
import os

import click

from ..errors import RktError
from .main import RktCommand, get_context

SETGID = 0o2000
DIRS = {
    ".": 0o750, "tmp": 0o750, "locks": 0o750,
    "cas": 0o770, "cas/db": 0o770, "cas/imagelocks": 0o770, "cas/imageManifest": 0o770,
    "cas/blob": 0o770, "cas/tmp": 0o770, "cas/tree": 0o700, "cas/treestorelocks": 0o700,
    "pods": 0o750, "pods/embryo": 0o750, "pods/prepare": 0o750, "pods/prepared": 0o750,
    "pods/run": 0o750, "pods/exited-garbage": 0o750, "pods/garbage": 0o750,
}
DB_FILE_MODE = 0o660


@click.command(cls=RktCommand)
def install() -> None:
    """Set up rkt data directories with correct permissions."""
    ctx = get_context()
    try:
        gid = grp.getgrnam("rkt").gr_gid
    except KeyError:
        raise RktError('group "rkt" not found', hint="create it first: groupadd --system rkt") from None
    for name, mode in sorted(DIRS.items()):
        path = os.path.join(ctx.data_dir, name)
        os.makedirs(path, exist_ok=True)
        os.chown(path, 0, gid)
        os.chmod(path, mode | SETGID)
    ctx.store.db.close()  # creates the database if it is missing
    db_dir = os.path.join(ctx.data_dir, "cas", "db")
    for name in os.listdir(db_dir):
        path = os.path.join(db_dir, name)
        if os.path.isfile(path):
            os.chown(path, 0, gid)
            os.chmod(path, DB_FILE_MODE)
    click.echo("rkt directory structure successfully created.", err=True)
