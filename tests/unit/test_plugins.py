"""The plugin facade: validation, isolation of broken plugins, records, observers, disabling."""

import pytest

from rkt_core.errors import PluginMissingError
from rkt_core.hookspecs import hookimpl
from rkt_core.plugins import DISABLED, FAILED, OK, Plugins
from rkt_core.types import Fetcher, Stage1Flavor


def flavor(name):
    return Stage1Flavor(name=name, factory=lambda: None)


class FlyPlugin:
    @hookimpl
    def rkt_stage1_flavors(self):
        return [flavor("fly")]


def make(*plugins, disabled=(), warnings=None):
    pm = Plugins(disabled, discover=False, warn=(warnings.append if warnings is not None else None))
    infos = [pm.register(p, name) for name, p in plugins]
    return pm, infos


def test_flavor_found_and_missing_flavor_names_what_to_install():
    pm, (info,) = make(("stage1-fly", FlyPlugin()))
    assert info.status == OK and info.hooks == ["rkt_stage1_flavors"]
    assert pm.stage1_flavor("fly").name == "fly"
    with pytest.raises(PluginMissingError) as err:
        pm.stage1_flavor("kvm")
    assert 'stage1 flavor "kvm" is not installed; installed: fly' in str(err.value)
    assert err.value.hint == "pip install rkt-stage1-kvm"


def test_unknown_hook_name_fails_validation_and_is_unregistered():
    class Typo:
        @hookimpl
        def rkt_stage1_flavours(self):
            return [flavor("typo")]

    pm, (info, _) = make(("typo", Typo()), ("stage1-fly", FlyPlugin()))
    assert info.status == FAILED
    assert "rkt_stage1_flavours" in info.errors[0]
    assert list(pm.stage1_flavors()) == ["fly"]


def test_wrong_hook_arguments_fail_validation():
    class BadArgs:
        @hookimpl
        def rkt_pod_exited(self, pod, exit_status):  # spec says exit_code
            pass

    pm, (info,) = make(("bad", BadArgs()))
    assert info.status == FAILED
    assert "exit_status" in info.errors[0]


def test_a_declaration_that_raises_or_returns_junk_is_reported_and_others_work():
    class Raises:
        @hookimpl
        def rkt_stage1_flavors(self):
            raise RuntimeError("boom")

    class Junk:
        @hookimpl
        def rkt_stage1_flavors(self):
            return ["not a record", Stage1Flavor(name="", factory=None)]

    pm, _ = make(("raises", Raises()), ("junk", Junk()), ("stage1-fly", FlyPlugin()))
    assert list(pm.stage1_flavors()) == ["fly"]
    infos = {i.name: i for i in pm.infos()}
    assert "RuntimeError: boom" in infos["raises"].errors[0]
    assert len(infos["junk"].errors) == 2
    assert infos["stage1-fly"].errors == []


def test_duplicate_record_names_keep_the_first_and_report_the_second():
    class OtherFly:
        @hookimpl
        def rkt_stage1_flavors(self):
            return [Stage1Flavor(name="fly", factory=lambda: "other")]

    pm, _ = make(("stage1-fly", FlyPlugin()), ("other-fly", OtherFly()))
    assert pm.stage1_flavor("fly").factory() is None
    infos = {i.name: i for i in pm.infos()}
    assert 'already declared by plugin "stage1-fly"' in infos["other-fly"].errors[0]


def test_disabled_plugin_is_not_registered(monkeypatch):
    monkeypatch.delenv("RKT_DISABLE_PLUGINS", raising=False)
    pm, (info,) = make(("stage1-fly", FlyPlugin()), disabled=["stage1-fly"])
    assert info.status == DISABLED
    assert pm.stage1_flavors() == {}


def test_disable_through_environment(monkeypatch):
    monkeypatch.setenv("RKT_DISABLE_PLUGINS", "x, stage1-fly")
    pm, (info,) = make(("stage1-fly", FlyPlugin()))
    assert info.status == DISABLED


def test_observers_all_run_and_failures_are_only_logged():
    seen = []

    class Broken:
        @hookimpl
        def rkt_pod_exited(self, pod, exit_code):
            raise ValueError("observer broke")

    class Recorder:
        @hookimpl
        def rkt_pod_exited(self, exit_code):
            seen.append(exit_code)

    warnings = []
    pm, _ = make(("broken", Broken()), ("recorder", Recorder()), warnings=warnings)
    pm.notify("rkt_pod_exited", pod=object(), exit_code=7)
    assert seen == [7]
    assert warnings == ['plugin "broken": rkt_pod_exited failed: ValueError: observer broke']


def test_decide_hook_first_answer_wins_and_none_means_no_opinion():
    class NoOpinion:
        @hookimpl
        def rkt_default_stage1_flavor(self, config):
            return None

    class Fly:
        @hookimpl
        def rkt_default_stage1_flavor(self):
            return "fly"

    pm, _ = make(("fly-default", Fly()), ("none", NoOpinion()))
    assert pm.default_stage1_flavor(config=None) == "fly"
    assert make()[0].default_stage1_flavor(config=None) is None


def test_fetcher_for_scheme_and_hint_for_missing_scheme():
    class Files:
        @hookimpl
        def rkt_fetchers(self):
            return [Fetcher("file", ("file",), fetch=lambda req: None)]

    pm, _ = make(("fetch-file", Files()))
    assert pm.fetcher_for("file").name == "file"
    with pytest.raises(PluginMissingError) as err:
        pm.fetcher_for("docker")
    assert err.value.hint == "pip install rkt-fetch-docker"


def test_add_commands_failure_is_isolated():
    import click

    class Adds:
        @hookimpl
        def rkt_add_commands(self, cli):
            cli.add_command(click.Command("hello"))

    class Fails:
        @hookimpl
        def rkt_add_commands(self, cli):
            raise RuntimeError("no")

    pm, _ = make(("adds", Adds()), ("fails", Fails()))
    group = click.Group()
    pm.add_commands(group)
    assert "hello" in group.commands
    assert "RuntimeError: no" in {i.name: i for i in pm.infos()}["fails"].errors[0]


def test_unknown_event_is_a_programming_error():
    with pytest.raises(Exception, match="unknown plugin event"):
        make()[0].notify("rkt_no_such_event")


def test_builtin_plugins_are_discovered_like_external_ones():
    pm = Plugins()
    infos = {i.name: i for i in pm.infos()}
    assert infos["fetch-file"].status == OK
    assert infos["fetch-file"].distribution == "rkt-core"
    assert "file" in pm.fetcher_for("file").schemes
