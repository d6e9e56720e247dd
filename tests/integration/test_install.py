"""``rkt install`` and the rkt group: members read (list, status, image list, cat-manifest) and
change nothing; only root writes, whoever made the store first.

The member runs its own regular (non-editable) install of rkt, made in a world-readable temporary
directory: it must not depend on being able to read the checkout (a clone in root's home is 0700).
"""

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
from rkt_core.testing.trees import snapshot

pytestmark = pytest.mark.root
RKT = str(Path(sys.executable).parent / "rkt")
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = os.path.realpath(sys.executable)  # the interpreter behind the venv: any user runs it
MEMBER, OUTSIDER = "rkt-test-member", "rkt-test-outsider"
READ_ONLY = "members of group rkt can only list and inspect"


@pytest.fixture(scope="session")
def member_rkt():
    """The ``rkt`` command of a regular install of rkt-core and every plugin, built from this
    checkout as wheels and installed (with their dependencies, from pip's configured index) into
    a venv that any user can read."""
    base = Path(tempfile.mkdtemp(prefix="rkt-member-install-"))
    try:
        base.chmod(0o755)
        # Built from a copy: setuptools writes build/ and *.egg-info/ into the tree it builds.
        source = base / "src"
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "demo",
            "*.aci"))
        wheels = base / "wheels"
        projects = [source] + sorted(p.parent for p in source.glob("rkt_plugins/*/pyproject.toml"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "--wheel-dir", str(wheels), *map(str, projects)],
                       check=True, cwd=base)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(base / "venv")], check=True)
        subprocess.run([str(base / "venv" / "bin" / "pip"), "install", "--quiet",
                        *map(str, sorted(wheels.glob("*.whl")))], check=True, cwd=base)
        yield str(base / "venv" / "bin" / "rkt")
    finally:
        shutil.rmtree(base)


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


@pytest.fixture
def as_user(member_rkt, data_dir):
    """``as_user(user, *args)`` runs rkt on ``data_dir``: root's (``user`` None) from this venv,
    anyone else's from the member install."""
    def run(user, *args):
        argv = [RKT, f"--dir={data_dir}", *args]
        if user:
            argv = ["runuser", "-u", user, "--", member_rkt, f"--dir={data_dir}", *args]
        return subprocess.run(argv, capture_output=True, text=True, cwd="/")
    return run


def installed_store_with_a_pod(as_user, data_dir, tmp_path) -> tuple[Path, str, str]:
    """After ``rkt install``, root fetches and runs a busybox image: (image, image key, pod uuid)."""
    out = as_user(None, "install")
    assert out.returncode == 0 and "successfully created" in out.stderr, out.stderr
    image = busybox_aci(tmp_path / "bb.aci", exec=["/bin/echo", "root's image"])
    key = as_user(None, "--insecure-options=image", "fetch", "--full", str(image)).stdout.strip()
    run = as_user(None, "run", "--stage1-name=fly", key)
    assert run.returncode == 0 and run.stdout == "root's image\n", run.stderr
    uuid = as_user(None, "list", "--no-legend", "--full").stdout.split("\t")[0]
    return image, key, uuid


def test_group_members_can_list_after_install(accounts, as_user, data_dir, tmp_path):
    _, key, uuid = installed_store_with_a_pod(as_user, data_dir, tmp_path)
    gid = grp.getgrnam("rkt").gr_gid
    st = data_dir.stat()
    assert st.st_gid == gid and st.st_mode & 0o7777 == 0o2750
    assert (data_dir / "cas" / "tree").stat().st_mode & 0o777 == 0o700

    listing = as_user(MEMBER, "list", "--no-legend")
    assert listing.returncode == 0, listing.stderr
    assert "exited" in listing.stdout
    status = as_user(MEMBER, "status", uuid)
    assert status.returncode == 0 and "app-busybox=0" in status.stdout, status.stderr
    images = as_user(MEMBER, "image", "list", "--no-legend")
    assert images.returncode == 0 and "example.com/busybox:1.0" in images.stdout, images.stderr
    manifest = as_user(MEMBER, "image", "cat-manifest", key)
    assert manifest.returncode == 0 and '"example.com/busybox"' in manifest.stdout, manifest.stderr
    assert as_user(MEMBER, "cat-manifest", uuid).returncode == 0

    denied = as_user(OUTSIDER, "image", "list")
    assert denied.returncode == 254 and "rkt:" in denied.stderr


def test_members_change_nothing_and_root_runs_its_own_image(accounts, as_user, data_dir, tmp_path):
    image, key, uuid = installed_store_with_a_pod(as_user, data_dir, tmp_path)
    impostor = busybox_aci(data_dir.parent / "impostor.aci", exec=["/bin/echo", "member's image"])
    before = snapshot(data_dir)
    refused = {
        "fetching images": ["--insecure-options=image", "fetch", str(impostor)],
        "running pods": ["--insecure-options=image", "run", "--stage1-name=fly", str(impostor)],
        "preparing pods": ["prepare", "--stage1-name=fly", key],
        "garbage-collecting pods": ["gc", "--grace-period=0s"],
        "removing pods": ["rm", uuid],
        "stopping pods": ["stop", uuid],
        "removing images": ["image", "rm", key],
        "garbage-collecting images": ["image", "gc", "--grace-period=0s"],
        "verifying images": ["image", "verify", key],
        "rebuilding the store database": ["image", "rebuild-db"],
    }
    for activity, args in refused.items():
        out = as_user(MEMBER, *args)
        assert out.returncode == 254, (args, out.stdout, out.stderr)
        assert (f"rkt: {activity} needs write access to {data_dir} (owned by root): {READ_ONLY}"
                in out.stderr), (args, out.stderr)
        assert 'moving pod "' not in out.stderr and "Garbage collecting" not in out.stdout
    assert as_user(MEMBER, "install").returncode == 254

    # Writing the store behind rkt's back is impossible too.
    db = data_dir / "cas" / "db" / "store.sqlite3"
    attack = (f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
              "c.execute('UPDATE aciinfo SET latest = 1'); c.commit()")
    out = subprocess.run(["runuser", "-u", MEMBER, "--", SYSTEM_PYTHON, "-I", "-c", attack],
                         capture_output=True, text=True, cwd="/")
    assert out.returncode != 0 and "readonly database" in out.stderr, out.stderr
    for target in (db, data_dir / "cas" / "blob" / "sha512" / key[7:9] / "planted",
                   data_dir / "cas" / "blob" / "sha512" / "planted", data_dir / "pods" / "run" / "x"):
        out = subprocess.run(["runuser", "-u", MEMBER, "--", "/bin/sh", "-c", f": >> '{target}'"],
                             capture_output=True, text=True, cwd="/")
        assert out.returncode != 0 and "Permission denied" in out.stderr, (target, out.stderr)
    assert snapshot(data_dir) == before

    run = as_user(None, "--insecure-options=image", "run", "--stage1-name=fly", "example.com/busybox")
    assert run.returncode == 0 and run.stdout == "root's image\n", (run.stdout, run.stderr)


def test_members_export_and_extract_images_into_their_own_directory(accounts, as_user, data_dir, tmp_path):
    _, key, _ = installed_store_with_a_pod(as_user, data_dir, tmp_path)
    out_dir = data_dir.parent / "member"
    out_dir.mkdir()
    shutil.chown(out_dir, MEMBER)
    export = as_user(MEMBER, "image", "export", key, str(out_dir / "bb.aci"))
    assert export.returncode == 0, export.stderr
    blob = data_dir / "cas" / "blob" / "sha512" / key[7:9] / key
    assert (out_dir / "bb.aci").read_bytes() == blob.read_bytes()
    assert (out_dir / "bb.aci").stat().st_uid != 0
    extract = as_user(MEMBER, "image", "extract", "--rootfs-only", key, str(out_dir / "rootfs"))
    assert extract.returncode == 0, extract.stderr
    assert (out_dir / "rootfs" / "bin" / "busybox").is_file()


def test_install_repairs_a_store_made_by_an_older_rkt(accounts, as_user, data_dir, tmp_path):
    image = busybox_aci(tmp_path / "bb.aci", exec=["/bin/echo", "root's image"])
    key = as_user(None, "--insecure-options=image", "fetch", "--full", str(image)).stdout.strip()
    db = data_dir / "cas" / "db" / "store.sqlite3"
    gid, member = grp.getgrnam("rkt").gr_gid, pwd.getpwnam(MEMBER).pw_uid
    # What older versions left: group-writable directories and database, a WAL database, a
    # directory a member created first, and what that member could then plant there.
    for path in [data_dir / "cas", *(data_dir / "cas").rglob("*")]:
        if path.is_dir():
            os.chmod(path, 0o2770)
    subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(db)!r})"
                    ".execute('PRAGMA journal_mode=WAL').fetchone()"], check=True)
    os.chmod(db, 0o660)
    sha512 = data_dir / "cas" / "blob" / "sha512"
    os.chown(sha512, member, gid)
    planted = sha512 / "ab" / ("sha512-ab" + "0" * 62)
    planted.parent.mkdir()
    os.symlink("/etc/shadow", planted)
    os.chown(planted.parent, member, gid)

    refused = as_user(None, "image", "list")
    assert refused.returncode == 254 and "rkt install" in refused.stderr, refused.stderr
    assert "refusing to use the store" in refused.stderr and str(data_dir / "cas") in refused.stderr

    out = as_user(None, "install")
    assert out.returncode == 0, out.stderr
    assert f"removed {planted}: the store keeps only files and directories" in out.stderr
    assert not os.path.lexists(planted) and Path("/etc/shadow").exists()
    for path in [data_dir, *data_dir.rglob("*")]:
        if "tree" in path.relative_to(data_dir).parts[:2] or "pods" in path.parts:
            continue
        st = path.lstat()
        assert st.st_mode & 0o022 == 0, path
        assert st.st_uid == 0 and st.st_gid == gid, path
    with open(db, "rb") as f:
        assert f.read(20)[18] == 1  # a rollback journal now, not WAL
    images = as_user(MEMBER, "image", "list", "--no-legend")
    assert images.returncode == 0 and "example.com/busybox" in images.stdout, images.stderr
    run = as_user(None, "run", "--stage1-name=fly", key)
    assert run.returncode == 0 and run.stdout == "root's image\n", run.stderr


def test_a_hot_journal_seen_by_a_member_is_explained(accounts, as_user, data_dir, tmp_path):
    installed_store_with_a_pod(as_user, data_dir, tmp_path)
    db = data_dir / "cas" / "db" / "store.sqlite3"
    crash = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
             "c.execute('PRAGMA cache_size=1'); c.execute('BEGIN'); c.execute('CREATE TABLE j (x)');"
             "[c.execute('INSERT INTO j VALUES (randomblob(1000))') for _ in range(300)]; os._exit(0)")
    subprocess.run([sys.executable, "-c", crash, str(db)], check=True)
    out = as_user(MEMBER, "image", "list")
    assert out.returncode == 254 and "interrupted write" in out.stderr, out.stderr
    assert "run any rkt command as root to recover it" in out.stderr
    assert as_user(None, "image", "list").returncode == 0
    assert as_user(MEMBER, "image", "list").returncode == 0


def test_the_owner_refuses_a_store_others_could_change(accounts, as_user, data_dir, tmp_path):
    installed_store_with_a_pod(as_user, data_dir, tmp_path)
    os.chmod(data_dir / "cas" / "db", 0o2770)
    out = as_user(None, "--insecure-options=image", "fetch", str(tmp_path / "bb.aci"))
    assert out.returncode == 254
    assert f"{data_dir / 'cas' / 'db'} is group-writable" in out.stderr and "rkt install" in out.stderr
    assert as_user(None, "install").returncode == 0
    assert as_user(None, "image", "list").returncode == 0


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
