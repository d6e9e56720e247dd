"""Configuration kinds, layering (system < local < user) and per-directory duplicates."""

import json

import pytest

from rkt_core.config import ConfigError, load_config


def write(dir_, sub, name, doc):
    path = dir_ / sub
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(json.dumps(doc))


def auth(domains, user, password="pw"):
    return {"rktKind": "auth", "rktVersion": "v1", "domains": domains, "type": "basic",
            "credentials": {"user": user, "password": password}}


def test_layers_override_per_domain(tmp_path):
    system, local, user = tmp_path / "sys", tmp_path / "local", tmp_path / "user"
    write(system, "auth.d", "a.json", auth(["foo.com", "bar.com"], "sys"))
    write(local, "auth.d", "b.json", {"rktKind": "auth", "rktVersion": "v1", "domains": ["bar.com"],
                                      "type": "oauth", "credentials": {"token": "tok"}})
    write(user, "auth.d", "c.json", auth(["foo.com"], "me"))
    config = load_config(str(system), str(local), str(user))
    assert config.auth["foo.com"].credentials["user"] == "me"
    assert config.auth["bar.com"].headers() == {"Authorization": "Bearer tok"}
    assert config.auth["foo.com"].headers()["Authorization"].startswith("Basic ")


def test_duplicate_domain_in_one_directory_is_an_error(tmp_path):
    write(tmp_path, "auth.d", "a.json", auth(["foo.com"], "a"))
    write(tmp_path, "auth.d", "b.json", auth(["foo.com"], "b"))
    with pytest.raises(ConfigError, match='auth for domain "foo.com" is already specified'):
        load_config(str(tmp_path))


def test_docker_auth_paths_and_stage1(tmp_path):
    local = tmp_path / "local"
    write(local, "auth.d", "d.json", {"rktKind": "dockerAuth", "rktVersion": "v1",
                                      "registries": ["quay.io"],
                                      "credentials": {"user": "u", "password": "p"}})
    write(local, "paths.d", "p.json", {"rktKind": "paths", "rktVersion": "v1", "data": "/srv/rkt"})
    write(local, "stage1.d", "s.json", {"rktKind": "stage1", "rktVersion": "v1", "name": "fly",
                                        "version": "1", "location": "/usr/lib/rkt/s1.aci"})
    config = load_config(str(tmp_path / "missing"), str(local))
    assert config.docker_auth == {"quay.io": {"user": "u", "password": "p"}}
    assert config.data_dir == "/srv/rkt"
    assert (config.stage1_name, config.stage1_version) == ("fly", "1")
    kinds = [e["rktKind"] for e in config.to_json()["stage0"]]
    assert kinds == ["dockerAuth", "paths", "stage1"]


@pytest.mark.parametrize("sub,doc,message", [
    ("paths.d", {"rktKind": "paths", "rktVersion": "v1", "data": "relative"}, "absolute path"),
    ("paths.d", {"rktVersion": "v1"}, "no rktKind"),
    ("paths.d", {"rktKind": "paths"}, "no rktVersion"),
    ("paths.d", {"rktKind": "auth", "rktVersion": "v1"}, "has kind"),
    ("paths.d", {"rktKind": "paths", "rktVersion": "v2"}, "version"),
    ("auth.d", {"rktKind": "auth", "rktVersion": "v1", "domains": ["x"], "type": "magic",
                "credentials": {}}, "unknown auth type"),
    ("stage1.d", {"rktKind": "stage1", "rktVersion": "v1", "version": "1"}, "name is missing"),
    ("stage1.d", {"rktKind": "stage1", "rktVersion": "v1", "location": "ftp://x"}, "invalid scheme"),
])
def test_malformed_files_are_errors_naming_the_file(tmp_path, sub, doc, message):
    write(tmp_path, sub, "bad.json", doc)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(str(tmp_path))
    assert "bad.json" in str(err.value)


def test_non_json_files_are_ignored_and_broken_json_is_an_error(tmp_path):
    (tmp_path / "paths.d").mkdir()
    (tmp_path / "paths.d" / "README").write_text("not config")
    assert load_config(str(tmp_path)).data_dir == ""
    (tmp_path / "paths.d" / "x.json").write_text("{")
    with pytest.raises(ConfigError, match="failed to parse"):
        load_config(str(tmp_path))


def test_flavor_settings_layer_per_setting(tmp_path):
    system, local = tmp_path / "sys", tmp_path / "local"
    stage1 = {"rktKind": "stage1", "rktVersion": "v1"}
    write(system, "stage1.d", "a.json", {**stage1, "flavors": {"kvm": {"accel": "kvm",
                                                                      "cache": "/c"}}})
    write(local, "stage1.d", "b.json", {**stage1, "flavors": {"kvm": {"accel": "tcg"}}})
    config = load_config(str(system), str(local))
    assert config.stage1_flavors == {"kvm": {"accel": "tcg", "cache": "/c"}}
    assert config.to_json()["stage0"][-1]["flavors"] == {"kvm": {"accel": "tcg", "cache": "/c"}}


@pytest.mark.parametrize("second,message", [
    ({"flavors": {"kvm": {"accel": "tcg"}}}, 'setting "accel" of the kvm flavor is already'),
    ({"flavors": {"kvm": "tcg"}}, '"flavors" must map flavor names to objects'),
])
def test_flavor_settings_given_twice_or_malformed_are_errors(tmp_path, second, message):
    stage1 = {"rktKind": "stage1", "rktVersion": "v1"}
    write(tmp_path, "stage1.d", "a.json", {**stage1, "flavors": {"kvm": {"accel": "kvm"}}})
    write(tmp_path, "stage1.d", "b.json", {**stage1, **second})
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path))
