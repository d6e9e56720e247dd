"""The image flavor without root: reading stage1 manifests, the arguments of each interface
version, entrypoint paths resolved inside the image, the pod's pid 1 from ``pid`` or ``ppid``."""

import json
import os
import signal
import subprocess
from types import SimpleNamespace

import pytest
import rkt_stage1_image.plugin
from rkt_stage1_image.manifest import (Stage1Image, enter_arguments, gc_arguments, run_arguments,
                                       stop_arguments)
from rkt_stage1_image.stage1 import dns_conf_mode, entrypoint_path, pod_pid1

from rkt_core.plugin_api import ImageError, RktError, RunOptions
from rkt_core.plugin_api.appc import ImageManifest
from rkt_core.testing.plugins import load_plugin

PREFIX = "coreos.com/rkt/stage1/"
UUID = "0c2bd6b5-2ae2-4b1d-9d57-34d4c5f2a6c1"


def manifest(annotations):
    """A manifest with ``coreos.com/rkt/stage1/<key>`` annotations."""
    return ImageManifest.from_json(json.dumps({
        "acKind": "ImageManifest", "acVersion": "0.7.4", "name": "example.com/stage1",
        "annotations": [{"name": PREFIX + k, "value": v} for k, v in annotations.items()]}))


def image(version=5, **entrypoints):
    return Stage1Image("example.com/stage1", version, {"run": "/init", **entrypoints})


def test_the_plugin_declares_a_flavor_that_runs_stage1_images():
    plugins, info = load_plugin(rkt_stage1_image.plugin, "stage1-image")
    assert info.errors == [] and info.status == "loaded"
    assert plugins.stage1_image_flavor(manifest({"run": "/init"})).name == "image"
    with pytest.raises(ImageError, match="is not a stage1 image"):
        plugins.stage1_image_flavor(manifest({"enter": "/enter"}))


def test_a_manifest_names_entrypoints_and_a_version():
    read = Stage1Image.from_manifest(manifest({"run": "/init", "enter": "/enter",
                                               "app/add": "/app-add", "interface-version": "5"}))
    assert read == Stage1Image("example.com/stage1", 5,
                               {"run": "/init", "enter": "/enter", "app/add": "/app-add"})
    assert Stage1Image.from_manifest(manifest({"run": "/init"})).version == 1
    with pytest.raises(RktError, match='has no stop entrypoint'):
        read.entrypoint("stop")


@pytest.mark.parametrize("annotations,message", [
    ({"enter": "/enter"}, "is not a stage1 image"),
    ({"run": "init"}, 'the run entrypoint "init" is not an absolute path'),
    ({"run": "/../../bin/sh"}, "is not an absolute path"),
    ({"run": "/init", "gc": "/a/./gc"}, 'the gc entrypoint "/a/./gc"'),
    ({"run": "/init", "stop": "/a//stop"}, "is not an absolute path"),
    ({"run": "/init", "interface-version": "0"}, 'interface version "0" is not a number'),
    ({"run": "/init", "interface-version": "-5"}, "is not a number"),
    ({"run": "/init", "interface-version": "٥"}, "is not a number"),
])
def test_malformed_stage1_manifests_are_refused(annotations, message):
    with pytest.raises(ImageError, match=message.replace("(", r"\(")):
        Stage1Image.from_manifest(manifest(annotations))


def options(**kwargs):
    return RunOptions(lock_fd=3, local_config="/etc/rkt", **kwargs)


def test_run_arguments_of_the_latest_versions():
    warnings = []
    args = run_arguments(image(6), options(debug=True, interactive=True, hostname="h",
                                           insecure=32 | 64 | 128 | 1),
                         UUID, "resolv=host,hosts=default", warnings.append)
    assert args == ["--debug", "--net=host", "--interactive", "--local-config=/etc/rkt",
                    "--hostname=h", "--dns-conf-mode=resolv=host,hosts=default",
                    "--disable-capabilities-restriction", "--disable-paths", "--disable-seccomp",
                    UUID]
    assert warnings == []


@pytest.mark.parametrize("version,kept,dropped", [
    (1, [], ["--hostname", "--dns-conf-mode", "--insecure-options=paths"]),
    (2, ["--hostname=h"], ["--dns-conf-mode", "--insecure-options=paths"]),
    (3, ["--hostname=h", "--disable-paths"], ["--dns-conf-mode"]),
    (4, ["--hostname=h", "--dns-conf-mode=resolv=none,hosts=host", "--disable-paths"], []),
])
def test_options_an_older_version_does_not_know_are_dropped_with_a_warning(version, kept,
                                                                          dropped):
    warnings = []
    args = run_arguments(image(version), options(hostname="h", insecure=64), UUID,
                         "resolv=none,hosts=host", warnings.append)
    assert args == ["--net=host", "--local-config=/etc/rkt", *kept, UUID]
    assert [w.split(" is not supported")[0] for w in warnings] == \
        [f"warning: {flag}" + (" (from --dns and --hosts-entry)" if "dns" in flag else "")
         for flag in dropped]
    assert all(f"(interface version {version};" in w for w in warnings)


def test_no_warning_for_options_that_were_not_given():
    warnings = []
    assert run_arguments(image(1), options(insecure=1), UUID, "", warnings.append) == \
        ["--net=host", "--local-config=/etc/rkt", UUID]
    assert warnings == []


def test_enter_stop_and_gc_arguments():
    assert enter_arguments(42, "app", ["/bin/sh", "-c", "x"]) == \
        ["--pid=42", "--appname=app", "--", "/bin/sh", "-c", "x"]
    assert stop_arguments(UUID, True) == ["--force", UUID]
    assert stop_arguments(UUID, False) == [UUID]
    assert gc_arguments(image(5), UUID, True, "/etc/rkt") == \
        ["--debug", "--local-config", "/etc/rkt", UUID]
    assert gc_arguments(image(4), UUID, False, "/etc/rkt") == [UUID]


def test_dns_conf_mode_and_the_files_the_stage1_gets():
    assert dns_conf_mode(options()) == ("", {})
    assert dns_conf_mode(options(dns=("host",), resolv_conf="/etc/resolv.conf",
                                 hosts_entries=("host",), hosts_file="/etc/hosts")) == \
        ("resolv=host,hosts=host", {})
    assert dns_conf_mode(options(dns=("none",))) == ("resolv=none,hosts=default", {})
    assert dns_conf_mode(options(dns=("192.0.2.1",), resolv_conf="/pod/resolv.conf",
                                 hosts_entries=("192.0.2.2=db",), hosts_file="/pod/hosts")) == \
        ("resolv=stage0,hosts=stage0", {"rkt-resolv.conf": "/pod/resolv.conf",
                                        "rkt-hosts": "/pod/hosts"})


# --- paths and pids ----------------------------------------------------------------------------


def pod_at(path, locked=True):
    return SimpleNamespace(uuid=UUID, path=str(path), file=lambda *p: os.path.join(path, *p),
                           read_text=lambda name: _read(path / name), is_locked=lambda: locked)


def _read(path):
    return path.read_text().strip() if path.exists() else None


def test_entrypoints_resolve_inside_the_stage1_root(tmp_path):
    rootfs = tmp_path / "stage1" / "rootfs"
    (rootfs / "usr" / "lib").mkdir(parents=True)
    (rootfs / "usr" / "lib" / "init").write_text("")
    (rootfs / "init").symlink_to("/usr/lib/init")
    (rootfs / "up").symlink_to("../../../../../../bin/true")
    (rootfs / "host").symlink_to("/bin/true")
    pod = pod_at(tmp_path)
    assert entrypoint_path(pod, image(), "run") == f"{rootfs}/usr/lib/init"
    for link in ("/up", "/host"):
        with pytest.raises(RktError, match=f'the enter entrypoint "{link}" of stage1 image'):
            entrypoint_path(pod, image(enter=link), "enter")


def test_pid1_is_pid_else_the_only_child_of_ppid(tmp_path):
    pod = pod_at(tmp_path)
    (tmp_path / "pid").write_text("123\n")
    (tmp_path / "ppid").write_text("456\n")
    assert pod_pid1(pod) == 123
    (tmp_path / "pid").unlink()
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    try:
        (tmp_path / "ppid").write_text(str(parent.pid))
        assert pod_pid1(pod) == child
    finally:
        os.kill(child, signal.SIGKILL)
        parent.wait()


def test_pid1_of_a_pod_that_exited_without_one(tmp_path):
    with pytest.raises(RktError, match="is not running any more"):
        pod_pid1(pod_at(tmp_path, locked=False))
    (tmp_path / "pid").write_text("12x")
    with pytest.raises(RktError, match="malformed pid file"):
        pod_pid1(pod_at(tmp_path))
