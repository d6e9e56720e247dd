"""remove_images: an image another command removed meanwhile fails ``image rm`` clearly and is
skipped by ``image gc`` (which listed it a moment before)."""

from rkt_core.cli.image import remove_images
from rkt_core.context import Context
from rkt_core.store.imagestore import ImageStore
from rkt_core.testing.aci import build_aci, image_manifest

GONE = "sha512-" + "ab" * 32


def test_a_key_removed_meanwhile_fails_rm_and_is_skipped_by_gc(tmp_path, capsys):
    data = tmp_path / "data"
    ImageStore(str(data))  # an empty store
    ctx = Context(dir=str(data), system_config=str(tmp_path / "sys"),
                  local_config=str(tmp_path / "etc"))
    assert remove_images(ctx, [GONE]) == 1
    assert "in the store" in capsys.readouterr().err
    assert remove_images(ctx, [GONE], gone_is_fine=True) == 0
    assert capsys.readouterr().err == ""


def test_gc_still_removes_what_is_there(tmp_path, capsys):
    data = tmp_path / "data"
    store = ImageStore(str(data))
    aci = build_aci(tmp_path / "a.aci", image_manifest("example.com/a"), files={"etc/a": b"a"})
    with open(aci, "rb") as f, store.staging(f) as staged:
        key = store.commit(staged).key
    ctx = Context(dir=str(data), system_config=str(tmp_path / "sys"),
                  local_config=str(tmp_path / "etc"))
    assert remove_images(ctx, [GONE, key], gone_is_fine=True) == 0
    assert store.find_info(key) is None
