"""``rkt logs`` and the core logs interface: dispatch to the pod's flavor (``Stage1Logs``),
refusals, time arguments and output."""

import json
import types

import pytest

from rkt_core.cli.logs import parse_time
from rkt_core.errors import NotFoundError, RktError, UsageError
from rkt_core.plugin_api import LogLine, Stage1Features, Stage1Flavor, hookimpl
from rkt_core.pod.pod import Pod
from rkt_core.pod.view import PodView
from rkt_core.stage0.logs import pod_logs
from rkt_core.testing.plugins import load_plugin

LINES = [LogLine(100.0, "web", "one"), LogLine(200.0, "db", "two")]


class WithLogs:
    features = Stage1Features(multi_app=True)
    calls = []

    def logs(self, pod, app, lines, follow, since, until):
        self.calls.append((pod.uuid, app, lines, follow, since, until))
        return iter([None] + [line for line in LINES if not app or line.app == app])


class WithoutLogs:
    features = Stage1Features(multi_app=True)


class Flavors:
    RKT_PLUGIN_API = 1

    @hookimpl
    def rkt_stage1_flavors(self):
        return [Stage1Flavor("keeps", WithLogs), Stage1Flavor("forgets", WithoutLogs)]


@pytest.fixture
def ctx(tmp_path):
    plugins, info = load_plugin(Flavors(), "flavors")
    assert info.errors == []
    return types.SimpleNamespace(data_dir=str(tmp_path), plugins=plugins)


def _pod(tmp_path, flavor):
    pod = Pod.create(str(tmp_path))
    (tmp_path / "pods" / "prepare" / pod.uuid / "stage1").mkdir()
    (tmp_path / "pods" / "prepare" / pod.uuid / "stage1" / "flavor").write_text(flavor)
    apps = [{"name": n, "image": {"name": f"example.com/{n}",
                                  "id": "sha512-" + "0" * 64}} for n in ("web", "db")]
    (tmp_path / "pods" / "prepare" / pod.uuid / "pod").write_text(json.dumps(
        {"acKind": "PodManifest", "acVersion": "0.7.4", "apps": apps}))
    return PodView(pod)


def test_the_flavor_reads_the_logs(ctx, tmp_path):
    pod = _pod(tmp_path, "keeps")
    assert list(pod_logs(ctx, pod)) == [None] + LINES  # None: following, nothing new yet
    assert list(pod_logs(ctx, pod, "db", 5, True, 1.5, 2.5)) == [None] + LINES[1:]
    assert WithLogs.calls[-1] == (pod.uuid, "db", 5, True, 1.5, 2.5)


def test_refusals(ctx, tmp_path):
    with pytest.raises(NotFoundError, match='no app "cache"'):
        pod_logs(ctx, _pod(tmp_path, "keeps"), "cache")
    with pytest.raises(RktError, match="must not be negative"):
        pod_logs(ctx, _pod(tmp_path, "keeps"), lines=-1)
    with pytest.raises(RktError, match="the forgets flavor keeps no logs"):
        pod_logs(ctx, _pod(tmp_path, "forgets"))


def test_time_arguments():
    assert parse_time("@1454342645.5") == 1454342645.5
    assert parse_time("-10m", now=1000.0) == 400.0
    assert parse_time("2016-02-01 15:04:05") == parse_time("2016-02-01T15:04:05")
    for bad in ("yesterday", "@x", "-10 minutes", ""):
        with pytest.raises(UsageError, match="invalid time"):
            parse_time(bad)


def test_a_line_as_rkt_logs_prints_it():
    text = LogLine(0.25, "web", "hello").formatted()
    when, rest = text.split(" ", 1)
    assert rest == "web: hello" and ".250000" in when
