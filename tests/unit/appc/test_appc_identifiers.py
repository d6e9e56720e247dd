"""ACIdentifier, ACName, UUID, image ID, semver and the path-safety rule."""

import pytest

from rkt_core.appc import AppcError
from rkt_core.appc.identifiers import (app_name_from_image_name, check_path_safe, parse_semver,
                                       parse_uuid, sanitize_ac_name, validate_ac_identifier,
                                       validate_ac_name, validate_image_id, validate_image_name)
from rkt_core.errors import ImageError

# Tables from appc v0.7.4 schema/types/acidentifier_test.go and acname_test.go.
GOOD_IDENTIFIERS = [
    "asdf", "foo-bar-baz", "zab_rab_oof", "database", "my~database", "example.com/database",
    "example.com/~bob/database", "example.com/ourapp-1.0.0",
    "sub-domain.example.com/org/product/release-1.0.0",
    "sub-domain.example.com/org/product/~alice/release-1.0.0",
]
BAD_IDENTIFIERS = [
    "", "BAR", "foo#", "EXAMPLE.com", "foo.com/BAR", "/app", "app/", "-app", "app-", ".app",
    "app.", "_app", "app_", "~app", "app~", "example.com/app#1", "~example.com/app1",
]
GOOD_NAMES = ["asdf", "foo-bar-baz", "database", "a", "0"]
BAD_NAMES = [
    "", "foo#", "example.com", "EXAMPLE.com", "example/database", "example/database-1.0.0",
    "foo.com/BAR", "example.com/app_1", "/app", "app/", "-app", "app-", ".app", "app.",
]


def test_appc_error_is_an_image_error():
    assert issubclass(AppcError, ImageError)


@pytest.mark.parametrize("value", GOOD_IDENTIFIERS)
def test_good_identifiers(value):
    assert validate_ac_identifier(value) == value


@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
def test_bad_identifiers(value):
    with pytest.raises(AppcError):
        validate_ac_identifier(value)


def test_identifier_interior_runs_pass_as_in_go():
    # The Go code checks characters and edges only, not the anchored regexp.
    assert validate_ac_identifier("a..b") == "a..b"
    assert validate_ac_identifier("a//b") == "a//b"


def test_identifier_rejects_newline_before_end():
    with pytest.raises(AppcError):
        validate_ac_identifier("abc\n")


def test_identifier_message_names_field_and_reason():
    with pytest.raises(AppcError) as err:
        validate_ac_identifier("Foo", "image name")
    assert str(err.value) == ('invalid image name "Foo": only lowercase letters, digits and '
                              '-._~/ are allowed')
    with pytest.raises(AppcError, match=r'invalid label name "-x": must start and end'):
        validate_ac_identifier("-x", "label name")
    with pytest.raises(AppcError, match="invalid isolator name: must not be empty"):
        validate_ac_identifier("", "isolator name")


def test_identifier_rejects_non_string():
    with pytest.raises(AppcError, match="must be a string"):
        validate_ac_identifier(5)


@pytest.mark.parametrize("value", GOOD_NAMES)
def test_good_ac_names(value):
    assert validate_ac_name(value) == value


@pytest.mark.parametrize("value", BAD_NAMES)
def test_bad_ac_names(value):
    with pytest.raises(AppcError):
        validate_ac_name(value)


def test_ac_name_message():
    with pytest.raises(AppcError, match=r'invalid volume name "a_b": only lowercase letters, '
                                        r'digits and - are allowed'):
        validate_ac_name("a_b", "volume name")


@pytest.mark.parametrize("value", ["a", "a/b", "example.com/etcd", "a..b", "..a", "a.."])
def test_path_safe_accepts(value):
    assert check_path_safe(value, "image name") == value


@pytest.mark.parametrize("value", [
    "", ".", "..", "a//b", "a/./b", "a/../b", "/a", "a/", "evil.com/../coreos.com/etcd",
    "a/..", "../a", "a\0b",
])
def test_path_safe_rejects(value):
    with pytest.raises(AppcError):
        check_path_safe(value, "image name")


def test_path_safe_message_names_field():
    with pytest.raises(AppcError, match=r'invalid prefix "a/\.\./b": empty, "\." and "\.\." '):
        check_path_safe("a/../b", "prefix")


@pytest.mark.parametrize("value", ["evil.com/../coreos.com/etcd", "a/./b", "a//b"])
def test_image_names_must_be_path_safe_although_go_accepts_them(value):
    assert validate_ac_identifier(value) == value
    with pytest.raises(AppcError, match="image name"):
        validate_image_name(value)


@pytest.mark.parametrize("value, expected", [
    # From acname_test.go TestSanitizeACName.
    ("foo#", "foo"), ("EXAMPLE.com", "example-com"), ("foo.com/BAR", "foo-com-bar"),
    ("example.com/app_1", "example-com-app-1"), ("/app", "app"), ("app/", "app"),
    ("-app", "app"), ("app-", "app"), (".app", "app"), ("app.", "app"), ("app///", "app"),
    ("-/.app..", "app"), ("-/app.name-test/-/", "app-name-test"),
    ("sub-domain.example.com/org/product/release-1.0.0",
     "sub-domain-example-com-org-product-release-1-0-0"),
])
def test_sanitize_ac_name(value, expected):
    assert sanitize_ac_name(value) == expected


@pytest.mark.parametrize("value", ["__", "..", "//", "", ".//-"])
def test_sanitize_ac_name_without_valid_characters(value):
    with pytest.raises(AppcError, match="cannot make an app name"):
        sanitize_ac_name(value)


@pytest.mark.parametrize("image, app", [
    ("coreos.com/etcd", "etcd"), ("example.com/My_App", "my-app"),
    ("coreos.com/ace-validator-main", "ace-validator-main"), ("busybox", "busybox"),
    ("example.com/app-1.0.0", "app-1-0-0"),
])
def test_app_name_from_image_name(image, app):
    assert app_name_from_image_name(image) == app


@pytest.mark.parametrize("value, expected", [
    # From uuid_test.go TestNewUUID.
    ("6733C088-A507-4694-AABF-EDBE4FC5266F", "6733c088-a507-4694-aabf-edbe4fc5266f"),
    ("6733C088A5074694AABFEDBE4FC5266F", "6733c088-a507-4694-aabf-edbe4fc5266f"),
    ("0aaf0a79-1a39-4d59-abbf-1bebca8209d2", "0aaf0a79-1a39-4d59-abbf-1bebca8209d2"),
    ("0aaf0a791a394d59abbf1bebca8209d2", "0aaf0a79-1a39-4d59-abbf-1bebca8209d2"),
    ("0-a-af0a791a394d59abbf1bebca8209d2", "0aaf0a79-1a39-4d59-abbf-1bebca8209d2"),
])
def test_parse_uuid(value, expected):
    assert parse_uuid(value) == expected


@pytest.mark.parametrize("value", [
    "asdf", "0AAF0A79-1A39-4D59-ABBF-1BEBCA8209D2ABC", "", "0aaf0a791a394d59abbf1bebca8209dg",
    "00000000-0000-0000-0000-000000000000", " 0aaf0a791a394d59abbf1bebca8209d2",
])
def test_parse_uuid_bad(value):
    with pytest.raises(AppcError, match="invalid UUID"):
        parse_uuid(value)


@pytest.mark.parametrize("value", ["sha512-abcdefghi", "sha512-...",
                                   "sha512-06c733b1838136838e6d2d3e8fa5aea4c7905e92"])
def test_image_id_good(value):
    # Like appc v0.7.4 the hash value's form is not checked.
    assert validate_image_id(value) == value


@pytest.mark.parametrize("value, reason", [
    ("sha512-", "empty"), ("sha1-abcdef", "unknown hash type"), ("-abcdef", "unknown hash type"),
    ("sha512", "sha512-<hex digits>"), ("sha512-ab-cd", "sha512-<hex digits>"),
])
def test_image_id_bad(value, reason):
    with pytest.raises(AppcError, match=reason):
        validate_image_id(value)


@pytest.mark.parametrize("value, canonical", [
    # From semver_test.go plus go-semver's lax number parsing.
    ("1.0.0", "1.0.0"), ("3.2.1", "3.2.1"), ("3.2.1-foo", "3.2.1-foo"),
    ("1.2.3-alpha+git", "1.2.3-alpha+git"), ("0.7.4", "0.7.4"), ("01.2.3", "1.2.3"),
    ("0.0.0-alpha", "0.0.0-alpha"), ("1.2.3+meta-data", "1.2.3+meta-data"), ("1.2.3-", "1.2.3"),
])
def test_semver_good(value, canonical):
    assert parse_semver(value) == canonical


@pytest.mark.parametrize("value", ["1", "1.2", "1.2.3.4", "", "a.b.c", "1.2.x", "1..3",
                                   "1.2.-3", "99999999999999999999.0.0"])
def test_semver_bad(value):
    with pytest.raises(AppcError, match="must be a version"):
        parse_semver(value)


@pytest.mark.parametrize("value", ["0.0.0", "00.0.0", "0.0.0-"])
def test_semver_zero(value):
    with pytest.raises(AppcError, match="cannot be zero"):
        parse_semver(value)
