"""The fly flavor's parts, without root: its declaration and what it refuses (the chroot runner
it is built on is tested in tests/unit/pod/test_chroot.py)."""

from types import SimpleNamespace

import pytest

from rkt_core.errors import RktError
from rkt_core.testing.plugins import load_plugin
from rkt_core.types import RunOptions
from rkt_stage1_fly import plugin
from rkt_stage1_fly.stage1 import FlyStage1


def test_plugin_declares_the_fly_flavor():
    plugins, info = load_plugin(plugin, "stage1-fly")
    assert info.errors == []
    flavor = plugins.stage1_flavor("fly")
    assert flavor.interface_version == 2
    features = flavor.factory().features
    assert (features.interactive, features.contained_network, features.private_users,
            features.multi_app, features.isolators) == (True, False, False, False, frozenset())


def _pod(apps=1):
    manifest = SimpleNamespace(apps=[object()] * apps)
    return SimpleNamespace(manifest=lambda: manifest)


@pytest.mark.parametrize("apps,options,message", [
    (2, RunOptions(lock_fd=3), "exactly one app; this pod has 2"),
    (1, RunOptions(lock_fd=3, net=("default",)), "only supports --net=host"),
    (1, RunOptions(lock_fd=3, net=("host", "none")), "only supports --net=host"),
    (1, RunOptions(lock_fd=3, private_users=True), "--private-users"),
    (1, RunOptions(lock_fd=3, hostname="x"), "--hostname"),
])
def test_run_refuses_what_fly_cannot_do(apps, options, message):
    with pytest.raises(RktError, match=message):
        FlyStage1().run(_pod(apps), options)
