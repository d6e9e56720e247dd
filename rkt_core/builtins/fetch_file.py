"""Built-in plugin: fetch images from local files (paths and ``file://`` URLs).

The signature is ``--signature`` if given, else the file name with ``.aci`` replaced by
``.aci.asc``. A file that did not change since it was imported (same inode, size, mtime and ctime)
is not imported again.
"""

from __future__ import annotations

import os

from ..errors import NotFoundError, RktError
from ..hookspecs import hookimpl
from ..types import FetchedImage, Fetcher, FetchRequest, RemoteInfo

RKT_PLUGIN_API = 1


@hookimpl
def rkt_fetchers():
    """Declare the ``file`` fetcher."""
    return [Fetcher("file", ("file",), fetch_file, "images from local files and file:// URLs")]


def _path_of(ref: str) -> str:
    if ref.startswith("file://"):
        from urllib.parse import unquote, urlparse  # here: most images are given by name or path

        return unquote(urlparse(ref).path)
    return ref


def _open(path: str, what: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise RktError(f"{what} {path} is a directory") from None
    except OSError as e:
        raise RktError(f"open {path}: {e.strerror}") from None


def signature_path(path: str) -> str:
    """``x.aci`` -> ``x.aci.asc`` (rkt's rule: strip ``.aci``, add ``.aci.asc``)."""
    return path.removesuffix(".aci") + ".aci.asc"


def fetch_file(request: FetchRequest) -> FetchedImage:
    """Open the image file and its signature; reuse the store's copy if the file is unchanged."""
    path = os.path.abspath(_path_of(request.ref))
    aci = _open(path, "image")
    try:
        st = os.fstat(aci.fileno())
        etag = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        sig_path = request.signature or signature_path(path)
        try:
            signature = open(sig_path, "rb")
        except FileNotFoundError:
            if request.signature:
                raise NotFoundError(f"open {sig_path}: no such file or directory") from None
            signature = None
        remote = RemoteInfo(aci_url="file://" + os.path.realpath(path), etag=etag)
        stored = request.context.store.get_remote(remote.aci_url)
        store_key = stored[1] if stored is not None and stored[0].etag == etag else None
        return FetchedImage(aci=aci, signature=signature, store_key=store_key, remote=remote)
    except BaseException:
        aci.close()
        raise
