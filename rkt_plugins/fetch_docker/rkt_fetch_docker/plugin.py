"""Entry point of the docker fetcher (``fetch-docker``); the implementation, and the HTTP client
with it, is imported only when a ``docker://`` image is fetched."""

from rkt_core.plugin_api import Fetcher, hookimpl

RKT_PLUGIN_API = 1


def _fetch(request):
    from .fetcher import fetch

    return fetch(request)


@hookimpl
def rkt_fetchers():
    return [Fetcher("docker", ("docker",), _fetch,
                    "docker:// images from a Docker Registry v2 (schema1, schema2, OCI), "
                    "converted to ACI")]
