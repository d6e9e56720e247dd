"""Pod commands end to end with the fly flavor: prepare, run-prepared, list, status, rm, gc."""

import json
import os

import pytest

from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/sh", "-c", "exit 3"])


def cells(line: str) -> list[str]:
    return [c for c in line.split("\t") if c]


def test_prepare_then_run_prepared_once(rkt, image):
    out = rkt("prepare", "--stage1-name=fly", image, check=0)
    uuid = out.stdout.strip()
    assert len(uuid) == 36
    assert "state=prepared" in rkt("status", uuid, check=0).stdout
    assert cells(rkt("list", "--no-legend", check=0).stdout)[3] == "prepared"
    assert rkt("run-prepared", uuid[:8]).returncode == 3
    status = rkt("status", uuid, check=0).stdout
    assert "state=exited" in status and "app-bb=3" not in status and "app-busybox=3" in status
    again = rkt("run-prepared", uuid, check=254)
    assert "is not prepared" in again.stderr


def test_list_full_and_json(rkt, image):
    rkt("run", "--stage1-name=fly", image)
    fields = cells(rkt("list", "--full", "--no-legend", check=0).stdout.splitlines()[0])
    assert len(fields[0]) == 36 and fields[1] == "busybox" and fields[2] == "example.com/busybox:1.0"
    assert fields[3].startswith("sha512-") and len(fields[3]) == 19 and fields[4] == "exited"
    header = rkt("list", "--full", check=0).stdout.splitlines()[0]
    assert cells(header) == ["UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE",
                                                     "CREATED", "STARTED", "NETWORKS"]
    (pod,) = json.loads(rkt("list", "--format=json", check=0).stdout)
    assert pod["state"] == "exited" and pod["app_names"] == ["busybox"]
    assert pod["apps"][0]["exit_code"] == 3 and pod["created_at"] > 0


def test_status_wait_returns_when_the_pod_exits(rkt, image, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    pod = rkt.start("--stage1-name=fly", f"--volume=gate,kind=host,source={gate}", image,
                    "--mount=volume=gate,target=/gate", "--exec", "/bin/sh", "--", "-c",
                    "while [ ! -e /gate/go ]; do sleep 0.05; done; exit 4")
    impatient = rkt("status", "--wait=0.1s", f"--uuid-file={pod.uuid_file}", check=254)
    assert "timed out waiting" in impatient.stderr
    (gate / "go").write_text("")
    out = rkt("status", "--wait", f"--uuid-file={pod.uuid_file}", check=0).stdout
    assert "state=exited" in out and "app-busybox=4" in out
    assert pod.wait() == 4


def test_rm_refuses_a_running_pod_and_removes_others(rkt, image, tmp_path):
    pod = rkt.start("--stage1-name=fly", image, "--exec", "/bin/sleep", "--", "100")
    uuid = pod.uuid
    refused = rkt("rm", uuid, check=254)
    assert "is running" in refused.stderr
    rkt("stop", "--force", uuid, check=0)
    pod.wait()
    rkt("rm", uuid, check=0)
    assert rkt("list", "--no-legend", check=0).stdout == ""
    prepared = rkt("prepare", "--stage1-name=fly", image, check=0).stdout.strip()
    rkt("rm", prepared, check=0)
    assert "no matches found" in rkt("status", prepared, check=254).stderr


def test_gc_grace_mark_only_and_expired_prepared(rkt, image):
    rkt("run", "--stage1-name=fly", image)
    marked = rkt("gc", "--mark-only", check=0)
    assert "moving pod" in marked.stderr and marked.stdout == ""
    assert cells(rkt("list", "--no-legend", check=0).stdout)[3] == "exited garbage"
    kept = rkt("gc", check=0)
    assert "still within grace period (30m0s)" in kept.stderr
    rkt("prepare", "--stage1-name=fly", image, check=0)
    assert len(rkt("list", "--no-legend", check=0).stdout.splitlines()) == 2
    rkt("gc", "--grace-period=0s", "--expire-prepared=0s", check=0)
    assert rkt("list", "--no-legend", check=0).stdout == ""


def test_uuid_file_save_replaces_a_symlink_instead_of_following_it(rkt, image, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "uuid"
    link.symlink_to(victim)
    rkt("run", "--stage1-name=fly", f"--uuid-file-save={link}", image)
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and len(link.read_text()) == 36


def test_run_from_a_pod_manifest(rkt, image, tmp_path):
    key = rkt("fetch", "--full", image, check=0).stdout.strip()
    manifest = {"acVersion": "0.7.4", "acKind": "PodManifest", "apps": [{
        "name": "custom", "image": {"id": key},
        "app": {"exec": ["/bin/sh", "-c", "echo from manifest; exit 5"], "user": "0", "group": "0"}}]}
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(manifest))
    out = rkt("run", "--stage1-name=fly", f"--pod-manifest={path}")
    assert out.returncode == 5 and out.stdout == "from manifest\n"
    assert "app-custom=5" in rkt("status", rkt("list", "--no-legend", "--full").stdout.split("\t")[0]).stdout


def test_cat_manifest_of_a_pod(rkt, image):
    uuid = rkt("prepare", "--stage1-name=fly", "--set-env=GREETING=hi", image, check=0).stdout.strip()
    manifest = json.loads(rkt("cat-manifest", uuid, check=0).stdout)
    app = manifest["apps"][0]
    assert app["name"] == "busybox" and app["image"]["id"].startswith("sha512-")
    assert {"name": "GREETING", "value": "hi"} in app["app"]["environment"]
    assert rkt("cat-manifest", "--pretty-print=false", uuid, check=0).stdout.startswith('{"acVersion"')


def test_unsupported_options_leave_no_pod(rkt, image):
    out = rkt("run", "--stage1-name=fly", image, "--memory=64M", check=254)
    assert 'cannot apply isolator "resource/memory"' in out.stderr
    assert rkt("list", "--no-legend", check=0).stdout == ""


def test_unknown_pod_and_duplicate_app_names(rkt, image):
    assert 'no matches found for "0000"' in rkt("status", "0000", check=254).stderr
    out = rkt("run", "--stage1-name=fly", image, image, check=254)
    assert 'more than one app is named "busybox"' in out.stderr


@pytest.mark.parametrize("uid", ["-5", "4294967295", "99999999999"])
def test_an_impossible_volume_owner_is_refused_before_anything_is_made(rkt, image, uid):
    out = rkt("run", "--stage1-name=fly", f"--volume=v,kind=empty,uid={uid}", image, check=254)
    assert (f'rkt: volume "v" (--volume "v,kind=empty,uid={uid}"): uid {uid} is out of range'
            in out.stderr), out.stderr
    assert "unexpected error" not in out.stderr
    assert not (rkt.data_dir / "pods").exists() or not any((rkt.data_dir / "pods").glob("*/*"))


def test_bad_pod_manifests_are_named(rkt, image, tmp_path):
    key = rkt("fetch", "--full", image, check=0).stdout.strip()
    volume = {"acVersion": "0.7.4", "acKind": "PodManifest",
              "apps": [{"name": "a", "image": {"id": key}}],
              "volumes": [{"name": "v", "kind": "empty", "gid": -3}]}
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(volume))
    out = rkt("run", "--stage1-name=fly", f"--pod-manifest={path}", check=254)
    assert f'volume "v" (pod manifest {path}): gid -3 is out of range' in out.stderr
    path.write_text('{"acVersion":"0.7.4","acKind":"PodManifest","x":' + "[" * 50_000
                    + "]" * 50_000 + "}")
    out = rkt("run", "--stage1-name=fly", f"--pod-manifest={path}", check=254)
    assert f"pod manifest {path}: invalid pod manifest: nested deeper than 100 levels" in out.stderr
    assert not any((rkt.data_dir / "pods").glob("*/*"))


def test_nothing_rkt_creates_is_writable_by_group_or_others_whatever_the_umask(rkt, image):
    uuid = rkt("prepare", "--stage1-name=fly", image, check=0, preexec_fn=lambda: os.umask(0)).stdout.strip()
    writable = []
    for dirpath, dirnames, filenames in os.walk(rkt.data_dir):
        dirnames[:] = [d for d in dirnames if d not in ("rootfs", "tree")]  # the image's own modes
        for path in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            if not os.path.islink(path) and os.lstat(path).st_mode & 0o022:
                writable.append(path)
    assert writable == []
    assert any(uuid in d for d, _, _ in os.walk(rkt.data_dir / "pods"))
