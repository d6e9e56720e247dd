"""Built-in plugin: fetch images by appc name (``example.com/app:1.0,os=linux``) through meta
discovery (:mod:`rkt_core.remote.discovery`), then download them like any https URL.

The manifest must carry the requested name and every label the user gave. When no key is trusted
for the name yet and signatures are checked, the keys the name's ``ac-discovery-pubkeys`` tags
point to are offered (:func:`rkt_core.trust.pubkeys.offer_keys`): trusted without a question with
``--trust-keys-from-https`` (when they came over verified https), else after a fingerprint review
on the terminal.
"""

from __future__ import annotations

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
    from ..remote.discovery import DiscoveryError, app_labels, discover
    from ..remote.httpclient import HttpClient, options_for
    from ..remote.fetch import fetch_remote
    from ..trust.pubkeys import offer_keys

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
