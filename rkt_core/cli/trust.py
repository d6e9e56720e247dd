"""``rkt trust``: add public keys to the local keystore, after the user reviewed their fingerprint.

The flags are checked here; the keys are read, shown, reviewed and written by
:func:`rkt_core.trust.pubkeys.trust_keys`, which prints what rkt's final releases print.
"""

from __future__ import annotations

import re

import click

from ..errors import UsageError
from ..trust.keystore import check_prefix
from ..trust.pubkeys import trust_keys
from .main import RktCommand, get_context

_UNBOUNDED_HINT = """Please provide a specific domain prefix to trust:
    rkt trust --prefix "example.com/foo" [PUBKEY]
Otherwise, trust at the root domain (not recommended) must be explicitly requested:
    rkt trust --root PUBKEY"""


@click.command(cls=RktCommand)
@click.argument("pubkeys", nargs=-1, metavar="[PUBKEY]...")
@click.option("--prefix", default="", metavar="PREFIX", help="prefix to limit trust to")
@click.option("--root", is_flag=True, help="add root key from filesystem without a prefix")
@click.option("--skip-fingerprint-review", is_flag=True,
              help="accept key without fingerprint confirmation")
@click.option("--insecure-allow-http", is_flag=True,
              help="allow HTTP use for key discovery and/or retrieval")
def trust(pubkeys, prefix, root, skip_fingerprint_review, insecure_allow_http) -> None:
    """Trust a key for image verification.

    Adds each PUBKEY (a local file, file://, https:// or, with --insecure-allow-http, http://
    URL) to the local keystore. With --prefix the key is trusted for images whose name is PREFIX
    or lies under PREFIX/; with --root, for every image. With --prefix and no PUBKEY, the keys
    are found by appc discovery (the ac-discovery-pubkeys meta tags of PREFIX); with the global
    --trust-keys-from-https they are trusted without a review when they came over https and the
    prefix has no trusted key yet.
    """
    if not prefix and not root:
        if pubkeys:
            raise UsageError("aborting due to implicit unbounded trust (root domain)",
                             hint=_UNBOUNDED_HINT)
        raise UsageError("--prefix or --root is required",
                         hint=click.get_current_context().get_usage())
    if prefix and root:
        raise UsageError("--root and --prefix usage mutually exclusive")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", prefix)
    if scheme:
        raise UsageError(f"--prefix must not contain a URL scheme, omit {scheme.group(1)}://")
    if prefix:
        check_prefix(prefix)
    if root and not pubkeys:
        raise UsageError("--root requires a PUBKEY: keys are discovered only for a --prefix")
    trust_keys(get_context(), list(pubkeys), prefix, review=not skip_fingerprint_review,
               allow_http=insecure_allow_http)
