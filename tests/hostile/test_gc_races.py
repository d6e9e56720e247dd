"""Garbage collection against pods being prepared and imports in progress, made deterministic:
the test holds rkt's prepare lock (as a pod being prepared does) and checks that ``image rm``
and ``image gc`` wait for it instead of deleting what that pod is about to use."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hostile import assert_clear_error, wait_until_blocked

from rkt_core.context import Context
from rkt_core.insecure import Insecure
from rkt_core.pod import references
from rkt_core.pod.references import prepare_lock, referenced_tree_ids
from rkt_core.stage0 import prepare
from rkt_core.stage0.fetch import FetchOptions, fetch_image
from rkt_core.stage0.prepare import AppArgs, PrepareOptions, prepare_pod
from rkt_core.stage0.stage1 import Stage1Request
from rkt_core.store.imagestore import ImageRemovedError, ImageStore
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


def removed_while_it_waits(rkt, key: str, *args) -> subprocess.CompletedProcess:
    """``rkt ARGS`` started while the test holds the prepare lock (as an ``image rm``
    deciding), the image ``key`` removed once the command waits for that lock; what the
    command did."""
    lock = prepare_lock(str(rkt.data_dir)).exclusive()
    command = subprocess.Popen(rkt.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_until_blocked(lock.path, command)
        ImageStore(str(rkt.data_dir)).remove(key)
    finally:
        lock.close()
    out, err = command.communicate(timeout=120)
    return subprocess.CompletedProcess(command.args, command.returncode, out, err)


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
    prepared = removed_while_it_waits(rkt, key, "prepare", "--stage1-name=fly", key)
    figures.add("gc races")
    assert_clear_error(prepared, "was removed from the store while the pod was being prepared")
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


def test_prepare_fetches_again_an_image_file_removed_under_it(rkt, stored, tmp_path, figures):
    key, _ = stored
    prepared = removed_while_it_waits(rkt, key, "prepare", "--stage1-name=fly",
                                      tmp_path / "bb.aci")
    figures.add("gc races")
    assert prepared.returncode == 0, prepared.stderr
    assert ImageStore(str(rkt.data_dir)).find_info(key) is not None
    assert os.listdir(rkt.data_dir / "pods" / "prepared") == [prepared.stdout.strip()]


def test_image_rm_names_an_image_another_command_removed(rkt, stored, figures):
    key, _ = stored
    removed = removed_while_it_waits(rkt, key, "image", "rm", "example.com/busybox:1.0")
    figures.add("gc races")
    assert_clear_error(removed,
                       f'image "{key}" ("example.com/busybox") was removed by another rkt '
                       "command meanwhile")


def test_fetch_imports_again_an_image_removed_while_it_was_read(rkt, stored, tmp_path,
                                                                monkeypatch, figures):
    key, _ = stored
    store = ImageStore(str(rkt.data_dir))
    real_manifest = ImageStore.manifest
    removed = []

    def removed_by_image_gc_first(self, wanted):
        if not removed:  # image gc takes it just after the fetch found it stored
            removed.append(wanted)
            store.remove(wanted)
        return real_manifest(self, wanted)

    monkeypatch.setattr(ImageStore, "manifest", removed_by_image_gc_first)
    ctx = Context(dir=str(rkt.data_dir), insecure=Insecure.IMAGE)
    assert fetch_image(ctx, str(tmp_path / "bb.aci")) == key
    figures.add("gc races")
    assert removed == [key] and store.find_info(key) is not None
    assert os.path.exists(store.blob_path(key))


def test_prepare_fetches_again_an_image_removed_before_it_read_the_manifest(rkt, stored, tmp_path,
                                                                            monkeypatch, figures):
    key, _ = stored
    store = ImageStore(str(rkt.data_dir))
    removed = []

    def fetched_then_removed(ctx, text, options=FetchOptions()):
        fetched = fetch_image(ctx, text, options)
        if not removed:  # image rm takes it before prepare reads its manifest
            removed.append(fetched)
            store.remove(fetched)
        return fetched

    monkeypatch.setattr(prepare, "fetch_image", fetched_then_removed)
    ctx = Context(dir=str(rkt.data_dir), insecure=Insecure.IMAGE)
    with prepare_pod(ctx, PrepareOptions(apps=[AppArgs(str(tmp_path / "bb.aci"))],
                                         stage1=Stage1Request("name", "fly"))) as pod:
        pod.to_prepared()
    figures.add("gc races")
    assert removed == [key] and store.find_info(key) is not None
    assert os.listdir(rkt.data_dir / "pods" / "prepared") == [pod.uuid]


def test_an_image_removed_while_its_manifest_is_read_is_named_as_such(rkt, stored, figures):
    key, _ = stored
    store = ImageStore(str(rkt.data_dir))
    store.remove(key)  # by image rm, after the reader found the image
    figures.add("gc races")
    with pytest.raises(ImageRemovedError) as raised:
        store.manifest(key)
    assert raised.value.message == (f'image "{key}" was removed from the store (by "rkt image '
                                    'rm" or "rkt image gc") meanwhile')
