"""The plugin facade: validation, isolation of broken plugins, records, observers, disabling."""

from types import SimpleNamespace

import pytest

from rkt_core.errors import PluginMissingError, RktError
from rkt_core.plugin_api import hookimpl
from rkt_core.plugins import DISABLED, FAILED, OK, Plugins
from rkt_core.types import Fetcher, Stage1Flavor


def flavor(name):
    return Stage1Flavor(name=name, factory=lambda: None)


class FlyPlugin:
    RKT_PLUGIN_API = 1

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
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_stage1_flavours(self):
            return [flavor("typo")]

    pm, (info, _) = make(("typo", Typo()), ("stage1-fly", FlyPlugin()))
    assert info.status == FAILED
    assert "rkt_stage1_flavours" in info.errors[0]
    assert list(pm.stage1_flavors()) == ["fly"]


def test_wrong_hook_arguments_fail_validation():
    class BadArgs:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_pod_exited(self, pod, exit_status):  # spec says exit_code
            pass

    pm, (info,) = make(("bad", BadArgs()))
    assert info.status == FAILED
    assert "exit_status" in info.errors[0]


def test_a_declaration_that_raises_or_returns_junk_is_reported_and_others_work():
    class Raises:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_stage1_flavors(self):
            raise RuntimeError("boom")

    class Junk:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_stage1_flavors(self):
            return ["not a record", Stage1Flavor(name="", factory=None)]

    pm, _ = make(("raises", Raises()), ("junk", Junk()), ("stage1-fly", FlyPlugin()))
    assert list(pm.stage1_flavors()) == ["fly"]
    infos = {i.name: i for i in pm.infos()}
    assert "RuntimeError: boom" in infos["raises"].errors[0]
    assert len(infos["junk"].errors) == 2
    assert infos["stage1-fly"].errors == []


def test_duplicate_record_names_keep_the_one_called_first_and_report_the_other():
    class OtherFly:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_stage1_flavors(self):
            return [Stage1Flavor(name="fly", factory=lambda: "other")]

    # pluggy calls the last registered first: it keeps the name.
    pm, _ = make(("stage1-fly", FlyPlugin()), ("other-fly", OtherFly()))
    assert pm.stage1_flavor("fly").factory() == "other"
    infos = {i.name: i for i in pm.infos()}
    assert 'already declared by plugin "other-fly"' in infos["stage1-fly"].errors[0]
    assert infos["other-fly"].errors == []


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
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_pod_exited(self, pod, exit_code):
            raise ValueError("observer broke")

    class Recorder:
        RKT_PLUGIN_API = 1

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
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_default_stage1_flavor(self, config):
            return None

    class Fly:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_default_stage1_flavor(self):
            return "fly"

    pm, _ = make(("fly-default", Fly()), ("none", NoOpinion()))
    assert pm.default_stage1_flavor(config=None) == "fly"
    assert make()[0].default_stage1_flavor(config=None) is None


def test_fetcher_for_scheme_and_hint_for_missing_scheme():
    class Files:
        RKT_PLUGIN_API = 1

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
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_add_commands(self, cli):
            cli.add_command(click.Command("hello"))

    class Fails:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_add_commands(self, cli):
            raise RuntimeError("no")

    pm, _ = make(("adds", Adds()), ("fails", Fails()))
    group = click.Group()
    pm.add_commands(group)
    assert "hello" in group.commands
    assert "RuntimeError: no" in {i.name: i for i in pm.infos()}["fails"].errors[0]


def test_unknown_event_is_a_programming_error():
    with pytest.raises(Exception, match="is not a hook of kind observe"):
        make()[0].notify("rkt_no_such_event")
    with pytest.raises(Exception, match="rkt_fetchers is not a hook of kind observe"):
        make()[0].notify("rkt_fetchers")


def test_builtin_plugins_are_discovered_like_external_ones():
    pm = Plugins()
    infos = {i.name: i for i in pm.infos()}
    assert infos["fetch-file"].status == OK
    assert infos["fetch-file"].distribution == "rkt-core"
    assert "file" in pm.fetcher_for("file").schemes


# --- pluggy's semantics -------------------------------------------------------------------------


def _answering(answer, **opts):
    class Answers:
        RKT_PLUGIN_API = 1

        @hookimpl(**opts)
        def rkt_default_stage1_flavor(self):
            return answer

    return Answers()


def test_a_module_plugin_is_registered_by_its_functions_whatever_its_dir_says():
    import types

    module = types.ModuleType("rkt_odd")
    module.RKT_PLUGIN_API = 1
    module.rkt_stage1_flavors = hookimpl(lambda: [flavor("odd")])
    module.VERSION = "1"
    module.__dir__ = lambda: ["VERSION", "ghost", "rkt_stage1_flavors"]  # ghost: only listed
    pm, (info,) = make(("odd", module))
    assert info.status == OK and info.hooks == ["rkt_stage1_flavors"]
    assert pm.stage1_flavor("odd").name == "odd"


def test_decide_hooks_follow_pluggys_call_order():
    # Registered A (tryfirst), B, C: pluggy asks A first, then the last registered.
    pm, _ = make(("a", _answering("a", tryfirst=True)), ("b", _answering("b")),
                 ("c", _answering("c")))
    assert pm.default_stage1_flavor(config=None) == "a"
    pm, _ = make(("a", _answering("a")), ("b", _answering("b")), ("c", _answering("c")))
    assert pm.default_stage1_flavor(config=None) == "c"
    pm, _ = make(("a", _answering("a")), ("b", _answering("b")),
                 ("c", _answering("c", trylast=True)))
    assert pm.default_stage1_flavor(config=None) == "b"


def test_declarations_and_observers_are_called_in_pluggys_order():
    calls = []

    def observer(name, **opts):
        class Observer:
            RKT_PLUGIN_API = 1

            @hookimpl(**opts)
            def rkt_image_removed(self, image_id):
                calls.append(name)

        return Observer()

    pm, _ = make(("a", observer("a")), ("b", observer("b", trylast=True)), ("c", observer("c")),
                 ("d", observer("d", tryfirst=True)))
    pm.notify("rkt_image_removed", image_id="sha512-x")
    assert calls == ["d", "c", "a", "b"]


def test_a_wrapper_around_a_decide_hook_sees_and_may_change_the_answer():
    seen = []

    class Wrapper:
        RKT_PLUGIN_API = 1

        @hookimpl(wrapper=True)
        def rkt_default_stage1_flavor(self, config):
            answer = yield
            seen.append((config, answer))
            return "wrapped-" + answer

    pm, infos = make(("answer", _answering("fly")), ("wrapper", Wrapper()))
    assert [i.status for i in infos] == [OK, OK]
    assert pm.default_stage1_flavor(config="conf") == "wrapped-fly"
    assert seen == [("conf", "fly")]


def test_a_wrapper_on_a_declare_or_observe_hook_is_refused_at_registration():
    class WrapsDeclare:
        RKT_PLUGIN_API = 1

        @hookimpl(wrapper=True)
        def rkt_stage1_flavors(self):
            return (yield)

    class WrapsObserver:
        RKT_PLUGIN_API = 1

        @hookimpl(hookwrapper=True)
        def rkt_pod_exited(self):
            yield

    pm, (declare, observe) = make(("declare", WrapsDeclare()), ("observe", WrapsObserver()))
    assert declare.status == observe.status == FAILED
    assert "rkt_stage1_flavors is a declare hook; wrapper=True is supported on decide hooks" \
        in declare.errors[0]
    assert "rkt_pod_exited is a observe hook" in observe.errors[0]


def test_a_failing_decide_answer_is_reported_and_counts_as_no_opinion():
    class Broken:
        RKT_PLUGIN_API = 1

        @hookimpl(tryfirst=True)
        def rkt_default_stage1_flavor(self):
            raise KeyError("oops")

    warnings = []
    pm, _ = make(("fly", _answering("fly")), ("broken", Broken()), warnings=warnings)
    assert pm.default_stage1_flavor(config=None) == "fly"
    assert warnings == ["plugin \"broken\": rkt_default_stage1_flavor failed: KeyError: 'oops'"]


def test_tracing_shows_every_hook_call(monkeypatch, capsys):
    monkeypatch.setenv("RKT_TRACE_PLUGINS", "1")
    pm, _ = make(("stage1-fly", FlyPlugin()), ("answer", _answering("fly")))
    pm.stage1_flavors()
    pm.default_stage1_flavor(config=None)
    pm.notify("rkt_image_removed", image_id="sha512-x")
    trace = capsys.readouterr().err
    for hook in ("rkt_stage1_flavors", "rkt_default_stage1_flavor", "rkt_image_removed"):
        assert "rkt: trace: " in trace and hook in trace, trace


# --- the plugin API version -----------------------------------------------------------------------


def test_a_plugin_must_say_which_plugin_api_it_was_written_for():
    class Unversioned:
        @hookimpl
        def rkt_stage1_flavors(self):
            return [flavor("x")]

    class Future(Unversioned):
        RKT_PLUGIN_API = 2

    pm, (unversioned, future) = make(("unversioned", Unversioned()), ("future", Future()))
    assert unversioned.status == future.status == FAILED
    assert "does not say which rkt plugin API it was written for (RKT_PLUGIN_API)" \
        in unversioned.errors[0]
    assert "was written for rkt plugin API 2; rkt-core 0.1.0 supports plugin API 1" \
        in future.errors[0]
    assert pm.stage1_flavors() == {}


# --- hooks that plugins publish -------------------------------------------------------------------


class _Published:
    """What a publishing plugin's hook spec module looks like (as rkt-net-cni's)."""

    from dataclasses import dataclass

    from rkt_core.plugin_api import hookspec

    @dataclass(frozen=True)
    class Widget:
        name: str

    @staticmethod
    @hookspec.declare(Widget)
    def rkt_widgets():
        """Declare widgets."""

    @staticmethod
    @hookspec.observe
    def rkt_widget_used(widget):
        """A widget was used."""


class _Publisher:
    RKT_PLUGIN_API = 1

    @hookimpl
    def rkt_add_hookspecs(self, add):
        add(_Published)


class _WidgetMaker:
    RKT_PLUGIN_API = 1

    @hookimpl
    def rkt_widgets(self):
        return [_Published.Widget("gear"), "not a widget"]


def test_a_plugin_publishes_hooks_that_others_implement_in_either_order():
    for order in ([("publisher", _Publisher()), ("maker", _WidgetMaker())],
                  [("maker", _WidgetMaker()), ("publisher", _Publisher())]):
        pm = Plugins(discover=False)
        pm.register_all(order)
        assert {n: r.name for n, (r, _p) in pm.declarations("rkt_widgets").items()} == \
            {"gear": "gear"}
        infos = {i.name: i for i in pm.infos()}
        assert infos["maker"].status == OK
        assert "expected a named Widget" in infos["maker"].errors[0]
        assert infos["maker"].provides == ["widgets gear"]
        assert infos["publisher"].provides == ["hook rkt_widget_used", "hook rkt_widgets"]


def test_implementing_a_hook_nobody_publishes_fails_unless_optional():
    class Optional:
        RKT_PLUGIN_API = 1

        @hookimpl(optionalhook=True)
        def rkt_widgets(self):
            return []

    pm, (maker, optional) = make(("maker", _WidgetMaker()), ("optional", Optional()))
    assert maker.status == FAILED and "implements unknown hooks: rkt_widgets" in maker.errors[0]
    assert optional.status == OK


def test_published_specs_that_do_not_fit_earlier_implementations_fail_those():
    class WrongArgs:
        RKT_PLUGIN_API = 1

        @hookimpl(optionalhook=True)
        def rkt_widget_used(self, gadget):
            pass

    pm, (wrong, publisher) = make(("wrong", WrongArgs()), ("publisher", _Publisher()))
    assert publisher.status == OK
    infos = {i.name: i for i in pm.infos()}
    assert infos["wrong"].status == FAILED
    assert "rkt_widget_used: argument(s) gadget are not in the hook specification" \
        in infos["wrong"].errors[0]
    pm.notify("rkt_widget_used", widget="w")  # the rest still works


def test_a_hook_published_twice_or_without_a_kind_fails_the_publisher():
    class Twice:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_add_hookspecs(self, add):
            add(_Published)

    class NoKind:
        from rkt_core.hookspecs import _spec

        @staticmethod
        @_spec
        def rkt_kindless():
            """No kind."""

    class PublishesKindless:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_add_hookspecs(self, add):
            add(NoKind)

    pm, _ = make(("publisher", _Publisher()), ("twice", Twice()), ("kindless", PublishesKindless()))
    infos = {i.name: i for i in pm.infos()}
    assert "hook rkt_widget_used is already specified" in infos["twice"].errors[0]
    assert "hook spec rkt_kindless has no kind" in infos["kindless"].errors[0]


class ImageRunners:
    RKT_PLUGIN_API = 1

    @staticmethod
    def refuse_all(manifest):
        raise RktError(f'"{manifest.name}" is not for the choosy flavor')

    @staticmethod
    def accept_stage1(manifest):
        if not manifest.name.startswith("stage1/"):
            raise RktError(f'"{manifest.name}" is no stage1 image')

    @hookimpl
    def rkt_stage1_flavors(self):
        return [flavor("fly"),
                Stage1Flavor("choosy", lambda: None, check_image=self.refuse_all),
                Stage1Flavor("image", lambda: None, check_image=self.accept_stage1)]


def test_a_stage1_image_goes_to_the_first_flavor_that_accepts_it():
    pm, _ = make(("runners", ImageRunners()))
    assert pm.stage1_image_flavor(SimpleNamespace(name="stage1/x")).name == "image"
    with pytest.raises(RktError, match='"app" is not for the choosy flavor'):
        pm.stage1_image_flavor(SimpleNamespace(name="app"))


def test_no_flavor_runs_stage1_images():
    pm, _ = make(("stage1-fly", FlyPlugin()))
    with pytest.raises(PluginMissingError, match="no installed stage1 flavor runs stage1 images") as err:
        pm.stage1_image_flavor(SimpleNamespace(name="example.com/stage1"))
    assert err.value.hint == "pip install rkt-stage1-image"
