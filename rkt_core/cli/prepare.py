"""``rkt prepare``: prepare a pod to run later with ``rkt run-prepared``; prints its UUID."""

from ..stage0.prepare import prepare_pod
from ..sys.fs import write_atomic
from .declare import command, option
from .main import get_context
from .run import build_prepare_options, prepare_options


@command(apps=True)
@prepare_options
@option("--quiet/--no-quiet", default=False, help="suppress superfluous output on stderr")
def prepare(quiet: bool, **params) -> None:  # noqa: ARG001 (rkt's flag)
    """Prepare a pod from image(s) for a later run-prepared."""
    ctx = get_context()
    ctx.require_write_access("preparing pods")
    options = build_prepare_options(params)
    with prepare_pod(ctx, options) as pod:
        if params["private_users"]:  # the user namespace itself is set up at run time
            write_atomic(pod.file("private-users-requested"), b"", durable=False)
        pod.to_prepared()
        print(pod.uuid, flush=True)
