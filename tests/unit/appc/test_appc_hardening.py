"""Where we are stricter or safer than appc v0.7.4's Go code."""

import pytest

from rkt_core.appc import AppcError, ImageManifest
from rkt_core.appc.identifiers import validate_image_id
from rkt_core.appc.isolators import memory_isolator


@pytest.mark.parametrize("value", ["sha512-../../etc", "sha512-a/b", "sha512-a\0b"])
def test_image_ids_that_could_become_paths_are_refused(value):
    with pytest.raises(AppcError, match="may not contain"):
        validate_image_id(value)


def test_memory_limit_under_a_page_is_a_typo():
    with pytest.raises(AppcError, match='did you mean "16M"'):
        memory_isolator("16m")
    assert memory_isolator("4096").limit.value == 4096


def test_unpaired_surrogate_is_written_as_replacement_character():
    manifest = ImageManifest.from_json(
        '{"acKind":"ImageManifest","acVersion":"0.7.4","name":"example.com/x",'
        '"annotations":[{"name":"note","value":"a\\ud800b"}]}')
    text = manifest.to_json(pretty=True)
    text.encode("utf-8")  # must not raise
    assert "a\ufffdb" in text


@pytest.mark.parametrize("depth", [101, 50_000])
def test_deeply_nested_manifests_are_refused_with_a_clear_error(depth):
    text = ('{"acKind":"ImageManifest","acVersion":"0.7.4","name":"example.com/x","extra":'
            + "[" * depth + "]" * depth + "}")
    with pytest.raises(AppcError, match="invalid image manifest: nested deeper than 100 levels"):
        ImageManifest.from_json(text)


def test_a_manifest_nested_within_the_limit_is_read():
    text = ('{"acKind":"ImageManifest","acVersion":"0.7.4","name":"example.com/x","extra":'
            + "[" * 98 + "]" * 98 + "}")
    assert ImageManifest.from_json(text).name == "example.com/x"
