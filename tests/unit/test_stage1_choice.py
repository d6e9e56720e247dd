"""Choosing a pod's stage1 (rkt_core.stage0.stage1): the --stage1-* flags, stage1.d, rkt's
image names that stand for installed flavors, signatures of stage1 images, hostile values."""

import json

import pytest

from rkt_core.builtins import fetch_file, openpgp
from rkt_core.context import Context
from rkt_core.errors import NotFoundError, PluginMissingError, RktError, SignatureError, UsageError
from rkt_core.insecure import Insecure
from rkt_core.plugin_api import Fetcher, Stage1Flavor, hookimpl
from rkt_core.plugins import Plugins
from rkt_core.stage0 import stage1
from rkt_core.stage0.stage1 import Stage1, Stage1Request, choose, flavor_meant_by, request_from_flags
from rkt_core.testing.aci import build_aci, image_manifest, tar_uncompressed_sha512

RUN = "coreos.com/rkt/stage1/run"


def check_image(manifest):
    if manifest.annotations.get(RUN) is None:
        raise RktError(f'"{manifest.name}" is not a stage1 image')


class Flavors:
    """fly, nspawn and a flavor that runs stage1 images; an appc fetcher that finds nothing."""

    RKT_PLUGIN_API = 1

    def __init__(self, *names):
        self.names = names

    @hookimpl
    def rkt_stage1_flavors(self):
        return [Stage1Flavor(n, lambda: None, 1, check_image=check_image if n == "image" else None)
                for n in self.names]

    @hookimpl
    def rkt_fetchers(self):
        def nowhere(request):
            raise NotFoundError(f'discovery of "{request.ref}" failed')
        return [Fetcher("appc", ("appc",), nowhere)]


def context(tmp_path, *flavors, insecure=Insecure.NONE, stage1_d=None, paths_d=None):
    for kind, doc in (("stage1.d", stage1_d), ("paths.d", paths_d)):
        if doc is not None:
            (tmp_path / "etc" / kind).mkdir(parents=True, exist_ok=True)
            (tmp_path / "etc" / kind / "c.json").write_text(json.dumps(
                {"rktKind": kind.removesuffix(".d"), "rktVersion": "v1", **doc}))
    ctx = Context(dir=str(tmp_path / "data"), system_config=str(tmp_path / "sys"),
                  local_config=str(tmp_path / "etc"), insecure=insecure)
    plugins = Plugins(discover=False)
    plugins.register(fetch_file, "fetch-file")
    plugins.register(openpgp, "openpgp")
    plugins.register(Flavors(*(flavors or ("fly", "nspawn", "image"))), "flavors")
    ctx.__dict__["plugins"] = plugins
    return ctx


def stage1_aci(path, name="example.com/stage1", version="1.0", entrypoint=True):
    annotations = [{"name": RUN, "value": "/run"}] if entrypoint else []
    return str(build_aci(path, image_manifest(name, version, annotations=annotations),
                         files={"run": b"#!/bin/sh\n"}))


def key_of(path):
    return tar_uncompressed_sha512(path)[:len("sha512-") + 64]


# --- the flags -----------------------------------------------------------------------------


def test_the_flags_are_mutually_exclusive_and_each_given_once():
    assert request_from_flags({"path": ("/a.aci",)}) == Stage1Request("path", "/a.aci")
    assert request_from_flags({}) == Stage1Request()
    with pytest.raises(UsageError, match="flags --stage1-name and --stage1-path are mutually"):
        request_from_flags({"path": ("/a.aci",), "name": ("fly",)})
    with pytest.raises(UsageError, match="--stage1-url already used"):
        request_from_flags({"url": ("http://a/1.aci", "http://a/2.aci")})
    with pytest.raises(UsageError, match="--stage1-hash needs a value"):
        request_from_flags({"hash": ("",)})


@pytest.mark.parametrize("name,flavor", [
    ("coreos.com/rkt/stage1-fly", "fly"),
    ("coreos.com/rkt/stage1-fly:0.14.0", "fly"),
    ("coreos.com/rkt/stage1-coreos:1.30.0", "nspawn"),
    ("coreos.com/rkt/stage1-kvm:1.30.0", "kvm"),
    ("/usr/lib/rkt/stage1-images/stage1-src.aci", "nspawn"),
    ("example.com/rkt/stage1-fly:1.0", ""),
    ("example.com/my-stage1-fly", ""),
    ("/srv/my-stage1-fly.aci", ""),
])
def test_rkt_image_names_stand_for_flavors(name, flavor):
    assert flavor_meant_by(name) == flavor


# --- names ---------------------------------------------------------------------------------


def test_without_flags_or_configuration_a_plugin_chooses_else_nspawn(tmp_path):
    assert choose(context(tmp_path), Stage1Request()) == Stage1("nspawn")


def test_a_flavor_by_name_and_by_rkts_image_name(tmp_path):
    ctx = context(tmp_path)
    assert choose(ctx, Stage1Request("name", "fly")) == Stage1("fly")
    assert choose(ctx, Stage1Request("name", "coreos.com/rkt/stage1-fly:0.14.0")) == Stage1("fly")
    assert choose(ctx, Stage1Request("name", "coreos.com/rkt/stage1-coreos")) == Stage1("nspawn")


def test_a_missing_flavor_names_its_distribution_never_an_image_name(tmp_path):
    ctx = context(tmp_path, "nspawn", "image")
    with pytest.raises(PluginMissingError) as err:
        choose(ctx, Stage1Request("name", "kvm"))
    assert err.value.hint == "pip install rkt-stage1-kvm"
    with pytest.raises(NotFoundError) as err:
        choose(ctx, Stage1Request("name", "coreos.com/rkt/stage1-fly:0.14.0"))
    assert 'discovery of "coreos.com/rkt/stage1-fly:0.14.0" failed' in err.value.message
    assert err.value.hint.endswith("pip install rkt-stage1-fly")


def test_an_image_of_rkts_name_runs_when_its_flavor_is_not_installed(tmp_path):
    ctx = context(tmp_path, "nspawn", "image", insecure=Insecure.IMAGE)
    aci = stage1_aci(tmp_path / "fly.aci", "coreos.com/rkt/stage1-fly", "0.14.0")
    choose(ctx, Stage1Request("path", aci))
    assert choose(ctx, Stage1Request("name", "coreos.com/rkt/stage1-fly:0.14.0")) == \
        Stage1("image", key_of(aci))


def test_an_image_name_from_the_store_needs_no_signature(tmp_path):
    aci = stage1_aci(tmp_path / "s.aci")
    choose(context(tmp_path, insecure=Insecure.IMAGE), Stage1Request("path", aci))
    ctx = context(tmp_path)  # signatures checked from here on
    assert choose(ctx, Stage1Request("name", "example.com/stage1:1.0")) == \
        Stage1("image", key_of(aci))
    assert choose(ctx, Stage1Request("hash", key_of(aci)[:20])) == Stage1("image", key_of(aci))


def test_a_file_in_the_working_directory_does_not_make_a_name_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fly").write_text("")
    assert choose(context(tmp_path), Stage1Request("name", "fly")) == Stage1("fly")


def test_a_flavor_that_runs_images_needs_an_image(tmp_path):
    with pytest.raises(UsageError, match="the image flavor runs stage1 images: give one with"):
        choose(context(tmp_path), Stage1Request("name", "image"))


# --- images --------------------------------------------------------------------------------


def test_a_stage1_image_by_path_is_verified_like_any_image(tmp_path):
    aci = stage1_aci(tmp_path / "s.aci")
    with pytest.raises(SignatureError, match="has no signature"):
        choose(context(tmp_path), Stage1Request("path", aci))
    ctx = context(tmp_path, insecure=Insecure.IMAGE)
    assert choose(ctx, Stage1Request("path", aci)) == Stage1("image", key_of(aci))


def test_an_image_that_no_flavor_runs_is_refused_by_the_flavor(tmp_path):
    aci = stage1_aci(tmp_path / "app.aci", "example.com/app", entrypoint=False)
    with pytest.raises(RktError, match='"example.com/app" is not a stage1 image'):
        choose(context(tmp_path, insecure=Insecure.IMAGE), Stage1Request("path", aci))
    ctx = context(tmp_path, "fly", insecure=Insecure.IMAGE)
    with pytest.raises(PluginMissingError, match="no installed stage1 flavor runs stage1 images"):
        choose(ctx, Stage1Request("path", stage1_aci(tmp_path / "s.aci")))


@pytest.mark.parametrize("kind,value,message", [
    ("url", "/srv/stage1.aci", "expected a URL (for a file, use --stage1-path)"),
    ("path", "https://example.com/stage1.aci", "expected a path (for a URL, use --stage1-url)"),
    ("hash", "example.com/stage1", "expected an image ID"),
    ("from-dir", "../../tmp/stage1.aci", "expected a file name in the stage1 images directory"),
    ("from-dir", "..", "expected a file name"),
    ("name", "../stage1.aci", "expected a flavor or an image name"),
    ("name", "file:///srv/stage1.aci", "expected a flavor or an image name"),
    ("name", "sha512-0123456789", "expected a flavor or an image name"),
])
def test_values_of_the_wrong_kind_are_refused(tmp_path, kind, value, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose(context(tmp_path, insecure=Insecure.IMAGE), Stage1Request(kind, value))


def test_a_hash_only_finds_images_in_the_store(tmp_path):
    with pytest.raises(NotFoundError):
        choose(context(tmp_path), Stage1Request("hash", "sha512-" + "ab" * 32))


def test_from_dir_reads_the_configured_images_directory(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    aci = stage1_aci(images / "mine.aci")
    ctx = context(tmp_path, paths_d={"stage1-images": str(images)})
    with pytest.raises(SignatureError):  # only rkt's own directory is trusted
        choose(ctx, Stage1Request("from-dir", "mine.aci"))
    ctx = context(tmp_path, insecure=Insecure.IMAGE, paths_d={"stage1-images": str(images)})
    assert choose(ctx, Stage1Request("from-dir", "mine.aci")) == Stage1("image", key_of(aci))


def test_images_in_the_trusted_directory_need_no_signature(tmp_path, monkeypatch):
    trusted = tmp_path / "usr-lib-rkt-stage1-images"
    trusted.mkdir()
    monkeypatch.setattr(stage1, "TRUSTED_IMAGES_DIR", str(trusted))
    aci = stage1_aci(trusted / "stage1-mine.aci")
    ctx = context(tmp_path)
    assert choose(ctx, Stage1Request("from-dir", "stage1-mine.aci")) == \
        Stage1("image", key_of(aci))
    assert choose(ctx, Stage1Request("path", aci)) == Stage1("image", key_of(aci))
    outside = stage1_aci(tmp_path / "elsewhere.aci", "example.com/other")
    (trusted / "link.aci").symlink_to(outside)
    with pytest.raises(SignatureError):  # a link out of the directory is not trusted
        choose(ctx, Stage1Request("path", str(trusted / "link.aci")))


def test_v014_stage1_image_takes_paths_urls_ids_names_and_flavors(tmp_path):
    ctx = context(tmp_path, insecure=Insecure.IMAGE)
    aci = stage1_aci(tmp_path / "stage1-fly.aci")
    assert choose(ctx, Stage1Request("image", aci)) == Stage1("image", key_of(aci))
    assert choose(ctx, Stage1Request("image", key_of(aci))) == Stage1("image", key_of(aci))
    assert choose(ctx, Stage1Request("image", "/usr/lib/rkt/stage1-fly.aci")) == Stage1("fly")
    assert choose(ctx, Stage1Request("image", "coreos.com/rkt/stage1-coreos:0.14.0")) == \
        Stage1("nspawn")
    assert choose(ctx, Stage1Request("image", "fly")) == Stage1("fly")
    with pytest.raises(NotFoundError):  # a path to no file whose name is no flavor's
        choose(ctx, Stage1Request("image", str(tmp_path / "missing.aci")))


# --- stage1.d ------------------------------------------------------------------------------


def test_stage1_d_name_of_a_flavor(tmp_path):
    ctx = context(tmp_path, stage1_d={"name": "coreos.com/rkt/stage1-fly", "version": "1.30.0",
                                      "location": "/nowhere/stage1-fly.aci"})
    assert choose(ctx, Stage1Request()) == Stage1("fly")
    ctx = context(tmp_path, stage1_d={"name": "fly", "version": "1"})
    assert choose(ctx, Stage1Request()) == Stage1("fly")


def test_stage1_d_image_from_the_store_else_its_location(tmp_path):
    aci = stage1_aci(tmp_path / "s.aci", version="2.0")
    conf = {"name": "example.com/stage1", "version": "2.0", "location": aci}
    key = key_of(aci)
    ctx = context(tmp_path, insecure=Insecure.IMAGE, stage1_d=conf)
    assert choose(ctx, Stage1Request()) == Stage1("image", key)  # fetched from its location
    (tmp_path / "s.aci").unlink()
    ctx = context(tmp_path, stage1_d=conf)
    assert choose(ctx, Stage1Request()) == Stage1("image", key)  # from the store, unsigned
    dirty = dict(conf, version="2.0-dirty")
    with pytest.raises(NotFoundError):  # -dirty versions are never taken from the store
        choose(context(tmp_path, stage1_d=dirty), Stage1Request())


def test_stage1_d_location_alone(tmp_path):
    aci = stage1_aci(tmp_path / "s.aci")
    ctx = context(tmp_path, insecure=Insecure.IMAGE, stage1_d={"location": aci})
    assert choose(ctx, Stage1Request()) == Stage1("image", key_of(aci))


def test_stage1_d_image_that_is_nowhere(tmp_path):
    ctx = context(tmp_path, stage1_d={"name": "example.com/stage1", "version": "3"})
    with pytest.raises(NotFoundError, match="is not in the store and stage1.d gives no location"):
        choose(ctx, Stage1Request())


def test_flags_win_over_stage1_d(tmp_path):
    ctx = context(tmp_path, stage1_d={"name": "example.com/stage1", "version": "3"})
    assert choose(ctx, Stage1Request("name", "fly")) == Stage1("fly")
