"""Pod directories damaged on disk: one bad pod never hides the others from ``list`` (table and
JSON) and ``status``; each bad pod is named in a warning, nothing is read outside the pod."""

from __future__ import annotations

import json
import uuid as uuidlib
from pathlib import Path

import pytest

from hostile import assert_clear_error


def image_manifest(name: str) -> dict:
    return {"acKind": "ImageManifest", "acVersion": "0.7.4", "name": name,
            "labels": [{"name": "version", "value": "1.0"}]}


def make_pod(data: Path, app: str = "app", state_dir: str = "run") -> tuple[str, Path]:
    """An exited pod as prepare and a flavor leave it (unlocked, in ``run/``)."""
    pod_uuid = str(uuidlib.uuid4())
    pod = data / "pods" / state_dir / pod_uuid
    (pod / "appsinfo" / app).mkdir(parents=True)
    for state in ("embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"):
        (data / "pods" / state).mkdir(exist_ok=True)
    image_id = "sha512-" + "ab" * 32
    manifest = {"acKind": "PodManifest", "acVersion": "0.7.4",
                "apps": [{"name": app, "image": {"name": "example.com/ok", "id": image_id,
                                                 "labels": [{"name": "version", "value": "1.0"}]}}]}
    (pod / "pod").write_text(json.dumps(manifest))
    (pod / "appsinfo" / app / "manifest").write_text(json.dumps(image_manifest("example.com/ok")))
    (pod / "pod-created").write_text("")
    return pod_uuid, pod


def spoil_garbage_manifest(pod: Path) -> None:
    (pod / "pod").write_bytes(b"\x00\xffnot json at all{")


def spoil_app_name(pod: Path) -> None:
    manifest = json.loads((pod / "pod").read_text())
    manifest["apps"][0]["name"] = "../../x"
    (pod / "pod").write_text(json.dumps(manifest))


def spoil_deep_nesting(pod: Path) -> None:
    manifest = (pod / "pod").read_text()
    (pod / "pod").write_text(manifest[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}")


def spoil_wrong_types(pod: Path) -> None:
    (pod / "pod").write_text('{"acKind": "PodManifest", "acVersion": "0.7.4", "apps": 7}')


def spoil_by_crash(pod: Path) -> None:
    """What a crash can leave of a running pod: its files are not fsynced one by one (only a
    prepared pod is made durable), so their names may be on disk without their contents."""
    for name in ("pod", "appsinfo/app/manifest"):
        (pod / name).write_bytes(b"")


def spoil_net_info(pod: Path) -> None:
    (pod / "net-info.json").write_text('{"not": "a list"}')


BAD_PODS = {
    "garbage manifest": (spoil_garbage_manifest, True),
    "app named ../../x": (spoil_app_name, True),
    "manifest nested 50,000 deep": (spoil_deep_nesting, True),
    "manifest of wrong types": (spoil_wrong_types, True),
    "files a crash left empty": (spoil_by_crash, True),
    "net-info that is not a list": (spoil_net_info, False),
}


@pytest.mark.parametrize("case", BAD_PODS)
def test_one_bad_pod_does_not_hide_the_others(rkt, case, figures):
    spoil, warned = BAD_PODS[case]
    good, _ = make_pod(rkt.data_dir)
    bad, bad_path = make_pod(rkt.data_dir)
    spoil(bad_path)
    table = rkt("list", "--no-legend", "--full")
    as_json = rkt("list", "--format=json")
    figures.add("pod files", trials=2)
    for result in (table, as_json):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
        assert (f"rkt: unable to read pod {bad}" in result.stderr) == warned, result.stderr
    assert good in table.stdout
    listed = {p["name"] for p in json.loads(as_json.stdout)}
    assert good in listed and (bad not in listed) == warned
    status = rkt("status", good)
    assert status.returncode == 0 and "state=exited" in status.stdout


def test_a_file_where_a_pod_directory_should_be_is_skipped(rkt, figures):
    good, _ = make_pod(rkt.data_dir)
    (rkt.data_dir / "pods" / "run" / "not-a-pod").write_text("junk")
    result = rkt("list", "--no-legend", "--full")
    figures.add("pod files")
    assert result.returncode == 0 and good in result.stdout, result.stderr


def test_a_pod_without_appsinfo_is_listed_from_its_manifest(rkt, figures):
    # rkt run; rkt gc --mark-only; rm -r pods/exited-garbage/*/appsinfo; rkt list
    good, _ = make_pod(rkt.data_dir)
    marked, path = make_pod(rkt.data_dir, state_dir="exited-garbage")
    for f in (path / "appsinfo" / "app").iterdir():
        f.unlink()
    (path / "appsinfo" / "app").rmdir()
    (path / "appsinfo").rmdir()
    table = rkt("list", "--no-legend", "--full")
    as_json = rkt("list", "--format=json")
    figures.add("pod files", trials=2)
    assert table.returncode == 0 and as_json.returncode == 0, (table.stderr, as_json.stderr)
    assert table.stderr == "" and as_json.stderr == ""
    rows = {line.split("\t")[0]: line for line in table.stdout.splitlines()}
    assert good in rows and "example.com/ok:1.0" in rows[marked]
    assert {p["name"] for p in json.loads(as_json.stdout)} == {good, marked}


def test_status_of_a_pod_with_a_bad_manifest_is_a_clear_error(rkt, figures):
    bad, path = make_pod(rkt.data_dir)
    spoil_deep_nesting(path)
    assert rkt("status", bad).returncode == 0  # the state does not need the manifest
    result = rkt("status", "--format=json", bad)
    figures.add("pod files", trials=2)
    assert_clear_error(result, "nested deeper than")


def test_gc_removes_a_pod_a_crash_left_empty(rkt, figures):
    good, _ = make_pod(rkt.data_dir)
    bad, bad_path = make_pod(rkt.data_dir)
    spoil_by_crash(bad_path)
    for _ in range(2):  # the first marks exited pods as garbage, the second removes them
        result = rkt("gc", "--grace-period=0s")
        assert result.returncode == 0, result.stderr
    figures.add("pod files", trials=2)
    assert not any((rkt.data_dir / "pods").glob(f"*/{bad}"))
    assert not any((rkt.data_dir / "pods").glob(f"*/{good}"))
