"""Entry point of the metadata service plugin (``metadata-service``): the ``rkt
metadata-service`` command, pod registration for ``--mds-register`` and unregistration at gc.
Everything else is imported only when used."""

from rkt_core.plugin_api import hookimpl

RKT_PLUGIN_API = 1


@hookimpl
def rkt_add_commands(cli):
    from .command import metadata_service

    cli.add_command(metadata_service)


@hookimpl
def rkt_register_pod(pod, options):
    from .client import register

    return register(pod, options)


@hookimpl
def rkt_pod_gc(pod):
    from .client import unregister

    unregister(pod)
