"""``rkt image``: list, remove, garbage-collect, extract, render, export, inspect and verify images."""

from __future__ import annotations

import fcntl
import os
import stat
import sys
import time

from ..crashpoints import crash_point
from ..errors import NotFoundError, RktError, UsageError, describe
from .declare import Choice, argument, group, option
from .main import get_context
from .output import full_time, human_size, humanize_time, print_json, print_table
from .params import DURATION

_FIELDS = {"id": "ID", "name": "NAME", "size": "SIZE", "importtime": "IMPORT TIME",
           "lastused": "LAST USED"}
_SORT_COLUMNS = {"name": "name", "importtime": "importtime", "lastused": "lastused", "size": "size"}


@group()
def image() -> None:
    """Operate on image(s) in the local store."""


def _option_list(value: str, allowed, flag: str) -> list[str]:
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    for item in items:
        if item not in allowed:
            raise UsageError(f'unknown {flag} "{item}": accepted values are {", ".join(allowed)}')
    return items


@image.command("list")
@option("--fields", default=",".join(_FIELDS), show_default=True,
        help="comma-separated list of fields to display")
@option("--sort", "sort_fields", default="importtime", show_default=True,
        help="sort the output according to the provided comma-separated list of fields")
@option("--order", type=Choice(["asc", "desc"]), default="asc", show_default=True,
        help="choose the sorting order if at least one sort field is provided")
@option("--no-legend/--legend", default=False, help="suppress a legend with the list")
@option("--full/--no-full", default=False, help="use long output format")
@option("--format", "fmt", type=Choice(["", "json", "json-pretty"]), default="",
        help="choose the output format: json or json-pretty")
def image_list(fields, sort_fields, order, no_legend, full, fmt) -> None:
    """List images in the local store."""
    fields = _option_list(fields, _FIELDS, "field")
    sort = tuple(_SORT_COLUMNS[f] for f in _option_list(sort_fields, _SORT_COLUMNS, "sort field"))
    images = get_context().store.list_images(sort, ascending=order == "asc")
    if fmt:
        print_json([{"id": i.key, "name": i.display_name, "import_time": int(i.import_time * 1e9),
                     "last_used_time": int(i.last_used * 1e9), "size": i.size + i.treestore_size}
                    for i in images], pretty=fmt == "json-pretty")
        return
    now = time.time()
    rows = []
    for i in images:
        total = i.size + i.treestore_size
        cells = {
            "id": i.key if full else i.key[:19],
            "name": i.display_name,
            "size": str(total) if full else human_size(total),
            "importtime": full_time(i.import_time) if full else humanize_time(i.import_time, now),
            "lastused": full_time(i.last_used) if full else humanize_time(i.last_used, now),
        }
        rows.append([cells[f] for f in fields])
    print_table([_FIELDS[f] for f in fields], rows, legend=not no_legend)


def remove_images(ctx, refs: list[str], gone_is_fine: bool = False) -> int:
    """Remove images by ID or name, printing rkt's messages; return how many failed.

    ``gone_is_fine``: the refs are keys just listed (``image gc``), and one that another command
    removed meanwhile is skipped, not a failure."""
    from ..pod.references import prepare_lock, referenced_tree_ids
    from ..store.treestore import TreeStore

    store = ctx.store
    failed = stale_count = 0
    keys: dict[str, str] = {}
    for ref in refs:
        try:
            key = store.resolve(ref)
        except NotFoundError as e:
            if not gone_is_fine:
                print(f"rkt: {e}", file=sys.stderr)
                failed += 1
            continue
        except RktError as e:
            print(f"rkt: {e}", file=sys.stderr)
            failed += 1
            continue
        info = store.find_info(key)
        if info is None:  # between the two reads
            if gone_is_fine:
                continue
            print(f'rkt: image "{key}" ("{ref}") was removed by another rkt command meanwhile',
                  file=sys.stderr)
            failed += 1
            continue
        keys[key] = info.name
    trees = TreeStore(store)
    removed = []
    # No pod may pick a tree or an image while we decide what is unused and remove it.
    with prepare_lock(ctx.data_dir).exclusive():
        in_use = referenced_tree_ids(ctx.data_dir)
        for key, name in keys.items():
            if store.find_info(key) is None:  # removers take this lock: none can come between
                if gone_is_fine:
                    continue
                print(f'rkt: image "{key}" ("{name}") was removed by another rkt command '
                      "meanwhile", file=sys.stderr)
                failed += 1
                continue
            try:
                # The trees rendered for this image first, unless a pod still uses them (rkt
                # left them): a failure here leaves the image whole.
                for tree in trees.ids():
                    if trees.image_of(tree) == key and tree not in in_use:
                        trees.remove(tree)
                stale = store.remove(key)
            except (RktError, OSError) as e:
                print(f'rkt: error removing aci for image "{key}" ("{name}"): {describe(e)}',
                      file=sys.stderr)
                failed += 1
                continue
            if stale:
                stale_count += 1
                print(f'rkt: some files cannot be removed for image "{key}" ("{name}"): '
                      + "; ".join(stale), file=sys.stderr)
            print(f'successfully removed aci for image: "{key}"', flush=True)
            removed.append(key)
    for key in removed:
        ctx.plugins.notify("rkt_image_removed", image_id=key)
    done = len(removed)
    if done:
        print(f"rkt: {done} image(s) successfully removed", file=sys.stderr)
    if stale_count:
        print(f"rkt: {stale_count} image(s) removed but left some stale files", file=sys.stderr)
    if failed:
        print(f"rkt: {failed} image(s) cannot be removed", file=sys.stderr)
    return failed + stale_count


@image.command("rm")
@argument("images", nargs=-1, required=True)
def image_rm(images) -> None:
    """Remove one or more images with the given IDs or names from the local store."""
    ctx = get_context()
    ctx.require_write_access("removing images")
    if remove_images(ctx, list(images)):
        raise RktError("error(s) found while removing images")


@image.command("gc")
@option("--grace-period", type=DURATION, default="24h", show_default=True,
        help="duration to wait since an image was last used before removing it")
def image_gc(grace_period: float) -> None:
    """Garbage collect local store: unused trees, images unused for a grace period, orphans,
    and temporary files (unfinished imports and downloads) older than the grace period."""
    from ..pod.references import prepare_lock, referenced_tree_ids, running_image_keys
    from ..store.treestore import TreeStore

    ctx = get_context()
    ctx.require_write_access("garbage-collecting images")
    store = ctx.store
    orphans = store.orphan_files()  # decided first: a damaged store stops gc before any change
    trees = TreeStore(store)
    with prepare_lock(ctx.data_dir).exclusive():
        in_use = referenced_tree_ids(ctx.data_dir)
        for tree in trees.ids():
            if tree not in in_use:
                trees.remove(tree)
                print(f'rkt: removed treestore "{tree}"', file=sys.stderr)
    running = running_image_keys(ctx.data_dir)
    now = time.time()
    expired = [i.key for i in store.list_images(("lastused",))
               if now - i.last_used > grace_period and i.key not in running]
    failed = remove_images(ctx, expired, gone_is_fine=True) if expired else 0
    for path in orphans:
        key = os.path.basename(path)
        with store.lock(key).exclusive():
            if store.find_info(key) is None and os.path.exists(path):
                os.unlink(path)
                ctx.log(f"image: removed orphan {path}")
    for path in store.remove_stale_temp_files(grace_period):
        ctx.log(f"image: removed stale temporary file {path}")
    if failed:
        raise RktError("error(s) found while removing images")


def _prepare_output_dir(target: str, overwrite: bool) -> str:
    target = os.path.abspath(target)
    if os.path.realpath(target) == "/":
        raise RktError("this would delete your root filesystem. Refusing.")
    if os.path.lexists(target):
        if not overwrite:
            raise RktError("output directory exists (try --overwrite)")
        mode = os.lstat(target).st_mode  # a directory, file or symlink (not what it points to)
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise RktError(f"{target} is {_kind(mode)}, not a directory: refusing to replace it")
    return target


def _write_tree(ctx, ref: str, target: str, rootfs_only: bool, overwrite: bool, with_deps: bool) -> None:
    from ..store.render import Layer, render_layers
    from ..store.treestore import dependency_list

    store = ctx.store
    target = _prepare_output_dir(target, overwrite)
    key = store.resolve(ref)
    if with_deps:
        layers = [Layer(store.blob_path(d.key), d.key, list(d.manifest.path_whitelist), d.level)
                  for d in dependency_list(store, key)]
    else:
        layers = [Layer(store.blob_path(key), key, [], 0)]
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    _remove_abandoned_work_dirs(parent)
    work, work_fd = _new_work_dir(parent)
    try:
        rootfs = work if rootfs_only else os.path.join(work, "rootfs")
        if not rootfs_only:
            os.mkdir(rootfs, 0o755)
            with open(os.path.join(work, "manifest"), "wb") as f:
                f.write(store.manifest_json(key))
        os.chmod(work, 0o755)
        render_layers(layers, rootfs, warn=ctx.warn)
        crash_point("extract.rendered")
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                import shutil

                shutil.rmtree(target)
            else:
                os.unlink(target)
        os.rename(work, target)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        os.close(work_fd)


WORK_PREFIX = ".rkt-extract-"


def _new_work_dir(parent: str) -> tuple[str, int]:
    """A new hidden directory beside the target to render into, and a descriptor holding its
    flock for as long as it is in use (made again if a cleanup took it before the lock)."""
    while True:  # named as write_atomic names its files: tempfile's import costs more
        work = os.path.join(parent, WORK_PREFIX + os.urandom(6).hex())
        try:
            os.mkdir(work, 0o700)
        except FileExistsError:
            continue
        fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return work, fd
        os.close(fd)


def _remove_abandoned_work_dirs(parent: str) -> None:
    """Remove the work directories a killed render or extract left in ``parent``: ours (same
    owner), and no longer locked by the process that made them."""
    for name in os.listdir(parent):
        if not name.startswith(WORK_PREFIX):
            continue
        path = os.path.join(parent, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone meanwhile, or not a directory
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a render in progress
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


@image.command("extract")
@argument("image_ref", metavar="IMAGE")
@argument("output_dir", metavar="DIR")
@option("--rootfs-only/--no-rootfs-only", default=False, help="extract rootfs only")
@option("--overwrite/--no-overwrite", default=False, help="overwrite output directory")
def image_extract(image_ref, output_dir, rootfs_only, overwrite) -> None:
    """Extract a stored image (without its dependencies) to a directory."""
    _write_tree(get_context(), image_ref, output_dir, rootfs_only, overwrite, with_deps=False)


@image.command("render")
@argument("image_ref", metavar="IMAGE")
@argument("output_dir", metavar="DIR")
@option("--rootfs-only/--no-rootfs-only", default=False, help="render rootfs only")
@option("--overwrite/--no-overwrite", default=False, help="overwrite output directory")
def image_render(image_ref, output_dir, rootfs_only, overwrite) -> None:
    """Render a stored image with its dependencies to a directory."""
    _write_tree(get_context(), image_ref, output_dir, rootfs_only, overwrite, with_deps=True)


@image.command("export")
@argument("image_ref", metavar="IMAGE")
@argument("output", metavar="OUTPUT_ACI_FILE")
@option("--overwrite/--no-overwrite", default=False, help="overwrite output ACI")
def image_export(image_ref, output, overwrite) -> None:
    """Export a stored image to an (uncompressed) ACI file.

    A regular file is replaced atomically (through a symlink, the file it points to); a named
    pipe or a character device (``/dev/stdout``) is written into, as rkt did; nothing else
    existing is overwritten.
    """
    store = get_context().store
    key = store.resolve(image_ref)
    try:
        existing = os.stat(output)
    except FileNotFoundError:
        existing = None
    if os.path.lexists(output) and not overwrite:
        raise RktError("output ACI file exists (try --overwrite)")
    with store.open_blob(key) as blob:
        if existing is None or stat.S_ISREG(existing.st_mode):
            _replace_file(blob, output)
        elif stat.S_ISFIFO(existing.st_mode) or stat.S_ISCHR(existing.st_mode):
            _write_into(blob, output)
        else:
            raise RktError(f"output ACI file {output} is {_kind(existing.st_mode)}")


def _replace_file(blob, output: str) -> None:
    """Write ``blob`` to a temp file beside ``output`` (resolved) and rename it over."""
    import tempfile

    from ..sys.fs import fsync_dir

    target = os.path.realpath(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".rkt-export-")
    except OSError as e:
        raise RktError(f"unable to open output ACI file {output}: {e.strerror}") from None
    try:
        try:
            _copy(blob, fd, output)
            os.fchmod(fd, 0o644)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(target))


def _write_into(blob, output: str) -> None:
    """Write ``blob`` into an existing named pipe or character device."""
    try:
        fd = os.open(output, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise RktError(f"unable to open output ACI file {output}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):  # replaced since it was looked at
            raise RktError(f"output ACI file {output} changed while it was opened")
        _copy(blob, fd, output)
    finally:
        os.close(fd)


def _copy(blob, fd: int, output: str) -> None:
    """Write all of ``blob`` to ``fd``; a write error names ``output``."""
    try:
        while chunk := blob.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    except OSError as e:
        raise RktError(f"error writing to output ACI file {output}: {e.strerror}") from None


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


@image.command("cat-manifest")
@argument("image_ref", metavar="IMAGE")
@option("--pretty-print/--no-pretty-print", default=True, help="apply indent to format the output")
def image_cat_manifest(image_ref, pretty_print) -> None:
    """Inspect and print the image manifest."""
    store = get_context().store
    print(store.manifest(store.resolve(image_ref)).to_json(pretty=pretty_print), flush=True)


@image.command("verify")
@argument("images", nargs=-1, required=True)
def image_verify(images) -> None:
    """Verify the stored blob and the rendered tree of image(s); rebuild a modified tree."""
    import hashlib

    from ..pod.references import prepare_lock
    from ..store.treestore import TreeStore, TreeVerificationError

    ctx = get_context()
    ctx.require_write_access("verifying images")
    store = ctx.store
    trees = TreeStore(store)
    for ref in images:
        key = store.resolve(ref)
        with store.open_blob(key) as blob:
            digest = "sha512-" + hashlib.file_digest(blob, "sha512").hexdigest()[:64]
        if digest != key:
            raise RktError(f'the stored image "{ref}" is corrupted: its content hashes to {digest}',
                           hint=f'remove it with "rkt image rm {key}" and fetch it again')
        tree = trees.id_for(key)
        if not trees.is_rendered(tree):
            print(f'image "{ref}" not rendered; no verification needed', flush=True)
            continue
        try:
            trees.verify(tree)
        except TreeVerificationError as e:
            print(f"tree cache verification failed for image {ref}: {e};  rebuilding...", flush=True)
            with prepare_lock(ctx.data_dir).exclusive():  # no pod picks the tree meanwhile
                trees.rebuild(key)
            continue
        print(f'successfully verified checksum for image: "{ref}" ("{key}")', flush=True)


@image.command("rebuild-db")
def image_rebuild_db() -> None:
    """Re-create the store database from the stored images (after it was damaged or lost)."""
    from ..store.rebuild import rebuild_database

    ctx = get_context()
    ctx.require_write_access("rebuilding the store database")
    result = rebuild_database(os.path.join(ctx.data_dir, "cas"))
    if result.backup:
        print(f"rkt: the previous database was moved to {result.backup}", file=sys.stderr)
    for key, name in result.recovered:
        print(f'recovered image "{name}" ({key})', flush=True)
    for problem in result.skipped:
        print(f"rkt: not recovered: {problem}", file=sys.stderr)
    print(f"rkt: the store database was rebuilt with {len(result.recovered)} image(s)",
          file=sys.stderr)
    if result.skipped:
        raise RktError(f"{len(result.skipped)} file(s) in the store could not be recovered as images",
                       hint="they were left as they are; fetch those images again")
