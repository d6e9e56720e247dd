"""Dependencies of images fetched from files: found in the store by name and labels or by image
ID, absurd depth refused, and a failed fetch leaves the store as it was. (Dependencies fetched
over the network, and cycles, are in tests/integration/test_remote_fetch.py.)"""

from rkt_core.testing.aci import build_aci, image_manifest, tar_uncompressed_sha512


def dep(name, version=None, image_id=None):
    d = {"imageName": name}
    if version:
        d["labels"] = [{"name": "version", "value": version}]
    if image_id:
        d["imageID"] = image_id
    return d


def test_dependencies_in_the_store_are_used_by_name_or_id(rkt, tmp_path):
    base = build_aci(tmp_path / "base.aci", image_manifest("example.com/base", "1.0"),
                     files={"base": b"1"})
    mid = build_aci(tmp_path / "mid.aci", image_manifest(
        "example.com/mid", "1.0", dependencies=[dep("example.com/base",
                                                    image_id=tar_uncompressed_sha512(base))]))
    top = build_aci(tmp_path / "top.aci", image_manifest(
        "example.com/top", "1.0", dependencies=[dep("example.com/mid", "1.0")]),
        files={"top": b"1"})
    rkt("fetch", base, check=0)
    rkt("fetch", mid, check=0)
    rkt("fetch", "--pull-policy=never", top, check=0)
    out = tmp_path / "out"
    rkt("image", "render", "--rootfs-only", "example.com/top:1.0", out, check=0)
    assert (out / "base").exists() and (out / "top").exists()


def test_a_missing_dependency_with_pull_policy_never_rolls_the_fetch_back(rkt, tmp_path):
    top = build_aci(tmp_path / "top.aci", image_manifest(
        "example.com/top", "1.0", dependencies=[dep("example.com/nowhere", "1.0")]))
    out = rkt("fetch", "--pull-policy=never", top, check=254)
    assert ('dependency "example.com/nowhere" of "example.com/top" is not in the store and the '
            'pull policy is "never"') in out.stderr
    assert rkt.images() == []


def test_absurdly_deep_dependency_chains_are_refused(rkt, tmp_path):
    previous = None
    for i in range(34):
        deps = [dep(f"example.com/l{i - 1}", "1.0")] if previous else []
        previous = build_aci(tmp_path / f"l{i}.aci", image_manifest(f"example.com/l{i}", "1.0",
                                                                     dependencies=deps))
        result = rkt("fetch", "--pull-policy=new", previous)
        if result.returncode:
            break
    assert result.returncode == 254
    assert "nest deeper than 32 levels" in result.stderr
    assert f"example.com/l{i}:1.0" not in rkt.images()  # rolled back
    assert len(rkt.images()) == i
