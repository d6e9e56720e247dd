"""``rkt cat-manifest``: print a pod's manifest."""

import click

from ..appc import PodManifest
from ..errors import NotFoundError
from ..pod.pod import Pod
from .main import RktCommand, get_context
from .pods import uuid_argument


@click.command("cat-manifest", cls=RktCommand)
@click.argument("uuid", required=False)
@click.option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@click.option("--pretty-print/--no-pretty-print", default=True, help="apply indent to format the output")
def cat_manifest(uuid, uuid_file, pretty_print) -> None:
    """Inspect and print the pod manifest."""
    with Pod.find(get_context().data_dir, uuid_argument(uuid, uuid_file)) as pod:
        data = pod.manifest_json()
        if data is None:
            raise NotFoundError(f'pod "{pod.uuid}" has no manifest yet')
        click.echo(PodManifest.from_json(data).to_json(pretty=pretty_print))
