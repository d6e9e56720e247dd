"""What stage0 refuses for a flavor from its Stage1Features, before a pod exists."""

from types import SimpleNamespace

import pytest

from rkt_core.errors import UsageError
from rkt_core.stage0.run import check_options
from rkt_core.types import RunOptions, Stage1Features

MANIFEST = SimpleNamespace(ports=[], apps=[SimpleNamespace(app=SimpleNamespace(isolators=[]))])


def _stage1(**features):
    return SimpleNamespace(features=Stage1Features(**features))


def test_a_flavor_without_host_network_refuses_net_host():
    stage1 = _stage1(contained_network=True, host_network=False)
    with pytest.raises(UsageError, match="needs a contained network; --net=host"):
        check_options(stage1, "vm", MANIFEST, RunOptions(lock_fd=-1, net=("host",)),
                      net_given=True)


def test_a_flavor_without_host_network_gets_default_and_none():
    stage1 = _stage1(contained_network=True, host_network=False)
    defaulted = check_options(stage1, "vm", MANIFEST, RunOptions(lock_fd=-1), net_given=False)
    assert defaulted.net == ("default",)
    none = RunOptions(lock_fd=-1, net=("none",))
    assert check_options(stage1, "vm", MANIFEST, none, net_given=True).net == ("none",)


def test_host_network_stays_the_default_of_flavors_that_only_have_it():
    options = check_options(_stage1(), "fly", MANIFEST, RunOptions(lock_fd=-1), net_given=False)
    assert options.net == ("host",)
