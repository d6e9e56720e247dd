"""Built-in plugin: fetch images by appc name (``example.com/app:1.0,os=linux``) through meta
discovery (:mod:`rkt_core.discovery`), then download them like any https URL.

The manifest must carry the requested name and every label the user gave. When no key is trusted
for the name yet and signatures are checked, the keys the name's ``ac-discovery-pubkeys`` tags
point to are offered: trusted without a question with ``--trust-keys-from-https`` (when they came
over verified https), else after a fingerprint review on the terminal.
"""

from __future__ import annotations

from ..errors import RktError
from ..hookspecs import hookimpl
from ..insecure import Insecure
from ..types import FetchedImage, Fetcher, FetchRequest

RKT_PLUGIN_API = 1


@hookimpl
def rkt_fetchers():
    """Declare the ``appc`` fetcher (image names)."""
    return [Fetcher("appc", ("appc",), fetch_by_name, "appc image names, by meta discovery")]


def fetch_by_name(request: FetchRequest) -> FetchedImage:
    """Discover where the named image is and fetch it from there."""
    from ..appc.reference import parse_app_string
    from ..discovery import DiscoveryError, app_labels, discover
    from ..httpclient import HttpClient, options_for
    from .fetch_http import fetch_remote

    ctx = request.context
    name, labels = parse_app_string(request.ref)
    labels = {**labels, **request.labels}
    ctx.log(f"image: searching for app image {name}")
    options = options_for(ctx)
    with HttpClient(options) as client:
        found = discover(client, name, app_labels(labels), allow_http=options.allow_http)
    for attempt in found.attempts:
        ctx.log(f"discovery: {attempt}")
    if not found.endpoints:
        tried = "; ".join(found.attempts[-3:])
        raise DiscoveryError(f'discovery failed for "{name}": no endpoints discovered'
                             + (f" ({tried})" if tried else ""))
    endpoint = found.endpoints[0]
    ctx.log(f'image: remote fetching from URL "{endpoint.aci}"')
    if not ctx.insecure_for(Insecure.IMAGE) and not request.signature:
        offer_keys(ctx, name)
    return fetch_remote(ctx, endpoint.aci, endpoint.asc, signature_file=request.signature,
                        expected_name=name, expected_labels=labels)


def offer_keys(ctx, name: str) -> None:
    """If no key is trusted for ``name`` or a parent prefix, discover its keys and offer them.

    Failures are reported, not fatal: the signature check that follows decides.
    """
    from ..keystore import Keystore
    from ..pubkeys import add_discovered_keys

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
