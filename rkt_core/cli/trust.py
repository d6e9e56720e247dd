"""``rkt trust``: add public keys to the local keystore, after the user reviewed their fingerprint.

What is printed, and where, follows rkt's final releases (``rkt/pubkey``): the key summary, the
question and the result on stdout, ``prefix``/``key`` and refusals on stderr.
"""

from __future__ import annotations

import json
import re
import sys
from urllib.parse import unquote, urlparse

import click

from ..errors import RktError, UsageError
from ..keystore import Keystore, check_prefix, key_info
from .main import RktCommand, get_context

_UNBOUNDED_HINT = """Please provide a specific domain prefix to trust:
    rkt trust --prefix "example.com/foo" [PUBKEY]
Otherwise, trust at the root domain (not recommended) must be explicitly requested:
    rkt trust --root PUBKEY"""


def _q(text: str) -> str:
    """A double-quoted string, like Go's ``%q``."""
    return json.dumps(text, ensure_ascii=False)


def fingerprint_text(fingerprint: str) -> str:
    """rkt's display form: ten upper-case groups of four, two spaces in the middle."""
    groups = [fingerprint[i:i + 4].upper() for i in range(0, len(fingerprint), 4)]
    half = len(groups) // 2
    return " ".join(groups[:half]) + "  " + " ".join(groups[half:])


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

    Adds each PUBKEY (a local file or file:// URL) to the local keystore. With --prefix the key
    is trusted for images whose name is PREFIX or lies under PREFIX/; with --root, for every
    image.
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
    if not pubkeys:
        raise RktError("error determining key location: discovering the keys of a prefix "
                       "(ac-discovery-pubkeys) needs remote fetching, which is not supported yet",
                       hint=f"give the key as a file: rkt trust --prefix {_q(prefix)} PUBKEY")
    ctx = get_context()
    keystore = Keystore(ctx.system_config, ctx.local_config, warn=ctx.warn)
    for location in pubkeys:
        try:
            _add_key(keystore, location, prefix, review=not skip_fingerprint_review,
                     allow_http=insecure_allow_http)
        except RktError as e:
            raise RktError(f"error adding keys: {e.message}", hint=e.hint) from e


def _read_key(location: str, allow_http: bool) -> bytes:
    """The key at ``location``: a path or ``file://`` URL (http and https: not yet)."""
    url = urlparse(location)
    if url.scheme in ("", "file"):
        path = unquote(url.path) if url.scheme else location
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise RktError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    if url.scheme == "http" and not allow_http:
        raise RktError("--insecure-allow-http required for http URLs")
    if url.scheme in ("http", "https"):
        raise RktError(f"error accessing the key {location}: fetching keys over {url.scheme} "
                       "is not supported yet", hint="download the key and give its file name")
    raise RktError("only local files, file:// URLs and http or https URLs supported")


def _add_key(keystore: Keystore, location: str, prefix: str, *, review: bool,
             allow_http: bool) -> None:
    armored = _read_key(location, allow_http)
    try:
        fingerprint, uids = key_info(armored)
    except RktError as e:
        raise RktError(f"error displaying the key {location}: error reading key: {e}") from None
    click.echo(f"pubkey: prefix: {_q(prefix)}\nkey: {_q(location)}", err=True)
    click.echo(f"gpg key fingerprint is: {fingerprint_text(fingerprint)}")
    for uid in uids:
        click.echo(f"\t{uid}")
    if review:
        if not _ask():
            click.echo(f"pubkey: not trusting {_q(location)}", err=True)
            return
        click.echo(f"Trusting {_q(location)} for prefix {_q(prefix)} after fingerprint review.")
    else:
        click.echo(f"Trusting {_q(location)} for prefix {_q(prefix)} without fingerprint review.")
    if prefix:
        path = keystore.add_key(armored, prefix=prefix)
        click.echo(f"Added key for prefix {_q(prefix)} at {_q(path)}")
    else:
        path = keystore.add_key(armored, root=True)
        click.echo(f"Added root key at {_q(path)}")


def _ask() -> bool:
    """Ask on the terminal whether to trust the key shown; only "yes" and "no" are answers."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise RktError("error reviewing key: unable to ask user to review fingerprint due to lack "
                       "of tty",
                       hint="check the fingerprint above, then run again with "
                            "--skip-fingerprint-review to trust it without a terminal")
    while True:
        click.echo("Are you sure you want to trust this key (yes/no)?")
        answer = sys.stdin.readline()
        if not answer:
            raise RktError("error reviewing key: error reading input: EOF")
        if answer in ("yes\n", "no\n"):
            return answer == "yes\n"
        click.echo("Please enter 'yes' or 'no'")
