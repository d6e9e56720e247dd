"""The versioned stage1 contract, through the real ``rkt`` command with test flavors installed
beside the real ones: interface versions refused or honoured, run options gated by version, and
a ``run`` that returns no exit status."""

import os
import subprocess
import sys

import pytest

from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.plugins import plugin_site

pytestmark = pytest.mark.root

FLAVORS = '''
from rkt_core.plugin_api import RunOptions, Stage1Features, Stage1Flavor, hookimpl
from rkt_core.plugin_api.stage1 import app_runtimes, chroot

RKT_PLUGIN_API = 1


class Chroot:
    """Runs the app with the chroot runner, or returns what RESULT says instead."""

    features = Stage1Features()

    def __init__(self, result="exit status"):
        self.result = result

    def run(self, pod, options):
        with open(pod.file("options-seen"), "w") as f:
            f.write(repr(options.mds_register))
        code = chroot.run_app(pod, app_runtimes(pod)[0], options)
        return code if self.result == "exit status" else self.result

    def enter(self, pod, app, argv):
        return 0

    def stop(self, pod, force):
        chroot.signal_app(pod, force)

    def gc(self, pod):
        pass


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor("v1", Chroot, 1), Stage1Flavor("v2", Chroot, 2),
            Stage1Flavor("v3", Chroot, 3), Stage1Flavor("v0", Chroot, 0),
            Stage1Flavor("none", lambda: Chroot(result=None), 1),
            Stage1Flavor("bool", lambda: Chroot(result=True), 1),
            Stage1Flavor("big", lambda: Chroot(result=300), 1)]
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return plugin_site(str(tmp_path_factory.mktemp("site")), "rkt-test-flavors",
                       {"test-flavors": "rkt_test_flavors"}, {"rkt_test_flavors": FLAVORS})


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/sh", "-c", "exit 5"])


def rkt(site, data, *args):
    env = dict(os.environ, PYTHONPATH=site, XDG_CACHE_HOME=os.path.join(site, ".cache"))
    return subprocess.run([sys.executable, "-m", "rkt_core.cli.main", f"--dir={data}",
                           "--insecure-options=image", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_flavors_of_the_supported_interface_versions_run(site, image, tmp_path):
    for flavor in ("v1", "v2"):
        out = rkt(site, tmp_path / flavor, "run", f"--stage1-name={flavor}", image)
        assert out.returncode == 5, out.stderr


@pytest.mark.parametrize("flavor,hint", [("v3", "upgrade rkt-core"),
                                         ("v0", "install a newer rkt-stage1-v0")])
def test_other_interface_versions_are_refused_before_any_pod_exists(site, image, tmp_path,
                                                                    flavor, hint):
    out = rkt(site, tmp_path, "run", f"--stage1-name={flavor}", image)
    assert out.returncode == 254
    assert (f"the {flavor} flavor implements stage1 interface version {flavor[1]}; this rkt "
            "drives versions 1 to 2") in out.stderr
    assert hint in out.stderr
    assert not list((tmp_path / "pods").glob("*/*"))


def test_a_run_option_reaches_only_flavors_whose_version_knows_it(site, image, tmp_path):
    out = rkt(site, tmp_path, "run", "--stage1-name=v1", "--mds-register", image)
    assert out.returncode == 254
    assert ("the v1 flavor (stage1 interface version 1) does not support --mds-register "
            "(version 2 and later)") in out.stderr
    assert not list((tmp_path / "pods").glob("*/*"))
    out = rkt(site, tmp_path, "run", "--stage1-name=v2", "--mds-register",
              f"--uuid-file-save={tmp_path}/uuid", image)
    assert out.returncode == 5, out.stderr
    uuid = (tmp_path / "uuid").read_text()
    assert (tmp_path / "pods" / "run" / uuid / "options-seen").read_text() == "True"


@pytest.mark.parametrize("flavor,got", [("none", "None"), ("bool", "True"),
                                        ("big", "300")])
def test_a_run_without_an_exit_status_is_an_error(site, image, tmp_path, flavor, got):
    out = rkt(site, tmp_path, "run", f"--stage1-name={flavor}", image)
    assert out.returncode == 254
    assert f"rkt: the {flavor} flavor returned no exit status for the pod (got {got})" \
        in out.stderr
