"""The CNI network backend: a network namespace per pod, each network attached by its CNI
plugins (``eth0``, ``eth1``... in configuration file order), ports forwarded, and everything
undone in reverse at teardown.

Each step is recorded in ``<pod>/net/`` before it is taken, so a teardown after a crash at any
point knows what to undo: a copy of each network's configuration, ``<ifname>.json`` with the
plugins that ran and what they returned (``result`` stays null until ADD succeeded; DEL is run
anyway, which CNI plugins accept), and ``ports.json`` while port forwarding rules may exist.

A network whose ADD failed also records which plugin failed and the plugin's own error
(``failed``). Its teardown runs DEL only for the plugins whose ADD was called; if the failed
plugin refuses DEL with the very error it refused ADD with, it stopped at the same check (its
configuration or ``CNI_ARGS``) before acting on the pod, and every later DEL would fail alike:
the refusal is taken as done instead of keeping the pod for a ``rkt gc`` that can never succeed.
Any other DEL failure keeps the records, for a later teardown to retry.
"""

from __future__ import annotations

import json
import os
import re

from rkt_core.plugin_api import PodNetworks, RktError
from rkt_core.plugin_api import network

from . import config, invoke, portfwd
from .result import Result, dns_fields, parse

STATE_DIR = "net"
PORTS_RECORD = "ports.json"
_RECORD = re.compile(r"^eth(\d+)\.json$")


def _holding(pod) -> tuple[int, ...]:
    """The pod's lock, for the commands that set networks up: while one runs, the pod counts
    as running even if rkt itself was killed, so the teardown (which then starts) waits for it
    rather than racing it."""
    return (pod.lock_fd,) if pod.holds_lock and pod.lock_fd >= 0 else ()


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0, 1, 0)


class CniNetworks:
    """Sets pods up on CNI networks and tears them down (``NetworkSetup``)."""

    # --- setup --------------------------------------------------------------------------------

    def setup(self, pod, requests, ctx) -> PodNetworks:
        """Create the pod's namespace and run ADD for each requested network."""
        names = [r.name for r in requests]
        chosen = config.select(config.load(ctx.local_config, ctx.warn), names)
        args = {r.name: network.cni_args(r) for r in requests}
        ports = network.forwarded_ports(pod.manifest())
        dirs = invoke.plugin_dirs(ctx.local_config)
        python_types = invoke.python_types(ctx)
        # Every plugin is found before anything is set up: a missing one changes nothing.
        plugins = [[invoke.find(p["type"], dirs, python_types) for p in conf.plugins]
                   for conf in chosen]
        netns = network.create_netns(pod)
        state = pod.file(STATE_DIR)
        os.makedirs(state, mode=0o755, exist_ok=True)
        networks = PodNetworks(netns)
        results: list[Result] = []
        for index, (conf, found) in enumerate(zip(chosen, plugins)):
            ifname = f"eth{index}"
            ctx.log(f"networking: adding network {conf.name} ({found[0].type}) as {ifname}")
            copy = self._copy_config(state, conf, ifname)
            record = {"netName": conf.name, "ifName": ifname, "args": args.get(conf.name, ""),
                      "conf": os.path.basename(copy), "version": conf.version,
                      "plugins": [{"type": p.type, "argv": list(p.argv)} for p in found],
                      "result": None}
            self._save(state, record)
            raw = self._add(pod, conf, found, netns, record, state, dirs)
            record["result"] = raw
            self._save(state, record)
            result = parse(raw)
            results.append(result)
            networks.interfaces.append(self._net_info(record, copy, result, netns))
            self._take_dns(networks, result, conf.name, ctx)
        if ports:
            self._forward(pod, chosen, results, ports, netns, state)
        return networks

    @staticmethod
    def _copy_config(state: str, conf: config.NetConfig, ifname: str) -> str:
        path = os.path.join(state, conf.filename)
        if os.path.exists(path):  # two networks from files of the same name
            path = os.path.join(state, f"{ifname}-{conf.filename}")
        network.write_state(path, conf.data)
        return path

    @staticmethod
    def _save(state: str, record: dict) -> None:
        network.write_state(os.path.join(state, f"{record['ifName']}.json"),
                            json.dumps(record).encode())

    @classmethod
    def _add(cls, pod, conf, found, netns, record: dict, state: str, dirs) -> dict:
        env = invoke.environment("ADD", pod.uuid, netns, record["ifName"], record["args"], dirs)
        previous = None
        for index, (plugin_conf, plugin) in enumerate(zip(conf.plugins, found)):
            request = dict(plugin_conf)
            if previous is not None:
                request["prevResult"] = previous
            try:
                output = invoke.run(plugin, request, env, _holding(pod))
            except invoke.PluginError as e:
                record["failed"] = {"plugin": index, "code": e.code, "error": e.reason}
                cls._save(state, record)
                raise RktError(f'error adding network "{conf.name}": {e}') from None
            previous = output if output is not None else previous
        return previous or {}

    @staticmethod
    def _net_info(record: dict, copy: str, result: Result, netns: str) -> dict:
        ip = result.ipv4(netns)
        address = ip.interface_address if ip else None
        return {"netName": record["netName"], "netConf": copy,
                "pluginPath": " ".join(record["plugins"][0]["argv"]),
                "ifName": record["ifName"], "ip": str(address.ip) if address else "",
                "args": record["args"], "mask": str(address.netmask) if address else ""}

    @staticmethod
    def _take_dns(networks: PodNetworks, result: Result, name: str, ctx) -> None:
        nameservers, search, options, domain = dns_fields(result.dns)
        if not (nameservers or search or options or domain):
            return
        if networks.nameservers or networks.search or networks.options or networks.domain:
            ctx.log(f"networking: network {name} returned DNS settings too; the first "
                    "network's are used")
            return
        networks.nameservers, networks.search = nameservers, search
        networks.options, networks.domain = options, domain

    @staticmethod
    def _forward(pod, chosen, results, ports, netns, state) -> None:
        """rkt's rule: ports go to the first network that masquerades, else the last one."""
        index = next((i for i, conf in enumerate(chosen) if conf.ip_masq), len(chosen) - 1)
        ip = results[index].ipv4(netns) if chosen else None
        if ip is None:
            raise RktError(f'cannot forward ports: network "{chosen[index].name}" gave the pod '
                           "no IPv4 address" if chosen else "cannot forward ports: no network")
        interfaces = results[index].host_interfaces()
        if not interfaces and ip.gateway:
            interfaces = portfwd.host_interfaces_with(ip.gateway)
        network.write_state(os.path.join(state, PORTS_RECORD), json.dumps(
            [p.__dict__ for p in ports]).encode())
        portfwd.enable_route_localnet(interfaces)
        portfwd.setup(pod.uuid, str(ip.interface_address.ip), ports, _holding(pod))

    # --- teardown -----------------------------------------------------------------------------

    def teardown(self, pod, ctx) -> None:
        """Remove forwarded ports, then DEL each network in reverse order; a network whose DEL
        fails keeps its record (and the error is raised) so that a later teardown retries."""
        state = pod.file(STATE_DIR)
        if os.path.exists(os.path.join(state, PORTS_RECORD)):
            portfwd.teardown(pod.uuid)
            os.unlink(os.path.join(state, PORTS_RECORD))
        try:
            names = os.listdir(state)
        except FileNotFoundError:
            return
        records = sorted((int(m[1]), m[0]) for m in map(_RECORD.match, names) if m)
        path = network.netns_path(pod)
        netns = path if network.is_netns(path) else ""
        errors = []
        for _, name in reversed(records):
            try:
                self._delete(pod, state, name, netns, ctx)
            except (RktError, OSError, ValueError) as e:
                errors.append(str(e))
        if errors:
            raise RktError("; ".join(errors))

    @staticmethod
    def _delete(pod, state: str, record_name: str, netns: str, ctx) -> None:
        with open(os.path.join(state, record_name)) as f:
            record = json.load(f)
        copy = os.path.join(state, os.path.basename(record["conf"]))
        with open(copy, "rb") as f:
            conf = config.parse(f.read(), record["conf"], copy)
        dirs = invoke.plugin_dirs(ctx.local_config)
        python_types = invoke.python_types(ctx)
        env = invoke.environment("DEL", pod.uuid, netns, record["ifName"], record["args"], dirs)
        ctx.log(f"networking: deleting network {record['netName']} ({record['ifName']})")
        plugins = list(zip(conf.plugins, record["plugins"]))
        failed = record.get("failed") if record["result"] is None else None
        if failed:  # the plugins after the one that failed were never called
            plugins = plugins[:failed["plugin"] + 1]
        for index, (plugin_conf, plugin) in reversed(list(enumerate(plugins))):
            request = dict(plugin_conf)
            if _version(conf.version) >= (0, 4, 0) and record["result"]:
                request["prevResult"] = record["result"]
            argv = tuple(plugin["argv"])
            if not os.path.exists(argv[0]):  # moved since: look it up again
                argv = invoke.find(plugin["type"], dirs, python_types).argv
            try:
                invoke.run(invoke.Plugin(plugin["type"], argv), request, env)
            except invoke.PluginError as e:
                if failed and index == failed["plugin"] and e.reason and \
                        (e.code, e.reason) == (failed["code"], failed["error"]):
                    ctx.log(f'networking: network {record["netName"]}: CNI plugin '
                            f'"{plugin["type"]}" refuses DEL as it refused ADD ({e.reason}); '
                            "it set nothing up")
                    continue
                raise RktError(f'error deleting network "{record["netName"]}": {e}') from None
        os.unlink(os.path.join(state, record_name))
        os.unlink(copy)
