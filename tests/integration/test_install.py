"""``rkt install``: members of the ``rkt`` group can list pods and images without root."""

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root
RKT = str(Path(sys.executable).parent / "rkt")
MEMBER, OUTSIDER = "rkt-test-member", "rkt-test-outsider"


@pytest.fixture
def accounts():
    """The rkt group (made if missing) with one member, and one user outside it; removed after."""
    made_group = False
    try:
        grp.getgrnam("rkt")
    except KeyError:
        subprocess.run(["groupadd", "--system", "rkt"], check=True)
        made_group = True
    subprocess.run(["useradd", "--no-create-home", "-G", "rkt", MEMBER], check=True)
    subprocess.run(["useradd", "--no-create-home", OUTSIDER], check=True)
    try:
        yield
    finally:
        for user in (MEMBER, OUTSIDER):
            subprocess.run(["userdel", user], check=False)
        if made_group:
            subprocess.run(["groupdel", "rkt"], check=False)


@pytest.fixture
def data_dir():
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="rkt-install-"))
    base.chmod(0o755)
    yield base / "data"
    shutil.rmtree(base)


def rkt_as(user, data, *args):
    argv = [RKT, f"--dir={data}", *args]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, cwd="/")


def test_group_members_can_list_after_install(accounts, data_dir, tmp_path):
    out = rkt_as(None, data_dir, "install")
    assert out.returncode == 0 and "successfully created" in out.stderr
    gid = grp.getgrnam("rkt").gr_gid
    st = data_dir.stat()
    assert st.st_gid == gid and st.st_mode & 0o7777 == 0o2750
    assert (data_dir / "cas" / "tree").stat().st_mode & 0o777 == 0o700
    image = busybox_aci(tmp_path / "bb.aci")
    assert rkt_as(None, data_dir, "--insecure-options=image", "run", "--stage1-name=fly",
                  str(image)).returncode == 0
    uuid = rkt_as(None, data_dir, "list", "--no-legend", "--full").stdout.split("\t")[0]

    listing = rkt_as(MEMBER, data_dir, "list", "--no-legend")
    assert listing.returncode == 0, listing.stderr
    assert "exited" in listing.stdout
    status = rkt_as(MEMBER, data_dir, "status", uuid)
    assert status.returncode == 0 and "app-busybox=0" in status.stdout, status.stderr
    images = rkt_as(MEMBER, data_dir, "image", "list", "--no-legend")
    assert images.returncode == 0 and "example.com/busybox:1.0" in images.stdout, images.stderr

    denied = rkt_as(OUTSIDER, data_dir, "image", "list")
    assert denied.returncode == 254 and "rkt:" in denied.stderr
    assert pwd.getpwnam(OUTSIDER)  # the account existed for the check above


def test_install_without_rkt_group_explains(data_dir, monkeypatch, capsys):
    from rkt_core.cli.main import main

    def no_group(name):
        raise KeyError(name)

    monkeypatch.setattr(grp, "getgrnam", no_group)
    with pytest.raises(SystemExit) as exit_:
        main([f"--dir={data_dir}", "install"])
    assert exit_.value.code == 254
    assert 'group "rkt" not found' in capsys.readouterr().err
    assert not os.path.exists(data_dir)
