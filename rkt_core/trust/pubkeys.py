"""Getting public keys into the keystore: reading them (file, ``file://``, http, https),
discovering them (``ac-discovery-pubkeys``), showing their fingerprint and asking the user.

What is printed, and where, follows rkt (``rkt/pubkey``): the key summary, the question and the
result on stdout; ``prefix``/``key`` lines and refusals on stderr. :func:`trust_keys` is what
``rkt trust`` does, :func:`offer_keys` what the appc name fetcher does for a name without keys.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import unquote, urlparse

from ..errors import RktError
from ..insecure import Insecure
from .keystore import Keystore, key_info

MAX_KEY_BYTES = 1 << 20

# How a key is accepted: after a review on the terminal, or without one.
ASK, FORCE = "ask", "force"


def _q(text: str) -> str:
    """A double-quoted string, like Go's ``%q``."""
    return json.dumps(text, ensure_ascii=False)


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fingerprint_text(fingerprint: str) -> str:
    """rkt's display form: ten upper-case groups of four, two spaces in the middle."""
    groups = [fingerprint[i:i + 4].upper() for i in range(0, len(fingerprint), 4)]
    half = len(groups) // 2
    return " ".join(groups[:half]) + "  " + " ".join(groups[half:])


def read_key(ctx, location: str, *, allow_http: bool, verify_tls: bool = True) -> bytes:
    """The key at ``location``: a path, a ``file://`` URL, or an http(s) URL."""
    url = urlparse(location)
    if url.scheme in ("", "file"):
        path = unquote(url.path) if url.scheme else location
        try:
            with open(path, "rb") as f:
                return f.read(MAX_KEY_BYTES + 1)
        except OSError as e:
            raise RktError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    if url.scheme == "http" and not allow_http:
        raise RktError("--insecure-allow-http required for http URLs")
    if url.scheme not in ("http", "https"):
        raise RktError("only local files, file:// URLs and http or https URLs supported")
    from ..remote.httpclient import HttpClient, options_for

    with HttpClient(options_for(ctx, allow_http=allow_http, verify_tls=verify_tls)) as client:
        status, body, _ = client.get_small(location, MAX_KEY_BYTES, "key")
    if status != 200:
        raise RktError(f"error accessing the key {location}: bad HTTP status code: {status}")
    return body


def discover_key_locations(ctx, prefix: str, *, allow_http: bool, verify_tls: bool = True) -> list[str]:
    """The key URLs the ``ac-discovery-pubkeys`` tags for ``prefix`` give."""
    from ..remote.discovery import discover
    from ..remote.httpclient import HttpClient, options_for

    with HttpClient(options_for(ctx, allow_http=allow_http, verify_tls=verify_tls)) as client:
        found = discover(client, prefix, {}, want_keys=True, allow_http=allow_http)
    for attempt in found.attempts:
        ctx.log(f"pubkey: meta tag 'ac-discovery-pubkeys' not found: {attempt}")
    if not found.keys:
        raise RktError(f"error determining key location: meta discovery on {prefix} resulted "
                       "in no keys" + (f" ({found.attempts[-1]})" if found.attempts else ""))
    return found.keys


def ask(question: str = "Are you sure you want to trust this key (yes/no)?") -> bool:
    """Ask on the terminal; only "yes" and "no" are answers."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise RktError("error reviewing key: unable to ask user to review fingerprint due to lack "
                       "of tty",
                       hint="check the fingerprint above, then run again with "
                            "--skip-fingerprint-review to trust it without a terminal")
    while True:
        _out(question)
        answer = sys.stdin.readline()
        if not answer:
            raise RktError("error reviewing key: error reading input: EOF")
        if answer in ("yes\n", "no\n"):
            return answer == "yes\n"
        _out("Please enter 'yes' or 'no'")


def add_key(keystore: Keystore, armored: bytes, location: str, prefix: str, accept: str) -> str | None:
    """Show the key, review it if ``accept`` is ASK, and trust it for ``prefix`` ("" = root).

    Returns the written path, or None when the user said no.
    """
    if len(armored) > MAX_KEY_BYTES:
        raise RktError(f"error displaying the key {location}: the key is larger than "
                       f"{MAX_KEY_BYTES} bytes")
    try:
        fingerprint, uids = key_info(armored)
    except RktError as e:
        raise RktError(f"error displaying the key {location}: error reading key: {e}") from None
    _err(f"pubkey: prefix: {_q(prefix)}\nkey: {_q(location)}")
    _out(f"gpg key fingerprint is: {fingerprint_text(fingerprint)}")
    for uid in uids:
        _out(f"\t{uid}")
    if accept == ASK:
        if not ask():
            _err(f"pubkey: not trusting {_q(location)}")
            return None
        _out(f"Trusting {_q(location)} for prefix {_q(prefix)} after fingerprint review.")
    else:
        _out(f"Trusting {_q(location)} for prefix {_q(prefix)} without fingerprint review.")
    if prefix:
        path = keystore.add_key(armored, prefix=prefix)
        _out(f"Added key for prefix {_q(prefix)} at {_q(path)}")
    else:
        path = keystore.add_key(armored, root=True)
        _out(f"Added root key at {_q(path)}")
    return path


def add_discovered_keys(ctx, keystore: Keystore, prefix: str, *, trust_from_https: bool,
                        allow_http: bool, review: bool = True) -> list[str]:
    """Discover the keys of ``prefix`` and trust them.

    A key is trusted without a question when ``review`` is False (``--skip-fingerprint-review``),
    or with ``trust_from_https`` when it came over verified https and no other key is trusted for
    the prefix yet: a new key next to an existing one is always reviewed. A key that is already
    trusted is left alone. Returns the paths written.
    """
    verify_tls = not ctx.insecure_for(Insecure.TLS)
    already = {os.path.basename(p) for p in keystore.keys_for(prefix)}
    has_keys = keystore.prefix_has_keys(prefix)
    written = []
    for location in discover_key_locations(ctx, prefix, allow_http=allow_http,
                                           verify_tls=verify_tls):
        armored = read_key(ctx, location, allow_http=allow_http, verify_tls=verify_tls)
        try:
            fingerprint, _ = key_info(armored)
        except RktError as e:
            raise RktError(f"error displaying the key {location}: error reading key: {e}") from None
        if fingerprint in already:
            _err(f"pubkey: key {fingerprint_text(fingerprint)} from {_q(location)} is already "
                 f"trusted for prefix {_q(prefix)}")
            continue
        accept = ASK
        if not review:
            accept = FORCE
        elif trust_from_https and urlparse(location).scheme == "https" and verify_tls:
            if has_keys:
                _err(f"pubkey: prefix {_q(prefix)} already has a trusted key; a new key is not "
                     "trusted without a review")
            else:
                accept = FORCE
        if accept == ASK and not (sys.stdin.isatty() and sys.stderr.isatty()):
            _err(f"pubkey: to trust the key for {_q(prefix)}, do one of the following:\n"
                 " - call rkt with --trust-keys-from-https\n"
                 f" - run: rkt trust --prefix {_q(prefix)}")
        path = add_key(keystore, armored, location, prefix, accept)
        if path:
            written.append(path)
    return written


def offer_keys(ctx, name: str) -> None:
    """If no key is trusted for ``name`` or a parent prefix, discover its keys and offer them.

    Failures are reported, not fatal: the signature check that follows decides.
    """
    if ctx.insecure_for(Insecure.TLS) and not ctx.insecure_for(Insecure.PUBKEY):
        ctx.log("pubkey: not discovering keys without TLS verification "
                "(--insecure-options=pubkey allows it)")
        return
    keystore = Keystore(ctx.system_config, ctx.local_config, warn=ctx.warn)
    if keystore.prefix_has_keys(name):
        ctx.log(f'pubkey: keys already exist for prefix "{name}", not fetching again')
        return
    try:
        add_discovered_keys(ctx, keystore, name, trust_from_https=ctx.trust_keys_from_https,
                            allow_http=ctx.insecure_for(Insecure.PUBKEY)
                            and ctx.insecure_for(Insecure.HTTP))
    except RktError as e:
        ctx.warn(f"error adding keys: {e.message}")
        if e.hint:
            ctx.warn(e.hint)


def trust_keys(ctx, locations: list[str], prefix: str, *, review: bool, allow_http: bool) -> None:
    """``rkt trust``: trust the keys at ``locations`` for ``prefix`` ("" = root), or with no
    location the keys discovered for ``prefix``; ``review`` asks the user about each key."""
    keystore = Keystore(ctx.system_config, ctx.local_config, warn=ctx.warn)
    try:
        if not locations:
            add_discovered_keys(ctx, keystore, prefix, review=review,
                                trust_from_https=ctx.trust_keys_from_https, allow_http=allow_http)
            return
        for location in locations:
            armored = read_key(ctx, location, allow_http=allow_http,
                               verify_tls=not ctx.insecure_for(Insecure.TLS))
            add_key(keystore, armored, location, prefix, ASK if review else FORCE)
    except RktError as e:
        if e.message.startswith("error determining key location"):
            raise
        raise RktError(f"error adding keys: {e.message}", hint=e.hint) from e
