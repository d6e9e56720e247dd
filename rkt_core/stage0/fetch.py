"""Getting images into the store: pull policy, fetcher choice, signature check, import,
dependencies.

The fetcher hands back an open file; the signature is checked on that file and the same file is
decompressed into the store, so the bytes verified are the bytes imported.
"""

from __future__ import annotations

from ..appc.reference import parse_app_string
from ..errors import ImageError, NotFoundError, PluginMissingError, RktError, SignatureError, UsageError
from ..store.imagestore import KEY_LEN, ImageRemovedError
from ..insecure import Insecure
from ..types import FetchedImage, FetchRequest, VerifyRequest
from .imageref import HASH, NAME, URL, classify
from ..records import dataclass

PULL_POLICIES = ("new", "update", "never")


@dataclass(frozen=True)
class FetchOptions:
    """How to get one image: pull policy (``new``, ``update``, ``never``) and ``--signature``.

    ``verify=False`` takes the image without its signature: only for stage1 images from the
    trusted directory rkt installs them in (see :mod:`rkt_core.stage0.stage1`).
    """

    pull_policy: str = "new"
    signature: str | None = None
    verify: bool = True


def pull_policy_from_flags(policy: str | None, store_only: bool, no_store: bool, default: str) -> str:
    """The pull policy from ``--pull-policy`` and the v0.14 aliases ``--store-only``/``--no-store``."""
    if store_only and no_store:
        raise UsageError("--store-only and --no-store are mutually exclusive")
    alias = "never" if store_only else "update" if no_store else None
    if policy and alias and policy != alias:
        raise UsageError("--pull-policy conflicts with --store-only/--no-store")
    chosen = policy or alias or default
    if chosen not in PULL_POLICIES:
        raise UsageError(f'invalid pull policy "{chosen}": valid values are {", ".join(PULL_POLICIES)}')
    return chosen


def fetch_image(ctx, text: str, options: FetchOptions = FetchOptions()) -> str:
    """Make sure the image ``text`` and its dependencies are in the store; return its full key.

    Dependencies are fetched recursively (see :class:`_Fetch`). If anything fails, the images
    this call imported are removed again: the store is as it was.
    """
    try:
        return _fetch_image(ctx, text, options)
    except ImageRemovedError as e:
        # "rkt image rm" or "image gc" took it between finding and reading it: once more.
        ctx.log(f"image: {e.message}; fetching it again")
        return _fetch_image(ctx, text, options)


def _fetch_image(ctx, text: str, options: FetchOptions) -> str:
    session = _Fetch(ctx, options)
    try:
        key = session.image(text)
        session.dependencies(key)
        return key
    except BaseException:
        session.rollback()
        raise


class _Fetch:
    """One ``fetch_image`` call: the images it imported and the dependencies it has walked.

    A dependency with an ``imageID`` is taken from the store when it is there; otherwise (and for
    dependencies given by name and labels) it is found by the pull policy like an image given by
    name: in the store first with ``new``, by discovery with ``update`` (falling back, with a
    warning, to one in the store when discovery or the download fails), only in the store with
    ``never``. A fetched dependency must have the ``imageID`` its parent names. An image that
    depends on itself (through any chain), chains deeper than ``MAX_DEPENDENCY_DEPTH`` and more
    than ``MAX_DEPENDENCY_IMAGES`` images are refused.
    """

    def __init__(self, ctx, options: FetchOptions):
        self.ctx, self.options = ctx, options
        self.imported: list[str] = []
        self.walked: set[str] = set()

    def image(self, text: str) -> str:
        store = self.ctx.store
        options = self.options
        ref = classify(text)
        if ref.kind == HASH:
            return store.resolve_key(text)
        if ref.kind == NAME and options.pull_policy in ("new", "never"):
            name, labels = parse_app_string(text)
            found = store.find_by_name(name, labels)
            if found is not None:
                return found.key
        if ref.kind == URL and options.pull_policy in ("new", "never"):
            remote = store.get_remote(text)
            if remote is not None:
                return remote[1]
        if options.pull_policy == "never" and ref.kind != "path":
            raise NotFoundError(f'image "{text}" is not in the store and the pull policy is "never"')
        labels = parse_app_string(text)[1] if ref.kind == NAME else {}
        return self._fetch(ref.scheme, text, options.signature, labels)

    def _fetch(self, scheme: str, text: str, signature: str | None, labels: dict[str, str]) -> str:
        ctx = self.ctx
        fetcher = ctx.plugins.fetcher_for(scheme)
        ctx.log(f'image: using fetcher "{fetcher.name}" for "{text}"')
        fetched = fetcher.fetch(FetchRequest(text, ctx, signature, labels))
        try:
            key, new = _import(ctx, text, fetched, self.options.verify)
        finally:
            for f in (fetched.aci, fetched.signature):
                if f is not None:
                    f.close()
        if new:
            self.imported.append(key)
        return key

    def dependencies(self, key: str, chain: tuple[str, ...] = ()) -> None:
        """Fetch the dependencies of the stored image ``key``, and theirs."""
        from ..store.treestore import MAX_DEPENDENCY_DEPTH, MAX_DEPENDENCY_IMAGES

        if key in self.walked:
            return
        store = self.ctx.store
        manifest = store.manifest(key)  # ImageRemovedError if image rm or gc took it
        chain = chain + (key,)
        for dep in manifest.dependencies:
            if len(chain) > MAX_DEPENDENCY_DEPTH:
                raise ImageError(f'dependencies of "{manifest.name}" nest deeper than '
                                 f"{MAX_DEPENDENCY_DEPTH} levels")
            dep_key = self._dependency(manifest.name, dep)
            if dep_key in chain:
                raise ImageError(f'dependency cycle: image "{dep.image_name}" depends on itself '
                                 f'through "{manifest.name}"')
            self.dependencies(dep_key, chain)
            if len(self.walked) > MAX_DEPENDENCY_IMAGES:
                raise ImageError(f"more than {MAX_DEPENDENCY_IMAGES} images in one dependency tree")
        self.walked.add(key)

    def _dependency(self, parent: str, dep) -> str:
        from ..remote.discovery import DiscoveryError
        from ..remote.httpclient import HttpError

        store = self.ctx.store
        what = f'dependency "{dep.image_name}" of "{parent}"'
        labels = dict(dep.labels)
        if dep.image_id:
            try:
                return store.resolve_key(dep.image_id)
            except NotFoundError:
                pass
        stored = None if dep.image_id else store.find_by_name(dep.image_name, labels)
        if stored is not None and self.options.pull_policy in ("new", "never"):
            return stored.key
        if self.options.pull_policy == "never":
            raise NotFoundError(f'{what} is not in the store and the pull policy is "never"')
        self.ctx.log(f"image: fetching {what}")
        try:
            key = self._fetch("appc", dep.image_name, None, labels)
        except (DiscoveryError, HttpError) as e:
            if stored is None:
                raise type(e)(f"{what}: {e.message}", hint=e.hint) from e
            # Only a newer one was looked for: the stored dependency does (rkt: "Trying to find
            # image in the store").
            self.ctx.warn(f"warning: {what}: {e.message}; using the one in the store "
                          f"({stored.key[:19]})")
            return stored.key
        except RktError as e:
            raise type(e)(f"{what}: {e.message}", hint=e.hint) from e
        if dep.image_id and key != dep.image_id[:KEY_LEN].lower():
            raise ImageError(f'{what}: the fetched image is {key}, but the manifest asks for '
                             f"{dep.image_id}")
        return key

    def rollback(self) -> None:
        """Remove the images this call imported (after a failure)."""
        for key in reversed(self.imported):
            try:
                self.ctx.store.remove(key)
            except RktError as e:
                self.ctx.warn(f"could not remove image {key} after the failed fetch: {e}")
        self.imported.clear()


def _import(ctx, text: str, fetched: FetchedImage, verify: bool = True) -> tuple[str, bool]:
    """Verify (unless not ``verify``) and import what a fetcher returned: (key, whether it is
    new in the store)."""
    store = ctx.store
    if fetched.store_key is not None:
        if fetched.aci is not None and verify and _signature_required(ctx, fetched):
            verify_signature(ctx, text, fetched, store.manifest(fetched.store_key).name)
        return fetched.store_key, False
    if fetched.aci is None:
        raise ImageError(f'fetcher returned nothing for "{text}"')
    from ..store.aci import image_limits  # tarfile and the decompressors: only to import

    fetched.aci.seek(0)
    try:
        with store.staging(fetched.aci, image_limits(ctx.config)) as staged:
            _check_expected(fetched, staged.manifest)
            if verify and _signature_required(ctx, fetched):
                verify_signature(ctx, text, fetched, staged.manifest.name)
            new = store.find_info(staged.key) is None
            info = store.commit(staged, remote=fetched.remote,
                                latest=bool(fetched.expected_name) and "version" not in fetched.expected_labels)
    except ImageError as e:  # the archive or its manifest: say which image
        raise type(e)(f'image "{text}": {e.message}', hint=e.hint) from None
    ctx.plugins.notify("rkt_image_fetched", image=info)
    return info.key, new


def _signature_required(ctx, fetched: FetchedImage) -> bool:
    if ctx.insecure_for(Insecure.IMAGE):
        ctx.warn_once("warning: image signature verification is disabled (--insecure-options=image)")
        return False
    if not fetched.signable:
        raise SignatureError("this kind of image carries no signature that rkt can verify",
                             hint="run it with --insecure-options=image if you trust its source")
    return True


def verify_signature(ctx, text: str, fetched: FetchedImage, name: str) -> None:
    """Check the detached signature of a fetched image against the keys trusted for ``name``."""
    if fetched.signature is None:
        raise SignatureError(f'image "{text}" has no signature',
                             hint="provide one with --signature, or skip verification with "
                                  "--insecure-options=image")
    head = fetched.signature.read(64)
    fetched.signature.seek(0)
    for verifier in ctx.plugins.verifiers():
        if verifier.accepts(head):
            fetched.aci.seek(0)
            signer = verifier.verify(VerifyRequest(fetched.aci, fetched.signature, name, ctx))
            ctx.log(f'image: signature of "{text}" verified: key {signer.fingerprint} '
                    f'{", ".join(signer.uids)}')
            return
    raise PluginMissingError("no installed signature verifier accepts this signature",
                             hint="pip install rkt-core (the openpgp verifier is built in)")


def _check_expected(fetched: FetchedImage, manifest) -> None:
    if fetched.expected_name and manifest.name != fetched.expected_name:
        raise ImageError(f'the manifest names "{manifest.name}", expected "{fetched.expected_name}"')
    for label, value in fetched.expected_labels.items():
        if manifest.labels.get(label) != value:
            raise ImageError(f"label {label}={manifest.labels.get(label)!r} does not match the "
                             f"requested {label}={value}")
