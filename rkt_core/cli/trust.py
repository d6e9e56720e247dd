"""``rkt trust``: add public keys to the local keystore, after the user reviewed their fingerprint.

What is printed, and where, follows rkt's final releases (``rkt/pubkey``): the key summary, the
question and the result on stdout, ``prefix``/``key`` and refusals on stderr.
"""

from __future__ import annotations

import re

import click

from ..errors import RktError, UsageError
from ..insecure import Insecure
from ..keystore import Keystore, check_prefix
from ..pubkeys import ASK, FORCE, add_discovered_keys, add_key, fingerprint_text, read_key
from .main import RktCommand, get_context

__all__ = ["trust", "fingerprint_text"]

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
    ctx = get_context()
    keystore = Keystore(ctx.system_config, ctx.local_config, warn=ctx.warn)
    try:
        if not pubkeys:
            add_discovered_keys(ctx, keystore, prefix, review=not skip_fingerprint_review,
                                trust_from_https=ctx.trust_keys_from_https,
                                allow_http=insecure_allow_http)
            return
        for location in pubkeys:
            armored = read_key(ctx, location, allow_http=insecure_allow_http,
                               verify_tls=not ctx.insecure_for(Insecure.TLS))
            add_key(keystore, armored, location, prefix, FORCE if skip_fingerprint_review else ASK)
    except RktError as e:
        if e.message.startswith("error determining key location"):
            raise
        raise RktError(f"error adding keys: {e.message}", hint=e.hint) from e
