"""The tree store: rendering with dependencies, the rendered marker, hashes, verification."""

import os

import pytest

from rkt_core.errors import ImageError, NotFoundError
from rkt_core.store import render, treestore
from rkt_core.store.imagestore import ImageStore
from rkt_core.store.treestore import TreeStore, TreeVerificationError, dependency_list
from rkt_core.testing.aci import build_aci, image_manifest


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "data"))


def add(store, tmp_path, name, files, deps=(), whitelist=None, version="1.0"):
    extra = {}
    if deps:
        extra["dependencies"] = [{"imageName": d} for d in deps]
    if whitelist is not None:
        extra["pathWhitelist"] = whitelist
    path = build_aci(tmp_path / f"{name.replace('/', '_')}.aci",
                     image_manifest(name, version, ["/bin/sh"], **extra), files=files)
    with open(path, "rb") as f, store.staging(f) as staged:
        return store.commit(staged).key


def test_render_with_dependencies_in_appc_order(store, tmp_path):
    add(store, tmp_path, "example.com/d", {"d": b"d", "shared": b"from d"})
    add(store, tmp_path, "example.com/b", {"b": b"b", "shared": b"from b"})
    add(store, tmp_path, "example.com/c", {"c": b"c"}, deps=["example.com/d"])
    top = add(store, tmp_path, "example.com/a", {"a": b"a"}, deps=["example.com/b", "example.com/c"])
    names = [(d.manifest.name, d.level) for d in dependency_list(store, top)]
    assert names == [("example.com/a", 0), ("example.com/c", 1), ("example.com/d", 2), ("example.com/b", 1)]
    trees = TreeStore(store)
    tree = trees.render(top)
    rootfs = trees.rootfs(tree)
    assert sorted(os.listdir(rootfs)) == ["a", "b", "c", "d", "shared"]
    # First one wins: d comes before b in priority order.
    assert open(os.path.join(rootfs, "shared"), "rb").read() == b"from d"
    assert trees.is_rendered(tree) and trees.image_of(tree) == top
    assert store.get_info(top).treestore_size > 0


def test_second_render_reextracts_nothing(store, tmp_path, monkeypatch):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)

    def fail(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(render, "render_layers", fail)
    assert trees.render(key) == tree


def test_incomplete_tree_without_marker_is_rendered_again(store, tmp_path):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)
    os.unlink(os.path.join(trees.path(tree), "rendered"))
    os.unlink(os.path.join(trees.rootfs(tree), "a"))
    trees.render(key)
    assert os.path.exists(os.path.join(trees.rootfs(tree), "a"))


def test_verify_detects_modification(store, tmp_path):
    key = add(store, tmp_path, "example.com/a", {"a": b"a", "etc/conf": b"x=1"})
    trees = TreeStore(store)
    tree = trees.render(key)
    trees.verify(tree)
    with open(os.path.join(trees.rootfs(tree), "etc/conf"), "wb") as f:
        f.write(b"x=2")
    with pytest.raises(TreeVerificationError, match="modified"):
        trees.verify(tree)
    os.chmod(os.path.join(trees.rootfs(tree), "a"), 0o4755)
    with pytest.raises(TreeVerificationError):
        trees.verify(tree)


def test_check_reads_no_file_yet_sees_any_change(store, tmp_path, monkeypatch):
    key = add(store, tmp_path, "example.com/a", {"a": b"a", "etc/group": b"root:x:0:\n"})
    trees = TreeStore(store)
    tree = trees.render(key)
    monkeypatch.setattr(treestore, "tree_hash", lambda root: pytest.fail("content hashed"))
    trees.check(tree)
    group = os.path.join(trees.rootfs(tree), "etc/group")
    with open(group, "ab") as f:  # echo x >> etc/group
        f.write(b"x\n")
    with pytest.raises(TreeVerificationError, match="modified"):
        trees.check(tree)


@pytest.mark.parametrize("change", [
    lambda root: os.chmod(os.path.join(root, "a"), 0o4755),
    lambda root: os.unlink(os.path.join(root, "a")),
    lambda root: open(os.path.join(root, "new"), "w").close(),
    lambda root: os.rename(os.path.join(root, "a"), os.path.join(root, "b")),
])
def test_check_sees_modes_removals_additions_and_renames(store, tmp_path, change):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)
    change(trees.rootfs(tree))
    with pytest.raises(TreeVerificationError):
        trees.check(tree)


def test_check_of_a_tree_rendered_before_fingerprints_hashes_it_once(store, tmp_path, monkeypatch):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)
    os.unlink(os.path.join(trees.path(tree), "fingerprint"))
    trees.check(tree)  # the full hash, which matches: the fingerprint is recorded
    monkeypatch.setattr(treestore, "tree_hash", lambda root: pytest.fail("content hashed"))
    trees.check(tree)
    os.unlink(os.path.join(trees.path(tree), "fingerprint"))
    with pytest.raises(pytest.fail.Exception, match="content hashed"):
        trees.check(tree)


def test_rebuild_renders_a_modified_tree_again(store, tmp_path):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)
    with open(os.path.join(trees.rootfs(tree), "a"), "ab") as f:
        f.write(b"changed")
    assert trees.rebuild(key) == tree
    trees.check(tree)
    trees.verify(tree)
    assert open(os.path.join(trees.rootfs(tree), "a"), "rb").read() == b"a"


def test_dependency_cycle_is_refused(store, tmp_path):
    add(store, tmp_path, "example.com/b", {"b": b"b"}, deps=["example.com/a"])
    top = add(store, tmp_path, "example.com/a", {"a": b"a"}, deps=["example.com/b"])
    with pytest.raises(ImageError, match="cycle"):
        dependency_list(store, top)


def test_missing_dependency_is_a_clear_error(store, tmp_path):
    top = add(store, tmp_path, "example.com/a", {"a": b"a"}, deps=["example.com/missing"])
    with pytest.raises(NotFoundError, match='"example.com/missing"'):
        TreeStore(store).render(top)


def test_path_whitelist_filters_files(store, tmp_path):
    add(store, tmp_path, "example.com/base", {"keep": b"k", "drop": b"d"})
    top = add(store, tmp_path, "example.com/a", {"a": b"a"}, deps=["example.com/base"],
              whitelist=["/keep", "/a"])
    trees = TreeStore(store)
    assert sorted(os.listdir(trees.rootfs(trees.render(top)))) == ["a", "keep"]


def test_remove_tree(store, tmp_path):
    key = add(store, tmp_path, "example.com/a", {"a": b"a"})
    trees = TreeStore(store)
    tree = trees.render(key)
    trees.remove(tree)
    assert tree not in trees.ids() and not os.path.exists(trees.path(tree))
