"""The app section: exec, user/group, event handlers, environment, mount points, ports."""

import json

import pytest

from rkt_core.appc import (App, AppcError, EnvironmentVariable, EventHandler, MountPoint, Port)


def app(**fields) -> App:
    return App.from_json({"user": "0", "group": "0", **fields})


@pytest.mark.parametrize("exec_", [["/bin/httpd"], ["/app", "arg1", "arg2"], [], ["app"],
                                   ["bin/app", "arg1"]])
def test_exec_may_be_empty_or_relative(exec_):
    assert app(exec=exec_, workingDirectory="/tmp").exec == exec_


def test_absent_exec_is_empty_and_written_as_null_like_a_nil_go_slice():
    parsed = app()
    assert parsed.exec == []
    assert parsed.to_json()["exec"] is None


@pytest.mark.parametrize("fields, message", [
    ({"exec": ["/app"]}, "user is required"),
    ({"exec": ["/app"], "user": "0"}, "group is required"),
    ({"exec": ["app"], "group": "0"}, "user is required"),
    ({"exec": ["/app"], "user": "", "group": "0"}, "user is required"),
    ({"exec": "not a list", "user": "0", "group": "0"}, "exec: must be a JSON array"),
    ({"exec": ["/a"], "user": 0, "group": "0"}, "user: must be a string"),
])
def test_user_group_and_exec_types(fields, message):
    with pytest.raises(AppcError, match=message):
        App.from_json(fields)


@pytest.mark.parametrize("workdir", ["stuff", "../home/fred"])
def test_working_directory_must_be_absolute(workdir):
    with pytest.raises(AppcError, match="must be an absolute path"):
        app(workingDirectory=workdir)


def test_event_handlers():
    parsed = app(eventHandlers=[{"name": "pre-start", "exec": ["/pre"]},
                                {"name": "post-stop"}])
    assert [(h.name, h.exec) for h in parsed.event_handlers] == [("pre-start", ["/pre"]),
                                                                 ("post-stop", [])]


@pytest.mark.parametrize("handlers", [
    [{"name": "pre-start"}, {"name": "pre-start"}],
    [{"name": "post-stop"}, {"name": "pre-start"}, {"name": "post-stop"}],
])
def test_one_event_handler_per_name(handlers):
    with pytest.raises(AppcError, match="duplicate event handler"):
        app(eventHandlers=handlers)


@pytest.mark.parametrize("name", ["", "post-start", "PRE-START"])
def test_event_handler_names(name):
    with pytest.raises(AppcError, match="must be pre-start or post-stop"):
        EventHandler(name, ["/x"])


@pytest.mark.parametrize("name", ["DEBUG", "_0_DEBUG_0_", "a", "_"])
def test_good_environment_names(name):
    assert app(environment=[{"name": name, "value": "true"}]).env(name) == "true"


@pytest.mark.parametrize("name", ["", "0DEBUG", "VERBOSE-DEBUG", "A B", "Ä"])
def test_bad_environment_names(name):
    with pytest.raises(AppcError, match="invalid environment variable name"):
        EnvironmentVariable(name, "true")


def test_duplicate_environment_names():
    with pytest.raises(AppcError, match='duplicate environment variable "DEBUG"'):
        app(environment=[{"name": "DEBUG", "value": "1"}, {"name": "DEBUG", "value": "1"}])


def test_environment_keeps_order_and_null_is_empty():
    parsed = app(environment=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    assert [(e.name, e.value) for e in parsed.environment] == [("B", "2"), ("A", "1")]
    assert app(environment=None).environment == []
    assert parsed.env("C") is None and parsed.env("C", "x") == "x"


def test_mount_points():
    parsed = app(mountPoints=[{"name": "database", "path": "/var/lib/db", "readOnly": True},
                              {"name": "logs", "path": "/var/log"}])
    assert parsed.mount_points == [MountPoint("database", "/var/lib/db", True),
                                   MountPoint("logs", "/var/log")]
    assert parsed.to_json()["mountPoints"] == [
        {"name": "database", "path": "/var/lib/db", "readOnly": True},
        {"name": "logs", "path": "/var/log"}]


@pytest.mark.parametrize("mount, message", [
    ({"name": "Database", "path": "/db"}, "invalid mount point name"),
    ({"name": "db.x", "path": "/db"}, "invalid mount point name"),
    ({"path": "/db"}, "invalid mount point name"),
    ({"name": "db"}, "path must be set"),
    ({"name": "db", "path": "/db", "readOnly": "yes"}, "must be true or false"),
])
def test_bad_mount_points(mount, message):
    with pytest.raises(AppcError, match=message):
        app(mountPoints=[mount])


def test_ports_default_count_and_serialise_every_field():
    parsed = app(ports=[{"name": "health", "port": 4000, "protocol": "tcp",
                         "socketActivated": True}])
    assert parsed.ports == [Port("health", "tcp", 4000, 1, True)]
    assert parsed.to_json()["ports"] == [{"name": "health", "protocol": "tcp", "port": 4000,
                                          "count": 1, "socketActivated": True}]


@pytest.mark.parametrize("port, count", [(32456, 100), (1, 65535), (65535, 1), (65535, 0),
                                         (80, 1)])
def test_good_port_ranges(port, count):
    assert Port("www", "tcp", port, count).count == (count or 1)


@pytest.mark.parametrize("port, count, message", [
    (88888, 1, "not in the range 1-65535"), (0, 1, "not in the range 1-65535"),
    (32456, 45678, "go past 65535"), (65535, 2, "go past 65535"), (2, 65535, "go past 65535"),
])
def test_bad_port_ranges(port, count, message):
    with pytest.raises(AppcError, match=message):
        Port("www", "tcp", port, count)


@pytest.mark.parametrize("port, message", [
    ({"name": "www", "protocol": "tcp"}, "not in the range"),
    ({"name": "www", "protocol": "tcp", "port": -1}, "out of range"),
    ({"name": "www", "protocol": "tcp", "port": 80.0}, "must be an integer"),
    ({"name": "www", "protocol": "tcp", "port": True}, "must be an integer"),
    ({"name": "WWW", "protocol": "tcp", "port": 80}, "invalid port name"),
    ({"protocol": "tcp", "port": 80}, "invalid port name"),
])
def test_bad_ports_from_json(port, message):
    with pytest.raises(AppcError, match=message):
        app(ports=[port])


def test_supplementary_gids_both_spellings_decode():
    assert app(supplementaryGIDs=[1, 2]).supplementary_gids == [1, 2]
    assert app(supplementaryGids=[3]).supplementary_gids == [3]
    assert app(supplementarygids=[4]).to_json()["supplementaryGIDs"] == [4]
    with pytest.raises(AppcError, match="must be an integer"):
        app(supplementaryGIDs=["1"])


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored():
    parsed = App.from_json({"Exec": ["/a"], "USER": "0", "Group": "0", "WORKINGDIRECTORY": "/w",
                            "futureField": {"x": 1}})
    assert (parsed.exec, parsed.user, parsed.group, parsed.working_directory) == \
        (["/a"], "0", "0", "/w")


def test_to_json_follows_go_field_order_and_omits_empty():
    parsed = App.from_json(json.loads("""{
        "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}],
        "ports": [{"name": "www", "protocol": "tcp", "port": 80}],
        "mountPoints": [{"name": "db", "path": "/db"}],
        "environment": [{"name": "A", "value": "1"}],
        "workingDirectory": "/opt",
        "supplementaryGIDs": [5],
        "group": "0", "user": "0",
        "eventHandlers": [{"name": "pre-start", "exec": ["/p"]}],
        "exec": ["/a"]}"""))
    assert list(parsed.to_json()) == ["exec", "eventHandlers", "user", "group",
                                      "supplementaryGIDs", "workingDirectory", "environment",
                                      "mountPoints", "ports", "isolators"]
    assert list(App(["/a"], "0", "0").to_json()) == ["exec", "user", "group"]


def test_constructing_validates():
    assert App(["/bin/sh"], "0", "0").to_json() == {"exec": ["/bin/sh"], "user": "0",
                                                    "group": "0"}
    with pytest.raises(AppcError, match="user is required"):
        App(["/bin/sh"])


def test_to_json_revalidates_after_mutation():
    parsed = App(["/bin/sh"], "0", "0")
    parsed.working_directory = "relative"
    with pytest.raises(AppcError, match="absolute path"):
        parsed.to_json()
