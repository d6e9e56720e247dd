"""``rkt cat-manifest``: print a pod's manifest."""

from ..appc import PodManifest
from ..errors import NotFoundError
from ..pod.pod import Pod
from .declare import argument, command, option
from .main import get_context
from .pods import uuid_argument


@command("cat-manifest")
@argument("uuid", required=False)
@option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@option("--pretty-print/--no-pretty-print", default=True, help="apply indent to format the output")
def cat_manifest(uuid, uuid_file, pretty_print) -> None:
    """Inspect and print the pod manifest."""
    with Pod.find(get_context().data_dir, uuid_argument(uuid, uuid_file)) as pod:
        data = pod.manifest_json()
        if data is None:
            raise NotFoundError(f'pod "{pod.uuid}" has no manifest yet')
        print(PodManifest.from_json(data).to_json(pretty=pretty_print), flush=True)
