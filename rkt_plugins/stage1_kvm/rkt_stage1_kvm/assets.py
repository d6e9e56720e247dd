"""What the VM boots, made from the host's own files and cached: the kernel (Debian's
``/boot/vmlinuz-*``, decompressed once into an ELF that qemu starts directly, PVH, skipping
the firmware and the decompression under emulation) and the initramfs.

The initramfs holds busybox (``busybox-static``), the kernel's virtio, 9p and input drivers,
the host's Python interpreter with just the standard library modules the guest agent imports
(compiled, in ``python3X.zip``) and the agent itself (:mod:`.guest`). Both files are named by a
hash of their inputs (paths, sizes and times of the host files, the agent's source), so a
changed kernel, busybox, Python or agent makes new ones; older ones are removed.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import lzma
import os
import platform
import py_compile
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.fs import write_atomic

from . import cpio

FORMAT = "1"  # bump when the layout of the initramfs changes
PROBE_MARKER = "rkt-kvm-probe-ok"  # what the initramfs prints when booted with rkt.probe
BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")
DRIVERS = ("virtio_mmio", "virtio_net", "virtio_console", "9pnet_virtio", "9p",
           "button", "evdev")
STAGE2_TAG = "stage2"  # the 9p share of the pods' app roots
INIT = """#!/rkt/busybox sh
/rkt/busybox mount -t proc proc /proc
/rkt/busybox mount -t sysfs sysfs /sys
/rkt/busybox mount -t devtmpfs devtmpfs /dev
if /rkt/busybox grep -qw rkt.probe /proc/cmdline; then
    echo {marker}; /rkt/busybox poweroff -f
fi
read RKT_INIT_UPTIME _ < /proc/uptime
export RKT_INIT_UPTIME
for m in {modules}; do /rkt/busybox insmod /rkt/modules/$m.ko || exit 1; done
/rkt/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=client \\
    {tag} /opt/stage2 || exit 1
exec {python} -I -S -c 'from rkt_stage1_kvm.guest import main; main()'
"""
_COMPRESSED = ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gzip"),
               (b"\x28\xb5\x2f\xfd", "zstd"))


@dataclass(frozen=True)
class Assets:
    """The kernel and initramfs a pod's VM boots."""

    kernel: str
    initramfs: str


def default_kernel() -> tuple[str, str]:
    """The host's kernel image and its modules directory: the running kernel's if /boot has
    it, else the newest /boot/vmlinuz-* whose modules are installed."""
    versions = [platform.release()]
    found = [p[len("/boot/vmlinuz-"):] for p in glob.glob("/boot/vmlinuz-*")]
    versions += sorted(found, key=_version_key, reverse=True)
    for version in versions:
        image, modules = f"/boot/vmlinuz-{version}", f"/lib/modules/{version}"
        if os.path.isfile(image) and os.path.isfile(f"{modules}/modules.dep"):
            return image, modules
    raise RktError("the kvm flavor needs a Linux kernel in /boot with its modules (Debian "
                   "package linux-image-amd64)")


def _version_key(version: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", version)]


def _stat_key(path: str) -> list:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def ensure(cache_dir: str, kernel: str = "", modules: str = "") -> Assets:
    """The cached kernel and initramfs, built first if their inputs changed."""
    if not kernel:
        kernel, modules = default_kernel()
    elif not modules:
        modules = f"/lib/modules/{os.path.basename(kernel).removeprefix('vmlinuz-')}"
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    return Assets(_kernel(cache_dir, kernel), _initramfs(cache_dir, modules))


def _cached(cache_dir: str, prefix: str, key: object, build) -> str:
    digest = hashlib.sha256(json.dumps([FORMAT, key]).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{prefix}-{digest}")
    if not os.path.exists(path):
        write_atomic(path, build())
        for old in glob.glob(os.path.join(cache_dir, f"{prefix}-*")):
            if old != path and not old.endswith(".tmp"):
                try:
                    os.unlink(old)
                except FileNotFoundError:
                    pass
    return path


# --- the kernel -------------------------------------------------------------------------------


def _kernel(cache_dir: str, image: str) -> str:
    """An uncompressed ELF of ``image`` that boots through PVH, or ``image`` itself when it
    cannot be made."""
    try:
        return _cached(cache_dir, "vmlinux", _stat_key(image), lambda: extract_vmlinux(image))
    except (OSError, ValueError, lzma.LZMAError, zlib.error) as e:
        if isinstance(e, FileNotFoundError) and e.filename == image:
            raise RktError(f"kernel {image} does not exist") from None
        return image


def extract_vmlinux(image: str) -> bytes:
    """The ELF kernel inside a bzImage (xz, gzip or zstd), which must have a PVH entry."""
    with open(image, "rb") as f:
        data = f.read()
    for magic, kind in _COMPRESSED:
        start = data.find(magic)
        while start >= 0:
            try:
                elf = _decompress(data[start:], kind)
            except (lzma.LZMAError, zlib.error, subprocess.CalledProcessError, OSError):
                elf = b""
            if elf[:4] == b"\x7fELF":
                if not has_pvh_entry(elf):
                    raise ValueError("the kernel has no PVH entry")
                return elf
            start = data.find(magic, start + 1)
    raise ValueError(f"no compressed kernel found in {image}")


def _decompress(data: bytes, kind: str) -> bytes:
    if kind == "xz":
        return lzma.LZMADecompressor().decompress(data)
    if kind == "gzip":
        return zlib.decompressobj(31).decompress(data)
    zstd = shutil.which("zstd")
    if zstd is None:
        return b""
    done = subprocess.run([zstd, "-dc"], input=data, capture_output=True)
    return done.stdout


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit ELF kernel has the Xen note qemu boots it by (XEN_ELFNOTE_PHYS32_ENTRY);
    a truncated one has not."""
    try:
        return _pvh_note(elf)
    except struct.error:
        return False


def _pvh_note(elf: bytes) -> bool:
    if elf[4:5] != b"\x02":
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        header = phoff + i * phentsize
        if struct.unpack_from("<I", elf, header)[0] != 4:  # PT_NOTE
            continue
        offset, = struct.unpack_from("<Q", elf, header + 0x08)
        end = offset + struct.unpack_from("<Q", elf, header + 0x20)[0]
        while offset + 12 <= end:
            namesz, descsz, note = struct.unpack_from("<III", elf, offset)
            if elf[offset + 12:offset + 12 + namesz] == b"Xen\x00" and note == 18:
                return True
            offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


# --- the initramfs -------------------------------------------------------------------------------


def python_binary() -> str:
    """The interpreter the guest agent runs on: rkt's own (the base of a virtual env)."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def _agent_files() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, name) for name in ("__init__.py", "wire.py", "guest.py")]


def _busybox() -> str:
    for path in BUSYBOX:
        if os.path.isfile(path):
            return path
    raise RktError("the kvm flavor needs busybox (Debian package busybox-static)")


def driver_files(modules_dir: str) -> list[str]:
    """The kernel modules of :data:`DRIVERS` and their dependencies, in load order (relative
    to ``modules_dir``); built-in drivers need none."""
    deps: dict[str, list[str]] = {}
    with open(os.path.join(modules_dir, "modules.dep")) as f:
        for line in f:
            module, _, rest = line.partition(":")
            deps[module] = rest.split()
    by_name = {_module_name(m): m for m in deps}
    order: list[str] = []

    def visit(module: str) -> None:
        if module in order:
            return
        for dep in deps.get(module, []):
            visit(dep)
        order.append(module)

    for name in DRIVERS:
        if name in by_name:
            visit(by_name[name])
    return order


def _module_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".xz", ".zst", ".gz"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".ko").replace("-", "_")


def _initramfs(cache_dir: str, modules_dir: str) -> str:
    busybox, python = _busybox(), python_binary()
    drivers = driver_files(modules_dir)
    key = [_stat_key(busybox), _stat_key(python), modules_dir,
           [_stat_key(os.path.join(modules_dir, d)) for d in drivers],
           [open(f, "rb").read().decode() for f in _agent_files()]]
    return _cached(cache_dir, "initramfs", key,
                   lambda: build_initramfs(busybox, python, modules_dir, drivers))


def build_initramfs(busybox: str, python: str, modules_dir: str, drivers: list[str]) -> bytes:
    """The initramfs (an uncompressed cpio: unpacking is faster than decompressing under
    emulation)."""
    archive = cpio.Writer()
    for d in ("proc", "sys", "dev", "run", "tmp", "opt", "opt/stage2", "rkt", "rkt/modules",
              "usr", "usr/bin", "usr/lib"):
        archive.directory(d)
    archive.file("rkt/busybox", _read(busybox), 0o755)
    names = []
    for module in drivers:
        name = _module_name(module)
        archive.file(f"rkt/modules/{name}.ko", _module_bytes(os.path.join(modules_dir, module)))
        names.append(name)
    guest_python = _add_python(archive, python)
    archive.file("init", INIT.format(modules=" ".join(names), tag=STAGE2_TAG, python=guest_python,
                                     marker=PROBE_MARKER).encode(), 0o755)
    return archive.finish()


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _module_bytes(path: str) -> bytes:
    data = _read(path)
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return zlib.decompress(data, 31)
    if path.endswith(".zst"):
        return _decompress(data, "zstd")
    return data


_LIST_MODULES = """
import sys
sys.path.insert(0, sys.argv[1])
import rkt_stage1_kvm.guest
for name, module in sorted(sys.modules.items()):
    print(name, getattr(module, "__file__", None) or "")
"""


def _add_python(archive, python: str) -> str:
    """The interpreter, its libraries, the modules the agent imports (compiled, in the zip
    the interpreter looks for first) and the agent; returns the interpreter's path."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([python, "-I", "-S", "-c", _LIST_MODULES, package_parent],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RktError(f"cannot list the guest agent's modules with {python}: "
                       f"{done.stderr.strip()[-500:]}")
    stdlib = os.path.dirname(os.__file__)
    target = f"/usr/bin/python{version}"
    archive.file(target[1:], _read(python), 0o755)
    libraries = set(_libraries(python))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as zf, tempfile.TemporaryDirectory() as tmp:
        for line in done.stdout.splitlines():
            name, _, path = line.partition(" ")
            if path.endswith(".py"):
                relative = (os.path.relpath(path, package_parent) if name.startswith("rkt_stage1_kvm")
                            else os.path.relpath(path, stdlib))
                entry = relative[:-3] + ".pyc"
                if entry not in zf.namelist():
                    compiled = py_compile.compile(
                        path, cfile=os.path.join(tmp, "m.pyc"), doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
                    zf.write(compiled, entry)
            elif path.endswith(".so"):
                archive.file(f"usr/lib/python{version}/lib-dynload/{os.path.basename(path)}"
                             .lstrip("/"), _read(path), 0o755)
                libraries.update(_libraries(path))
    archive.file(f"usr/lib/python{version.replace('.', '')}.zip", packed.getvalue())
    # The interpreter finds its prefix by this landmark; imports come from the zip first.
    archive.file(f"usr/lib/python{version}/os.py", _read(os.__file__))
    for library in sorted(libraries):
        archive.file(library.lstrip("/"), _read(os.path.realpath(library)), 0o755)
    return target


def _libraries(binary: str) -> list[str]:
    """The shared libraries ``binary`` loads (absolute paths as the loader looks them up)."""
    done = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if done.returncode != 0:
        return []  # statically linked
    result = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            result.append(parts[2])
        elif parts and parts[0].startswith("/"):
            result.append(parts[0])
    return result
