"""``rkt run``: prepare a pod from images and run it in the foreground.

``rkt run``'s exit status is the first failing app's exit status (0 if all succeeded); errors of
rkt itself exit 254.
"""

from __future__ import annotations

import functools

from ..appc import Volume
from ..errors import UsageError
from .. import network
from ..stage0.fetch import pull_policy_from_flags
from ..stage0.prepare import PrepareOptions, prepare_pod
from ..stage0.run import options_checker, run_pod
from ..stage0.stage1 import KINDS as STAGE1_KINDS
from ..stage0.stage1 import request_from_flags
from ..types import RunOptions
from .declare import command, option
from .main import get_context


def prepare_options(f):
    """The flags ``run`` and ``prepare`` share (images and per-app flags are parsed apart)."""
    options = [
        option("--volume", "volumes", multiple=True, metavar="NAME,kind=host|empty,...",
               help="volumes to make available in the pod"),
        option("--set-env", "set_env", multiple=True, metavar="NAME=VALUE",
               help="an environment variable to set for all apps"),
        option("--inherit-env/--no-inherit-env", default=False,
               help="inherit all environment variables not set by apps"),
        option("--pull-policy", default=None, metavar="POLICY",
               help='when to pull images: "new" (default), "update" or "never"'),
        option("--store-only/--no-store-only", default=False, hidden=True,
               help="deprecated: same as --pull-policy=never"),
        option("--no-store/--store", default=False, hidden=True,
               help="deprecated: same as --pull-policy=update"),
        option("--stage1-name", multiple=True, metavar="NAME",
               help="the stage1 flavor to run the pod with (nspawn, fly, kvm...), or the "
                    "name[:version] of a stage1 image"),
        option("--stage1-path", multiple=True, metavar="PATH",
               help="a stage1 image file to run the pod with"),
        option("--stage1-url", multiple=True, metavar="URL",
               help="the URL of a stage1 image to run the pod with"),
        option("--stage1-hash", multiple=True, metavar="ID",
               help="the ID of a stage1 image in the store to run the pod with"),
        option("--stage1-from-dir", multiple=True, metavar="FILE",
               help="the file name of a stage1 image in the stage1 images directory"),
        option("--stage1-image", multiple=True, metavar="IMAGE", hidden=True,
               help="v0.14 flag: a stage1 image path, URL, ID or name, or a flavor"),
        option("--no-overlay/--overlay", default=False,
               help="disable overlay filesystem and copy image trees instead"),
        option("--pod-manifest", default="", metavar="FILE",
               help="the path to the pod manifest; overrides images and their flags"),
        option("--uuid-file-save", default="", metavar="FILE",
               help="write the pod UUID to this file"),
        option("--private-users/--no-private-users", default=False,
               help="run within user namespaces"),
        option("--port", "ports", multiple=True, metavar="NAME:[HOSTIP:]HOSTPORT",
               help="ports to forward"),
    ]
    return functools.reduce(lambda acc, decorate: decorate(acc), reversed(options), f)


def parse_env(values) -> dict[str, str]:
    """``NAME=VALUE`` flags as a dict."""
    env = {}
    for value in values:
        name, eq, val = value.partition("=")
        if not eq or not name:
            raise UsageError(f'--set-env "{value}": expected NAME=VALUE')
        env[name] = val
    return env


def build_prepare_options(params: dict) -> PrepareOptions:
    """PrepareOptions from the parsed flags, the image list (``apps``) and the ``--mount``
    flags before any image (``pod_mounts``)."""
    stage1 = request_from_flags({kind: params["stage1_" + kind.replace("-", "_")]
                                 for kind in STAGE1_KINDS})
    policy = pull_policy_from_flags(params["pull_policy"], params["store_only"], params["no_store"],
                                    default="new")
    return PrepareOptions(
        apps=params["apps"], mounts=params["pod_mounts"],
        volumes=[Volume.from_cli(v) for v in params["volumes"]],
        set_env=parse_env(params["set_env"]), inherit_env=params["inherit_env"],
        pull_policy=policy, stage1=stage1, no_overlay=params["no_overlay"],
        pod_manifest=params["pod_manifest"], uuid_file_save=params["uuid_file_save"],
        ports=[network.parse_port_flag(p) for p in params["ports"]])


def run_flags(f):
    """The flags ``run`` and ``run-prepared`` share."""
    options = [
        option("--net", "net", optional_value="default", default=None,
               multiple=True, metavar="NETS",
               help="networks to join, comma-separated: default, default-restricted, "
                    "NAME[:CNI_ARGS K=V;...], all (every network), or host / none alone"),
        option("--interactive/--no-interactive", default=False,
               help="run the pod interactively (one app only)"),
        option("--mds-register/--no-mds-register", default=False,
               help="register the pod with the metadata service"),
        option("--hostname", default="", help="the pod's hostname [default: rkt-<uuid>]"),
        option("--dns", multiple=True,
               help="name servers; host: the host's resolv.conf; none: the image's"),
        option("--dns-search", multiple=True, help="DNS search domains"),
        option("--dns-opt", multiple=True, help="DNS options"),
        option("--dns-domain", default="", help="the DNS domain of /etc/resolv.conf"),
        option("--hosts-entry", "hosts_entries", multiple=True, metavar="IP=HOST|host",
               help="entries to add to the pod's /etc/hosts"),
    ]
    return functools.reduce(lambda acc, decorate: decorate(acc), reversed(options), f)


def build_run_options(params: dict, private_users: bool) -> tuple[RunOptions, bool]:
    """RunOptions from the parsed flags, and whether ``--net`` was given."""
    nets = network.split_net_flags(params["net"])
    options = RunOptions(
        lock_fd=-1, net=nets or ("default",), interactive=params["interactive"],
        private_users=private_users, mds_register=params["mds_register"],
        hostname=params["hostname"], dns=tuple(params["dns"]), dns_search=tuple(params["dns_search"]),
        dns_opt=tuple(params["dns_opt"]), hosts_entries=tuple(params["hosts_entries"]),
        dns_domain=params["dns_domain"],
        debug=get_context().debug, local_config=get_context().local_config,
        insecure=int(get_context().insecure))
    network.parse_requests(options.net)  # refuse bad --net and DNS flags before any pod exists
    network.check_name_service_flags(options)
    return options, bool(nets)


@command(apps=True)
@prepare_options
@run_flags
def run(**params) -> int:
    """Run image(s) in a pod: rkt run [FLAGS] IMAGE [--exec CMD] [-- ARGS ---] [IMAGE ...]"""
    ctx = get_context()
    ctx.require_write_access("running pods")
    options = build_prepare_options(params)
    run_options, net_given = build_run_options(params, params["private_users"])
    pod = prepare_pod(ctx, options, validate=options_checker(ctx, run_options, net_given))
    with pod:
        return run_pod(ctx, pod, run_options, net_given)
