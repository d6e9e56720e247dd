"""Pod networking without root: --net parsing and CNI_ARGS, --port matching, the DNS and
hosts precedence, the built-in host/none backends and teardown bookkeeping."""

import json
import os

import pytest

from rkt_core.appc import PodManifest
from rkt_core.builtins import net_host, net_none
from rkt_core.errors import RktError, UsageError
from rkt_core.pod.pod import Pod
from rkt_core import network
from rkt_core.testing.plugins import load_plugin
from rkt_core.types import NetworkRequest, PodNetworks, RunOptions


# --- --net ---------------------------------------------------------------------------------------


def test_net_flags_split_on_unescaped_commas():
    assert network.split_net_flags(["default,other", " a:K=V ", ""]) == ("default", "other", "a:K=V")
    assert network.split_net_flags([r"n:K=a\,b,m"]) == (r"n:K=a\,b", "m")


@pytest.mark.parametrize("entry,expected", [
    ("default", NetworkRequest("default")),
    ("mynet:IP=172.16.28.9", NetworkRequest("mynet", (("IP", "172.16.28.9"),))),
    ("n:IP=fd00::9;IgnoreUnknown=1", NetworkRequest("n", (("IP", "fd00::9"), ("IgnoreUnknown", "1")))),
    (r"n:LIST=a\,b", NetworkRequest("n", (("LIST", "a,b"),))),
    ("n:", NetworkRequest("n")),
])
def test_parse_request(entry, expected):
    assert network.parse_request(entry) == expected
    assert network.parse_request(network.format_request(expected)) == expected


@pytest.mark.parametrize("entry,message", [
    (":K=V", "must not be empty"),
    ("../x", "invalid network name"),
    ("host:K=V", "not supported by the special network"),
    ("all:K=V", "not supported by the special network"),
    ("n:novalue", "is not KEY=VALUE"),
    ("n:K=a;=b", "invalid CNI argument name"),
    (r"n:K=a\;B=evil", "cannot contain"),
    (r"n:K=a\=b", "cannot contain"),
])
def test_bad_requests_are_refused(entry, message):
    with pytest.raises(UsageError, match=message):
        network.parse_request(entry)


def test_cni_args_joins_pairs():
    assert network.cni_args(NetworkRequest("n", (("IP", "10.0.0.2"), ("A", "b")))) == "IP=10.0.0.2;A=b"
    assert network.cni_args(NetworkRequest("n")) == ""


def test_request_lists():
    assert network.parse_requests(()) == [NetworkRequest("default")]
    with pytest.raises(UsageError, match="given twice"):
        network.parse_requests(("a", "a:K=V"))
    with pytest.raises(UsageError, match="cannot be combined"):
        network.parse_requests(("host", "default"))
    with pytest.raises(UsageError, match="cannot be combined"):
        network.parse_requests(("none", "default"))


# --- --port ---------------------------------------------------------------------------------------


def _manifest(ports, app_ports=(("http", "tcp", 80),), second_app_ports=()):
    def app(name, declared):
        return {"name": name, "image": {"name": "example.com/x", "id": "sha512-" + "a" * 64},
                "app": {"exec": ["/x"], "user": "0", "group": "0",
                        "ports": [{"name": n, "protocol": p, "port": port}
                                  for n, p, port in declared]}}
    apps = [app("a", app_ports)] + ([app("b", second_app_ports)] if second_app_ports else [])
    return PodManifest.from_json(json.dumps({"acVersion": "0.7.4", "acKind": "PodManifest",
                                             "apps": apps, "ports": ports}).encode())


def test_port_flag():
    port = network.parse_port_flag("http:127.0.0.1:8080")
    assert (port.name, port.host_port, port.host_ip) == ("http", 8080, "127.0.0.1")
    assert network.parse_port_flag("http:8080").host_ip == ""
    assert port.to_json() == {"name": "http", "hostPort": 8080, "hostIP": "127.0.0.1"}
    for bad in ("http", "http:x", "http:70000", "http:notanip:80", "Bad_Name:80"):
        with pytest.raises(UsageError):
            network.parse_port_flag(bad)


def test_forwarded_ports_match_app_ports_by_name():
    manifest = _manifest([{"name": "http", "hostPort": 8080}])
    assert network.forwarded_ports(manifest) == [network.ForwardedPort("http", "tcp", 80, 8080)]
    manifest = _manifest([{"name": "http", "hostPort": 8080, "hostIP": "10.0.0.1"}])
    assert network.forwarded_ports(manifest)[0].host_ip == "10.0.0.1"


@pytest.mark.parametrize("ports,app_ports,second,message", [
    ([{"name": "dns", "hostPort": 53}], (("http", "tcp", 80),), (), "not declared by any app"),
    ([{"name": "http", "hostPort": 1}], (("http", "tcp", 80),), (("http", "tcp", 81),),
     "more than one app"),
    ([{"name": "http", "hostPort": 1}, {"name": "web", "hostPort": 1}],
     (("http", "tcp", 80), ("web", "tcp", 8080)), (), "forwarded twice"),
    ([{"name": "http", "hostPort": 0}], (("http", "tcp", 80),), (), "not in 1-65535"),
    ([{"name": "http", "hostPort": 70000}], (("http", "tcp", 80),), (), "not in 1-65535"),
    ([{"name": "ping", "hostPort": 7}], (("ping", "icmp", 7),), (), 'protocol "icmp" cannot'),
    ([{"name": "x", "hostPort": 7}], (("x", "-j ACCEPT", 7),), (), "cannot be forwarded"),
])
def test_forwarded_ports_errors(ports, app_ports, second, message):
    with pytest.raises(RktError, match=message):
        network.forwarded_ports(_manifest(ports, app_ports, second))


def test_same_host_port_on_two_addresses_and_protocols_is_fine():
    manifest = _manifest([{"name": "http", "hostPort": 1, "hostIP": "10.0.0.1"},
                          {"name": "web", "hostPort": 1, "hostIP": "10.0.0.2"},
                          {"name": "dns", "hostPort": 1}],
                         (("http", "tcp", 80), ("web", "tcp", 8080), ("dns", "udp", 53)))
    assert len(network.forwarded_ports(manifest)) == 3


# --- DNS and hosts --------------------------------------------------------------------------------


@pytest.fixture
def pod(tmp_path):
    pod = Pod.create(str(tmp_path))
    with open(pod.file("pod"), "w") as f:
        f.write(PodManifest(apps=[]).to_json())
    yield pod
    pod.close()


def _options(**kwargs):
    return RunOptions(lock_fd=-1, **kwargs)


CNI_DNS = PodNetworks("/run/netns/x", nameservers=["10.0.0.53"], search=["cni.example"])


def _read(path):
    with open(path) as f:
        return f.read()


def test_dns_flags_win_over_cni_dns(pod):
    options = network.name_service(pod, _options(dns=("10.1.2.3",), dns_search=("a.example",),
                                                 dns_opt=("rotate",), dns_domain="d.example"),
                                   CNI_DNS, "web")
    assert _read(options.resolv_conf) == ("nameserver 10.1.2.3\nsearch a.example\n"
                                          "options rotate\ndomain d.example\n")


def test_cni_dns_is_used_without_flags(pod):
    options = network.name_service(pod, _options(), CNI_DNS, "web")
    assert options.resolv_conf == pod.file("resolv.conf")
    assert _read(options.resolv_conf) == "nameserver 10.0.0.53\nsearch cni.example\n"


def test_dns_none_ignores_cni_and_keeps_the_image_file(pod):
    assert network.name_service(pod, _options(dns=("none",)), CNI_DNS, "web").resolv_conf == ""
    assert network.name_service(pod, _options(), PodNetworks("/x"), "web").resolv_conf == ""


def test_dns_host_binds_the_hosts_file(pod):
    options = network.name_service(pod, _options(dns=("host",), hosts_entries=("host",)), CNI_DNS,
                                   "web")
    assert options.resolv_conf == "/etc/resolv.conf" and options.hosts_file == "/etc/hosts"
    assert options.hosts_fallback == ""


def test_hosts_entries_with_a_contained_network(pod):
    options = network.name_service(
        pod, _options(hostname="web", hosts_entries=("10.9.8.7=db,10.9.8.6=cache", "10.9.8.7=sql")),
        CNI_DNS, "web")
    assert options.hosts_file == pod.file("hosts") and options.hosts_fallback == ""
    assert _read(options.hosts_file) == ("127.0.0.1\tlocalhost web\n::1\tlocalhost\n"
                                         "10.9.8.7\tdb sql\n10.9.8.6\tcache\n")


def test_fallback_hosts_names_the_pod(pod):
    options = network.name_service(pod, _options(), CNI_DNS, f"rkt-{pod.uuid}")
    assert options.hosts_file == "" and options.hosts_fallback == pod.file("hosts")
    assert _read(options.hosts_fallback) == f"127.0.0.1\tlocalhost rkt-{pod.uuid}\n::1\tlocalhost\n"


def test_host_network_keeps_the_images_resolv_conf_and_gets_a_fallback_hosts(pod):
    options = network.name_service(pod, _options(), PodNetworks(""), "host-name")
    assert (options.resolv_conf, options.hosts_file) == ("", "")
    assert _read(options.hosts_fallback) == "127.0.0.1\tlocalhost host-name\n::1\tlocalhost\n"
    options = network.name_service(pod, _options(hosts_entries=("10.0.0.1=a",)), PodNetworks(""),
                                   "host-name")
    assert options.hosts_fallback == ""
    assert _read(options.hosts_file) == ("127.0.0.1\tlocalhost host-name\n::1\tlocalhost\n"
                                         "10.0.0.1\ta\n")


def test_the_pods_hostname_is_its_own_or_the_hosts(pod):
    assert network.pod_hostname(pod, _options(), True) == f"rkt-{pod.uuid}"
    assert network.pod_hostname(pod, _options(hostname="web"), True) == "web"
    assert network.pod_hostname(pod, _options(), False) == os.uname().nodename


@pytest.mark.parametrize("kwargs,message", [
    ({"dns": ("host", "10.0.0.1")}, "no other --dns"),
    ({"dns": ("none", "host")}, "no other --dns"),
    ({"dns": ("host",), "dns_search": ("x",)}, "cannot be used with --dns=host"),
    ({"dns": ("none",), "dns_domain": "x"}, "cannot be used with --dns=none"),
    ({"dns": ("not-an-ip",)}, "invalid IP address passed to --dns"),
    ({"hosts_entries": ("host", "10.0.0.1=a")}, "cannot be combined"),
    ({"hosts_entries": ("10.0.0.1",)}, "is not IP=HOSTNAME"),
    ({"hosts_entries": ("x=a",)}, "invalid IP address passed to --hosts-entry"),
    ({"hosts_entries": ("10.0.0.1=a\n10.6.6.6",)}, "is not IP=HOSTNAME"),
    ({"dns_search": ("a.example\nnameserver 10.6.6.6",)}, "--dns-search .* one word"),
    ({"dns_opt": ("ndots:1 rotate",)}, "--dns-opt .* one word"),
    ({"dns_domain": "x\ty"}, "--dns-domain .* one word"),
    ({"hostname": "web\n10.6.6.6 evil"}, "--hostname .* one word"),
])
def test_bad_name_service_flags(kwargs, message):
    with pytest.raises(UsageError, match=message):
        network.check_name_service_flags(_options(**kwargs))


# --- backends and bookkeeping ---------------------------------------------------------------------


def test_builtin_backends_declare_host_and_none():
    plugins, info = load_plugin(net_host, "net-host", ("net-none", net_none))
    assert info.errors == []
    assert plugins.network_backend_for("host").name == "host"
    assert plugins.network_backend_for("none").name == "none"
    with pytest.raises(RktError, match="no network backend") as error:
        plugins.network_backend_for("default")
    assert "rkt-net-cni" in error.value.hint


class _Ctx:
    def __init__(self, plugins):
        self.plugins = plugins
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def test_host_setup_records_nothing(pod):
    plugins, _ = load_plugin(net_host, "net-host")
    ctx = _Ctx(plugins)
    options = network.setup(ctx, pod, _options(net=("host",)))
    assert options.netns == ""
    assert not network.needs_teardown(pod) and not os.path.exists(pod.file("net-info.json"))
    assert network.teardown(ctx, pod)


def test_port_with_host_network_is_refused(pod, tmp_path):
    plugins, _ = load_plugin(net_host, "net-host")
    with open(pod.file("pod"), "w") as f:
        f.write(_manifest([{"name": "http", "hostPort": 8080}]).to_json())
    with pytest.raises(UsageError, match="--port does not work with --net=host"):
        network.setup(_Ctx(plugins), pod, _options(net=("host",)))


def test_failed_setup_is_torn_down_and_missing_backend_reported(pod):
    class Broken:
        def setup(self, pod, requests, context):
            network.write_state(pod.file("netns"), network.netns_path(pod).encode())
            raise RktError("plugin exploded")

        def teardown(self, pod, context):
            raise RktError("still broken")

    class Plugin:
        RKT_PLUGIN_API = 1

        from rkt_core.plugin_api import hookimpl

        @hookimpl
        def rkt_network_backends(self):
            from rkt_core.types import NetworkBackend
            return [NetworkBackend("broken", lambda n: n == "x", Broken)]

    plugins, _ = load_plugin(Plugin(), "broken")
    ctx = _Ctx(plugins)
    with pytest.raises(RktError, match="plugin exploded"):
        network.setup(ctx, pod, _options(net=("x",)))
    assert "still broken" in ctx.warnings[0]
    assert network.needs_teardown(pod)  # kept for gc to retry
    assert not network.teardown(ctx, pod)
    assert network.needs_teardown(pod)
    # undo=False: the caller tears down (rkt run's guardian), so the failure is said once
    ctx.warnings.clear()
    with pytest.raises(RktError, match="plugin exploded"):
        network.setup(ctx, pod, _options(net=("x",)), undo=False)
    assert ctx.warnings == [] and network.needs_teardown(pod)


def test_unexpected_netns_path_is_never_removed(pod, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    network.write_state(pod.file("netns"), str(victim).encode())
    plugins, _ = load_plugin(net_host, "net-host")
    ctx = _Ctx(plugins)
    assert not network.teardown(ctx, pod)
    assert victim.read_text() == "keep" and "unexpected network namespace path" in ctx.warnings[0]


def test_gc_keeps_a_pod_whose_networks_cannot_be_released(tmp_path):
    from rkt_core.plugin_api import hookimpl
    from rkt_core.stage0 import gc
    from rkt_core.types import NetworkBackend

    class Stuck:
        def teardown(self, pod, context):
            raise RktError("CNI plugin exploded")

    class Plugin:
        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_network_backends(self):
            return [NetworkBackend("stuck", lambda n: n == "x", Stuck)]

    plugins, _ = load_plugin(Plugin(), "stuck")
    ctx = _Ctx(plugins)
    with Pod.create(str(tmp_path)) as pod:
        pod.to_run()
        network.write_state(pod.file("net-backend"), b"stuck")
        pod.unlock()
        pod.to_exited_garbage()
        pod.exclusive_lock()
        with pytest.raises(RktError, match="networks could not be released"):
            gc.delete_pod(ctx, pod)
        assert os.path.isdir(pod.path) and network.needs_teardown(pod)
        assert "CNI plugin exploded" in ctx.warnings[0]
