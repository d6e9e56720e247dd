"""``rkt fetch``: get images into the store and print their IDs."""

from ..errors import UsageError
from ..stage0.fetch import FetchOptions, fetch_image, pull_policy_from_flags
from ..store.imagestore import fetch_key
from .declare import argument, command, option
from .main import get_context


@command()
@argument("images", nargs=-1, required=True)
@option("--signature", "signatures", multiple=True, metavar="FILE",
        help="local signature file to use for the image (once per image, in order)")
@option("--full/--no-full", default=False, help="print the full image hash after fetching")
@option("--pull-policy", default=None, metavar="POLICY",
        help='when to pull: "new", "update" (default) or "never"')
@option("--store-only/--no-store-only", default=False, hidden=True,
        help="deprecated: same as --pull-policy=never")
@option("--no-store/--store", default=False, hidden=True,
        help="deprecated: same as --pull-policy=update")
def fetch(images, signatures, full, pull_policy, store_only, no_store) -> None:
    """Fetch image(s) and store them in the local store."""
    ctx = get_context()
    ctx.require_write_access("fetching images")
    policy = pull_policy_from_flags(pull_policy, store_only, no_store, default="update")
    if len(signatures) > len(images):
        raise UsageError("more --signature files than images")
    for i, image in enumerate(images):
        signature = signatures[i] if i < len(signatures) else None
        key = fetch_image(ctx, image, FetchOptions(policy, signature))
        print(key if full else fetch_key(key), flush=True)
