"""Garbage collection against pods being prepared and imports in progress, made deterministic:
the test holds rkt's prepare lock (as a pod being prepared does) and checks that ``image rm``
and ``image gc`` wait for it instead of deleting what that pod is about to use."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hostile import assert_clear_error, wait_until_blocked

from rkt_core.pod import references
from rkt_core.pod.references import prepare_lock, referenced_tree_ids
from rkt_core.store.imagestore import ImageStore
from rkt_core.store.treestore import TreeStore
from rkt_core.testing.aci import busybox_aci


@pytest.fixture
def stored(rkt, tmp_path):
    """An image fetched into ``rkt.data_dir`` and rendered in its tree store: (key, tree id)."""
    aci = busybox_aci(tmp_path / "bb.aci", exec=["/bin/true"])
    fetched = rkt("fetch", aci)
    assert fetched.returncode == 0, fetched.stderr
    store = ImageStore(str(rkt.data_dir))
    key = store.list_images()[0].key
    return key, TreeStore(store).render(key)


@pytest.mark.parametrize("command", [("image", "rm"), ("image", "gc", "--grace-period=0s")])
def test_image_removal_waits_for_pods_being_prepared(rkt, stored, command, figures):
    key, tree = stored
    store = ImageStore(str(rkt.data_dir))
    trees = TreeStore(store)
    lock = prepare_lock(str(rkt.data_dir)).shared()  # a pod is being prepared
    args = [*command, key] if command[1] == "rm" else command
    remover = subprocess.Popen(rkt.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_until_blocked(lock.path, remover)
        assert trees.is_rendered(tree) and store.find_info(key) is not None
    finally:
        lock.close()
    out, err = remover.communicate(timeout=120)
    figures.add("gc races")
    assert remover.returncode == 0, err
    assert not trees.is_rendered(tree) and store.find_info(key) is None


def test_prepare_names_an_image_removed_under_it(rkt, stored, figures):
    key, _ = stored
    lock = prepare_lock(str(rkt.data_dir)).exclusive()  # image rm deciding
    prepare = subprocess.Popen(rkt.argv("prepare", "--stage1-name=fly", key),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_blocked(lock.path, prepare)
        ImageStore(str(rkt.data_dir)).remove(key)
    finally:
        lock.close()
    out, err = prepare.communicate(timeout=120)
    figures.add("gc races")
    assert_clear_error(subprocess.CompletedProcess(prepare.args, prepare.returncode, out, err),
                       "was removed from the store while the pod was being prepared")
    gc = rkt("gc", "--grace-period=0s")
    assert gc.returncode == 0 and os.listdir(rkt.data_dir / "pods" / "garbage") == [], gc.stderr


def test_a_pod_deleted_while_its_trees_are_read_is_skipped(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for n, state in enumerate(("run", "exited-garbage")):
        app = data / "pods" / state / f"pod-{n}" / "appsinfo" / "app"
        app.mkdir(parents=True)
        (app / "treeStoreID").write_text(f"deps-tree-{n}")
    real_listdir = os.listdir

    def listdir_while_gc_deletes(path="."):
        # Another gc deletes the exited pod just as its apps are listed.
        doomed = data / "pods" / "exited-garbage" / "pod-1"
        if (path == str(doomed / "appsinfo") or isinstance(path, int)) and doomed.exists():
            shutil.rmtree(doomed)
        return real_listdir(path)

    monkeypatch.setattr(references.os, "listdir", listdir_while_gc_deletes)
    assert referenced_tree_ids(str(data)) == {"deps-tree-0"}
