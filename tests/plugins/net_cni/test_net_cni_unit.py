"""The CNI backend without root: configurations, plugin lookup and invocation (with stand-in
plugins that record what they are given), results of every CNI version, port forwarding
rules (with stand-ins for the iptables tools)."""

import json
import os
import sys

import pytest

from rkt_core.errors import RktError
from rkt_core.testing.plugins import load_plugin
from rkt_net_cni import config, invoke, plugin, portfwd, result


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


# --- configurations -------------------------------------------------------------------------------


def test_plugin_declares_the_cni_backend_for_every_other_name():
    plugins, info = load_plugin(plugin, "net-cni")
    assert info.errors == []
    assert plugins.network_backend_for("default").name == "cni"
    assert plugins.network_backend_for("mynet").name == "cni"
    with pytest.raises(RktError):
        plugins.network_backend_for("host")


def test_builtins():
    configs = config.load("")
    default, restricted = configs["default"], configs["default-restricted"]
    assert default.plugins[0]["type"] == "ptp" and default.ip_masq
    assert default.plugins[0]["ipam"] == {"type": "host-local", "subnet": "172.16.28.0/24",
                                          "routes": [{"dst": "0.0.0.0/0"}]}
    assert not restricted.ip_masq and "routes" not in restricted.plugins[0]["ipam"]
    assert restricted.plugins[0]["ipam"]["subnet"] == "172.31.0.0/16"


def test_user_networks_override_builtins_and_order_interfaces(tmp_path):
    _write(tmp_path / "net.d" / "10-b.conf", {"name": "b", "type": "bridge"})
    _write(tmp_path / "net.d" / "05-a.conflist", {"cniVersion": "0.4.0", "name": "a",
                                                  "plugins": [{"type": "ptp"}, {"type": "portmap"}]})
    _write(tmp_path / "net.d" / "50-default.conf", {"name": "default", "type": "macvlan"})
    _write(tmp_path / "net.d" / "60-dup.conf", {"name": "b", "type": "ptp"})
    _write(tmp_path / "net.d" / "README", "not a network")
    warnings = []
    configs = config.load(str(tmp_path), warnings.append)
    assert configs["default"].plugins[0]["type"] == "macvlan"
    assert configs["b"].plugins[0]["type"] == "bridge" and "60-dup.conf" in warnings[0]
    assert configs["a"].plugins == [{"type": "ptp", "cniVersion": "0.4.0", "name": "a"},
                                    {"type": "portmap", "cniVersion": "0.4.0", "name": "a"}]
    chosen = config.select(configs, ["default", "b", "a"])
    assert [c.name for c in chosen] == ["a", "b", "default"]  # file name order: eth0, eth1...
    assert [c.name for c in config.select(configs, ["all"])] == ["a", "b", "default"]
    with pytest.raises(RktError, match="networks not found: x, y"):
        config.select(configs, ["default", "x", "y"])


def test_special_names_are_not_networks(tmp_path):
    _write(tmp_path / "net.d" / "10-host.conf", {"name": "host", "type": "ptp"})
    _write(tmp_path / "net.d" / "20-all.conf", {"name": "all", "type": "ptp"})
    warnings = []
    configs = config.load(str(tmp_path), warnings.append)
    assert "host" not in configs and "all" not in configs
    assert len(warnings) == 2 and "special --net name" in warnings[0]


def test_builtins_come_after_user_networks(tmp_path):
    _write(tmp_path / "net.d" / "99-zzz.conf", {"name": "zzz", "type": "ptp"})
    configs = config.load(str(tmp_path))
    assert [c.name for c in config.select(configs, ["default-restricted", "zzz", "default"])] \
        == ["zzz", "default-restricted", "default"]
    assert [c.name for c in config.select(configs, ["all"])] == ["zzz", "default"]


@pytest.mark.parametrize("plugin_type", ["../../bin/sh", "/bin/sh", "a/b", ".", "..", "", 7, None])
def test_plugin_types_must_be_plain_names(tmp_path, plugin_type):
    _write(tmp_path / "net.d" / "10-x.conf", {"name": "x", "type": plugin_type})
    with pytest.raises(RktError, match="type"):
        config.load(str(tmp_path))


@pytest.mark.parametrize("conf", [
    {"name": "x", "type": "ptp", "ipam": {"type": "../host-local"}},
    {"name": "x", "type": "flannel", "delegate": {"type": "/bin/sh"}},
])
def test_nested_types_must_be_plain_names(tmp_path, conf):
    _write(tmp_path / "net.d" / "10-x.conf", conf)
    with pytest.raises(RktError, match="invalid plugin type"):
        config.load(str(tmp_path))


@pytest.mark.parametrize("content,message", [
    ("{", "invalid JSON"), ("[]", "JSON object"), ('{"type": "ptp"}', "network name"),
    ('{"name": "../x", "type": "ptp"}', "network name"),
])
def test_bad_configurations(tmp_path, content, message):
    _write(tmp_path / "net.d" / "10-x.conf", content)
    with pytest.raises(RktError, match=message):
        config.load(str(tmp_path))


# --- finding and running plugins ------------------------------------------------------------------


RECORDER = """#!/bin/sh
env | grep ^CNI_ | sort > "$0.env"
cat > "$0.stdin"
printf '%s' "$RESULT"
exit ${EXIT:-0}
"""


@pytest.fixture
def recorder(tmp_path):
    path = tmp_path / "plugins" / "rec"
    _write(path, RECORDER)
    path.chmod(0o755)
    return path


def test_find_searches_dirs_in_order(tmp_path, recorder):
    other = tmp_path / "other" / "rec"
    _write(other, RECORDER)
    other.chmod(0o755)
    dirs = [str(tmp_path / "missing"), str(recorder.parent), str(other.parent)]
    assert invoke.find("rec", dirs).argv == (str(recorder),)
    recorder.chmod(0o644)  # not executable: skipped
    assert invoke.find("rec", dirs).argv == (str(other),)
    with pytest.raises(RktError, match='CNI plugin "nope" not found'):
        invoke.find("nope", dirs)
    with pytest.raises(RktError, match="plain plugin name"):
        invoke.find("../other/rec", [str(recorder.parent)])


def test_plugin_dirs_start_with_the_local_config():
    assert invoke.plugin_dirs("/etc/rkt") == ["/etc/rkt/net.d", "/usr/lib/rkt/plugins/net",
                                              "/usr/lib/cni", "/opt/cni/bin"]


def test_python_plugin_types_come_from_the_published_hook():
    from types import SimpleNamespace

    import rkt_net_cni.plugin
    import rkt_net_flannel.plugin
    from rkt_core.testing.plugins import load_plugin

    plugins, info = load_plugin(rkt_net_flannel.plugin, "net-flannel",
                                ("net-cni", rkt_net_cni.plugin))
    assert info.errors == [] and info.status == "loaded"
    ctx = SimpleNamespace(plugins=plugins)
    found = invoke.find("flannel", ["/nonexistent"], invoke.python_types(ctx))
    assert found.argv == (sys.executable, "-m", "rkt_net_flannel.cni")
    with pytest.raises(RktError, match="not found"):
        invoke.find("flannel", ["/nonexistent"])
    plugins, _ = load_plugin(rkt_net_cni.plugin, "net-cni")  # flannel not installed
    assert invoke.python_types(SimpleNamespace(plugins=plugins)) == {}


def test_run_passes_the_cni_parameters(recorder, monkeypatch):
    monkeypatch.setenv("CNI_STRAY", "x")
    monkeypatch.setenv("RESULT", json.dumps({"cniVersion": "1.0.0", "ips": []}))
    env = invoke.environment("ADD", "uuid-1", "/run/netns/rkt-uuid-1", "eth1", "IP=10.0.0.2",
                             ["/a", "/b"])
    out = invoke.run(invoke.Plugin("rec", (str(recorder),)), {"name": "n", "type": "rec"}, env)
    assert out == {"cniVersion": "1.0.0", "ips": []}
    assert (recorder.parent / "rec.env").read_text().splitlines() == [
        "CNI_ARGS=IP=10.0.0.2", "CNI_COMMAND=ADD", "CNI_CONTAINERID=uuid-1", "CNI_IFNAME=eth1",
        "CNI_NETNS=/run/netns/rkt-uuid-1", "CNI_PATH=/a:/b"]
    assert json.loads((recorder.parent / "rec.stdin").read_text()) == {"name": "n", "type": "rec"}


def test_run_passes_only_the_descriptors_asked_for(tmp_path):
    plugin = _write(tmp_path / "fds", '#!/bin/sh\nls /proc/$$/fd > "$0.fds"\n')
    plugin.chmod(0o755)
    kept, stray = os.open(tmp_path, os.O_RDONLY), os.open(tmp_path, os.O_RDONLY)
    os.set_inheritable(stray, True)
    try:
        env = invoke.environment("ADD", "u", "/n", "eth0", "", [str(tmp_path)])
        invoke.run(invoke.Plugin("fds", (str(plugin),)), {}, env, (kept,))
        fds = set(map(int, (tmp_path / "fds.fds").read_text().split()))
        assert kept in fds and stray not in fds
    finally:
        os.close(kept)
        os.close(stray)


def test_run_reports_the_plugins_error(recorder, monkeypatch):
    def run(exit_code, output):
        monkeypatch.setenv("EXIT", str(exit_code))
        monkeypatch.setenv("RESULT", output)
        env = invoke.environment("ADD", "u", "/n", "eth0", "", ["/a"])
        return invoke.run(invoke.Plugin("rec", (str(recorder),)), {}, env)

    with pytest.raises(invoke.PluginError, match="no address left; subnet full") as error:
        run(1, json.dumps({"cniVersion": "1.0.0", "code": 11, "msg": "no address left",
                           "details": "subnet full"}))
    assert error.value.code == 11 and error.value.reason == "no address left; subnet full"
    with pytest.raises(invoke.PluginError, match="panic: something") as error:
        run(1, "panic: something")
    assert (error.value.code, error.value.reason) == (0, "panic: something")
    with pytest.raises(invoke.PluginError, match="not JSON") as error:
        run(0, "not json")
    assert error.value.reason == ""  # the plugin said no error: nothing of its own to compare
    assert run(0, "") is None


# --- results ----------------------------------------------------------------------------------------


def test_result_0_2_0():
    r = result.parse({"cniVersion": "0.2.0", "ip4": {"ip": "172.16.28.5/24", "gateway": "172.16.28.1"},
                      "dns": {"nameservers": ["10.0.0.53"], "domain": "d"}})
    ip = r.ipv4("/ns")
    assert (str(ip.interface_address.ip), str(ip.interface_address.netmask), ip.gateway) == \
        ("172.16.28.5", "255.255.255.0", "172.16.28.1")
    assert result.dns_fields(r.dns) == (["10.0.0.53"], [], [], "d")
    assert r.host_interfaces() == []


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_result_current_versions(version):
    raw = {"cniVersion": version,
           "interfaces": [{"name": "veth1234", "mac": "aa:bb"},
                          {"name": "eth0", "mac": "cc:dd", "sandbox": "/run/netns/p"}],
           "ips": [{"address": "fd00::5/64", "interface": 1},
                   {"address": "10.1.0.9/16", "gateway": "10.1.0.1", "interface": 0},
                   {"address": "10.2.0.9/16", "gateway": "10.2.0.1", "interface": 1}]}
    if version != "1.0.0":
        for ip in raw["ips"]:
            ip["version"] = "6" if ":" in ip["address"] else "4"
    r = result.parse(raw)
    assert r.ipv4("/run/netns/p").address == "10.2.0.9/16"  # the one inside the pod
    assert r.ipv4("/elsewhere").address == "10.1.0.9/16"
    assert r.host_interfaces() == ["veth1234"]


def test_hostile_dns_in_a_result_is_left_out():
    r = result.parse({"cniVersion": "1.0.0", "dns": {
        "nameservers": ["10.0.0.53", "10.0.0.54\nnameserver 10.6.6.6", "dns.example", 7],
        "search": ["ok.example", "a b"], "options": ["ndots:2", "x\ny"], "domain": "d\ne"}})
    assert result.dns_fields(r.dns) == (["10.0.0.53"], ["ok.example"], ["ndots:2"], "")


def test_result_without_addresses():
    r = result.parse({"cniVersion": "1.0.0", "interfaces": [{"name": "lo", "sandbox": "/n"}]})
    assert r.ipv4("/n") is None and result.dns_fields(r.dns) == ([], [], [], "")
    assert result.parse(None).ips == [] and result.parse({"ips": [{"address": "bogus"}]}).ips == []


# --- port forwarding (stand-ins for iptables-save and iptables-restore) ---------------------------

IPTABLES_SAVE = """#!/bin/sh
cat "$0.table"
"""
IPTABLES_RESTORE = """#!/bin/sh
echo "$*" >> "$0.log"
cat >> "$0.log"
"""


@pytest.fixture
def iptables(tmp_path, monkeypatch):
    """Returns (what iptables-save prints, the log of iptables-restore's arguments and input)."""
    bin_dir = tmp_path / "bin"
    _write(bin_dir / "iptables-save", IPTABLES_SAVE).chmod(0o755)
    _write(bin_dir / "iptables-restore", IPTABLES_RESTORE).chmod(0o755)
    (bin_dir / "iptables-save.table").write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    log = bin_dir / "iptables-restore.log"
    return bin_dir / "iptables-save.table", lambda: log.read_text().splitlines() if log.exists() else []


UUID = "d24e14df-862e-40f6-b643-10412a0e1f0c"
DNAT, SNAT = "RKT-PFWD-DNAT-d24e14df862e40", "RKT-PFWD-SNAT-d24e14df862e40"


def test_chain_names_fit_iptables_and_come_from_a_uuid_only():
    assert portfwd.chains(UUID) == (DNAT, SNAT) and len(DNAT) <= 28
    for bad in ("", "../../x", "d24e14df -j ACCEPT", "D24E14DF-862E-40F6"):
        with pytest.raises(RktError, match="invalid pod UUID"):
            portfwd.chains(bad)


def test_port_forwarding_is_one_transaction(iptables):
    from rkt_core.network import ForwardedPort

    _, log = iptables
    portfwd.setup(UUID, "172.16.28.5", [ForwardedPort("http", "tcp", 80, 8080),
                                        ForwardedPort("dns", "udp", 53, 5353, "127.0.0.1")])
    local = f"-m addrtype --dst-type LOCAL -j {DNAT}"
    assert log() == [
        "-w --noflush", "*nat", f":{DNAT} - [0:0]", f":{SNAT} - [0:0]",
        f"-I POSTROUTING 1 -s 127.0.0.1/32 ! -d 127.0.0.1/32 -j {SNAT}",
        f"-I PREROUTING 1 {local}", f"-I OUTPUT 1 {local}",
        f"-A {DNAT} -d 0.0.0.0/0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination "
        "172.16.28.5:80",
        f"-A {SNAT} -s 127.0.0.1/32 -d 172.16.28.5/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
        f"-A {DNAT} -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination "
        "172.16.28.5:53",
        f"-A {SNAT} -s 127.0.0.1/32 -d 172.16.28.5/32 -p udp -m udp --dport 53 -j MASQUERADE",
        "COMMIT"]


@pytest.mark.parametrize("rule,host_ip,taken", [
    ("-p tcp -m tcp --dport 8080", "", True),
    ("-d 10.0.0.1/32 -p tcp -m tcp --dport 8080", "", True),
    ("-d 10.0.0.1/32 -p tcp -m tcp --dport 8080", "10.0.0.1", True),
    ("-p tcp -m tcp --dport 8080", "10.0.0.1", True),
    ("-d 10.0.0.2/32 -p tcp -m tcp --dport 8080", "10.0.0.1", False),
    ("-p udp -m udp --dport 8080", "", False),
    ("-p tcp -m tcp --dport 80800", "", False),
])
def test_a_host_port_another_pod_forwards_is_refused(iptables, rule, host_ip, taken):
    from rkt_core.network import ForwardedPort

    table, log = iptables
    table.write_text(f"*nat\n:RKT-PFWD-DNAT-0000000000000a - [0:0]\n"
                     f"-A RKT-PFWD-DNAT-0000000000000a {rule} -j DNAT --to-destination "
                     "172.16.28.9:80\nCOMMIT\n")
    forward = [ForwardedPort("http", "tcp", 80, 8080, host_ip)]
    if taken:
        with pytest.raises(RktError, match="tcp/8080 is already forwarded to another pod "
                                           r"\(iptables chain RKT-PFWD-DNAT-0000000000000a\)"):
            portfwd.setup(UUID, "172.16.28.5", forward)
        assert log() == []
    else:
        portfwd.setup(UUID, "172.16.28.5", forward)
        assert log()


def test_port_forwarding_teardown_removes_what_is_there(iptables):
    table, log = iptables
    other = "-A PREROUTING -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0000000000000"
    table.write_text("\n".join([
        "*nat", ":PREROUTING ACCEPT [0:0]", f":{DNAT} - [0:0]", other,
        f"-A PREROUTING -m addrtype --dst-type LOCAL -j {DNAT}",
        f"-A OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}",
        f"-A OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}", "COMMIT"]))
    portfwd.teardown(UUID)  # the SNAT chain and its jump are gone already
    assert log() == ["-w --noflush", "*nat",
                     f"-D PREROUTING -m addrtype --dst-type LOCAL -j {DNAT}",
                     f"-D OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}",
                     f"-D OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}",
                     f"-F {DNAT}", f"-X {DNAT}", "COMMIT"]
    table.write_text("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    (table.parent / "iptables-restore.log").unlink()
    portfwd.teardown(UUID)  # nothing left: nothing to do
    assert log() == []
