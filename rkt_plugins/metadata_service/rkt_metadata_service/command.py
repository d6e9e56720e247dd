"""``rkt metadata-service [--listen-port=PORT]``."""

import click

from rkt_core.plugin_api.cli import RktCommand

from .client import DEFAULT_PORT, socket_path


@click.command("metadata-service", cls=RktCommand)
@click.option("--listen-port", default=DEFAULT_PORT, show_default=True,
              type=click.IntRange(1, 65535), help="the TCP port apps reach the service on")
def metadata_service(listen_port: int) -> int:
    """Run the metadata service: rkt metadata-service [--listen-port=PORT]

    Pods run with --mds-register read their manifests, annotations and uuid, and sign and
    verify content, at AC_METADATA_URL. Registrations arrive on /run/rkt/metadata-svc.sock
    (root only; $RKT_METADATA_SOCKET, or the socket systemd passes); apps on the host's network
    reach the service on 127.0.0.1:PORT, apps on a contained network on their own loopback.
    """
    from .server import serve

    return serve(listen_port, socket_path())
