"""The ``docker://`` fetcher: registry to squashed ACI, every digest checked on the way.

1. Docker images carry no appc signature: without ``--insecure-options=image`` the fetch is
   refused before anything is downloaded (rkt's rule).
2. A reference by digest that the store already holds is answered from the store with no
   request at all. Otherwise the manifest is fetched and checked (:mod:`.manifest`); if its
   digest is the one the store recorded for this reference (the ``remote`` table's etag), the
   stored image is reused: an unchanged tag costs one manifest download.
3. Each layer blob comes from the blob cache or the registry (:mod:`.blobcache`: resumable,
   checked), is decompressed to a plain tar in a work directory under ``cas/tmp`` and checked
   against its diff_id (:mod:`.layers`), then squashed (:mod:`.squash`).
4. The ACI goes to an anonymous file in ``cas/tmp`` that rkt stages and checks like any image.
   Any failure leaves nothing behind but the verified blobs in the cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import BinaryIO

from rkt_core.plugin_api import FetchedImage, FetchRequest, RemoteInfo, SignatureError
from rkt_core.plugin_api.fetch import Insecure, image_limits
from rkt_core.plugin_api.images import stored_remote, temp_dir

from . import reference
from .blobcache import BlobCache
from .client import Registry
from .convert import image_manifest
from .layers import unpack
from .manifest import Image, fetch_named, resolve
from .squash import Squasher

BLOB_CACHE = "docker-blobs"  # under cas/tmp


def credentials(docker_auth: dict[str, dict], registry: str) -> tuple[str, str] | None:
    """The dockerAuth (user, password) of ``registry``; Docker Hub also under its other
    names."""
    names = reference.HUB_NAMES if registry == reference.DEFAULT_REGISTRY else (registry,)
    for name in names:
        if name in docker_auth:
            return docker_auth[name]["user"], docker_auth[name]["password"]
    return None


def fetch(request: FetchRequest) -> FetchedImage:
    """Fetch ``docker://...`` (see the module docstring)."""
    ctx = request.context
    ref = reference.parse(request.ref)
    if not ctx.insecure_for(Insecure.IMAGE):
        raise SignatureError("signature verification for docker images is not supported",
                             hint="run it with --insecure-options=image if you trust its source")
    stored = stored_remote(ctx, request.ref)
    if ref.digest and stored is not None and stored[0].etag == ref.digest:
        return FetchedImage(store_key=stored[1], signable=False)
    with Registry(ref, credentials=credentials(ctx.config.docker_auth, ref.registry),
                  allow_http=ctx.insecure_for(Insecure.HTTP),
                  verify_tls=not ctx.insecure_for(Insecure.TLS), log=ctx.log) as registry:
        registry.connect()
        named = fetch_named(registry, ref)
        remote = RemoteInfo(aci_url=request.ref, etag=named.digest)
        if stored is not None and stored[0].etag == named.digest:
            ctx.log(f"docker: {ref} is unchanged ({named.digest}): using the stored image")
            return FetchedImage(store_key=stored[1], remote=remote, signable=False)
        aci = convert(registry, ref, resolve(registry, ref, named), temp_dir(ctx), ctx)
    # rkt marks an image fetched by the tag "latest" as the latest of its name.
    return FetchedImage(aci=aci, remote=remote, signable=False,
                        expected_name=ref.aci_name if ref.tag == "latest" else None)


def convert(registry: Registry, ref: reference.DockerRef, image: Image, tmp_dir: str,
            ctx) -> BinaryIO:
    """Download, check and squash the layers of ``image``; the ACI, open at offset 0."""
    cache = BlobCache(os.path.join(tmp_dir, BLOB_CACHE), ctx.log)
    work = tempfile.mkdtemp(dir=tmp_dir, prefix="docker-")
    limits = image_limits(ctx)
    try:
        with Squasher(limits, warn=ctx.warn) as squasher:
            for i, layer in enumerate(image.layers):
                what = f"layer {layer.digest}"
                ctx.log(f"docker: {what} ({i + 1}/{len(image.layers)})")
                blob = cache.open(layer.digest, layer.size,
                                  lambda headers, d=layer.digest: registry.open_blob(d, headers))
                path = os.path.join(work, f"layer-{i}.tar")
                with blob, open(path, "wb") as dest:
                    unpack(blob, dest, layer.diff_id, what, limits)
                squasher.add_layer(path, what)
            squasher.add_stdio_symlinks()
            manifest = image_manifest(ref, image, squasher.read_file("etc/passwd"), ctx.warn)
            aci = tempfile.TemporaryFile(dir=tmp_dir, prefix="docker-aci-")
            try:
                squasher.write(aci, manifest.to_json().encode())
            except BaseException:
                aci.close()
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cache.prune()
    aci.seek(0)
    return aci
