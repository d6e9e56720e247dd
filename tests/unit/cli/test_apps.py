"""The image list of run/prepare: per-app flags, app arguments, pod flags anywhere."""

import pytest

from rkt_core.cli.apps import split_app_args
from rkt_core.cli.declare import value_options
from rkt_core.cli.main import GLOBAL_OPTIONS
from rkt_core.cli.run import run
from rkt_core.errors import UsageError


def split(*args):
    return split_app_args(value_options(run.params + GLOBAL_OPTIONS), list(args))


def test_flags_after_an_image_belong_to_it_and_args_end_at_triple_dash():
    pod, apps, mounts = split("--volume=data,kind=empty", "a.aci", "--exec", "/bin/sh", "--", "-c",
                              "exit 7", "---", "b.aci", "--user=1000", "--memory", "64M")
    assert pod == ["--volume=data,kind=empty"]
    assert [a.image for a in apps] == ["a.aci", "b.aci"]
    assert apps[0].exec == "/bin/sh" and apps[0].args == ["-c", "exit 7"]
    assert apps[1].user == "1000" and apps[1].memory == "64M" and apps[1].args is None
    assert mounts == []


def test_args_run_to_the_end_without_triple_dash():
    _, apps, _ = split("a.aci", "--", "--exec", "x", "b.aci")
    assert len(apps) == 1 and apps[0].args == ["--exec", "x", "b.aci"]


def test_pod_flags_and_global_flags_are_accepted_after_images():
    pod, apps, _ = split("a.aci", "--insecure-options", "image", "--net=host", "--net", "--debug")
    assert [a.image for a in apps] == ["a.aci"]
    assert pod == ["--insecure-options", "image", "--net=host", "--net", "--debug"]


def test_mount_before_images_is_for_every_app():
    _, apps, mounts = split("--mount", "volume=data,target=/data", "a.aci",
                            "--mount=volume=x,target=/x")
    assert [(m.volume, m.path) for m in mounts] == [("data", "/data")]
    assert [(m.volume, m.path) for m in apps[0].mounts] == [("x", "/x")]


def test_environment_caps_and_gids():
    _, (app,), _ = split("a.aci", "--environment=A=1", "--environment", "B=x=y",
                         "--caps-retain=CAP_NET_ADMIN,sys_admin", "--supplementary-gids=5,6")
    assert app.environment == {"A": "1", "B": "x=y"}
    assert app.caps_retain == ["CAP_NET_ADMIN", "sys_admin"]
    assert app.supplementary_gids == [5, 6]


@pytest.mark.parametrize("args,message", [
    (["--exec", "/bin/sh"], "--exec must follow an image"),
    (["--", "x"], "an image is required before any app arguments"),
    (["a.aci", "--", "x", "---", "--", "y"], "only one set of app arguments"),
    (["a.aci", "--exec=/a", "--exec=/b"], "--exec specified multiple times"),
    (["a.aci", "--exec"], "flag needs an argument: --exec"),
    (["a.aci", "--environment=NOVALUE"], "expected NAME=VALUE"),
    (["a.aci", "--supplementary-gids=a"], "expected numbers"),
])
def test_mistakes_are_usage_errors(args, message):
    with pytest.raises(UsageError, match=message):
        split(*args)
