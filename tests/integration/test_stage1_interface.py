"""The versioned stage1 contract, through the real ``rkt`` command with test flavors installed
beside the real ones: interface versions refused or honoured, run options gated by version, a
``run`` that returns no exit status, and ``--mds-register`` asking plugins for the pod's
metadata URL."""

import pytest

from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.plugins import plugin_site
from rkt_core.testing.runner import Rkt

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
            f.write(repr((options.mds_register, options.metadata_url)))
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


# Registers pods under the URL in TEST_MDS_URL (no answer without it), as a metadata service
# plugin would.
REGISTRAR = '''
import os

from rkt_core.plugin_api import hookimpl

RKT_PLUGIN_API = 1


@hookimpl(tryfirst=True)
def rkt_register_pod(pod, options):
    with open(pod.file("registered-with-netns"), "w") as f:
        f.write(options.netns)
    return os.environ.get("TEST_MDS_URL")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return plugin_site(str(tmp_path_factory.mktemp("site")), "rkt-test-flavors",
                       {"test-flavors": "rkt_test_flavors", "test-registrar": "rkt_test_registrar"},
                       {"rkt_test_flavors": FLAVORS, "rkt_test_registrar": REGISTRAR})


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/sh", "-c", "exit 5"])


def rkt(site, base, *args, **env):
    """``rkt ARGS`` on directories under ``base``, with the test flavors installed and the
    installed metadata service plugin left out (the registrar above stands in for it)."""
    runner = Rkt(base, env={"RKT_DISABLE_PLUGINS": "metadata-service"})
    runner.add_plugin_path(site)
    return runner(*args, env=env)


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
    assert not list((tmp_path / "data" / "pods").glob("*/*"))


def test_a_run_option_reaches_only_flavors_whose_version_knows_it(site, image, tmp_path):
    out = rkt(site, tmp_path, "run", "--stage1-name=v1", "--mds-register", image)
    assert out.returncode == 254
    assert ("the v1 flavor (stage1 interface version 1) does not support --mds-register "
            "(version 2 and later)") in out.stderr
    assert not list((tmp_path / "data" / "pods").glob("*/*"))
    url = "http://127.0.0.1:18112/0123456789abcdef0123456789abcdef"
    out = rkt(site, tmp_path, "run", "--stage1-name=v2", "--mds-register",
              f"--uuid-file-save={tmp_path}/uuid", image, TEST_MDS_URL=url)
    assert out.returncode == 5, out.stderr
    uuid = (tmp_path / "uuid").read_text()
    assert (tmp_path / "data" / "pods" / "run" / uuid / "options-seen").read_text() == repr((True, url))


@pytest.mark.parametrize("flavor", ["v2", "fly", "nspawn"])
def test_the_registered_metadata_url_reaches_the_apps(site, image, tmp_path, flavor):
    url = "http://127.0.0.1:18112/0123456789abcdef0123456789abcdef"
    out = rkt(site, tmp_path, "run", f"--stage1-name={flavor}", "--net=host", "--mds-register",
              f"--uuid-file-save={tmp_path}/uuid", image, "--exec", "/bin/sh", "--", "-c",
              'echo "url=$AC_METADATA_URL"', TEST_MDS_URL=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"url={url}\n"
    uuid = (tmp_path / "uuid").read_text()
    assert (tmp_path / "data" / "pods" / "run" / uuid / "registered-with-netns").read_text() == ""
    # without --mds-register, no registration and no URL
    out = rkt(site, tmp_path, "run", f"--stage1-name={flavor}", "--net=host", image, "--exec",
              "/bin/sh", "--", "-c", 'echo "url=${AC_METADATA_URL-unset}"', TEST_MDS_URL=url)
    assert out.returncode == 0 and out.stdout == "url=unset\n", out.stderr


def test_a_run_nobody_registers_fails_before_the_flavor_runs(site, image, tmp_path):
    out = rkt(site, tmp_path, "run", "--stage1-name=v2", "--mds-register",
              f"--uuid-file-save={tmp_path}/uuid", image)
    assert out.returncode == 254
    assert "rkt: --mds-register: no metadata service registered the pod" in out.stderr
    assert "rkt metadata-service" in out.stderr and "rkt-metadata-service" in out.stderr
    pod = tmp_path / "data" / "pods" / "run" / (tmp_path / "uuid").read_text()
    assert not (pod / "options-seen").exists() and not (pod / "pid").exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/t", "http://127.0.0.1:18112/t\nX=1",
                                 "http://127.0.0.1/a b"])
def test_an_invalid_metadata_url_is_refused(site, image, tmp_path, url):
    out = rkt(site, tmp_path, "run", "--stage1-name=v2", "--mds-register",
              f"--uuid-file-save={tmp_path}/uuid", image, TEST_MDS_URL=url)
    assert out.returncode == 254
    assert "registered under an invalid metadata service URL" in out.stderr
    pod = tmp_path / "data" / "pods" / "run" / (tmp_path / "uuid").read_text()
    assert not (pod / "options-seen").exists()


@pytest.mark.parametrize("flavor,got", [("none", "None"), ("bool", "True"),
                                        ("big", "300")])
def test_a_run_without_an_exit_status_is_an_error(site, image, tmp_path, flavor, got):
    out = rkt(site, tmp_path, "run", f"--stage1-name={flavor}", image)
    assert out.returncode == 254
    assert f"rkt: the {flavor} flavor returned no exit status for the pod (got {got})" \
        in out.stderr
