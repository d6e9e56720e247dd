"""Fuzzing the archive checks and the extractor with hypothesis: tar archives drawn entry by
entry (names, link targets, types, modes, sizes, cut or flipped bytes) go through what a fetch
and a render do (:func:`stage_aci`, then :func:`render_layers` of the image on a dependency),
and, unchecked, straight into the :class:`ScopedExtractor`. Whatever the archive, the only
error is an ``ImageError`` with a message, and nothing outside the target changes: a victim
directory beside it stays byte-identical and no file in the target shares its inodes.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from hostile import Victim, manifest_bytes
from hypothesis import given
from hypothesis import strategies as st

from rkt_core.errors import ImageError
from rkt_core.store.aci import stage_aci
from rkt_core.store.extract import ScopedExtractor
from rkt_core.store.render import Layer, render_layers

VICTIM = "{victim}"  # replaced by the victim directory's absolute path


def mostly(usual, rare):
    """Nine times in ten ``usual``, else ``rare``."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 9 else usual)


SAFE = st.lists(st.sampled_from(["a", "b", "bin", "victim", "precious", "sub", "x" * 300,
                                 "\u00e9", "a\\b", " "]), min_size=1, max_size=4).map("/".join)
HOSTILE = st.lists(st.sampled_from(["a", "b", "..", ".", "", "rootfs", "victim", "precious"]),
                   min_size=1, max_size=4).map("/".join)
NAME = mostly(SAFE.map(lambda path: "rootfs/" + path), st.one_of(
    HOSTILE, HOSTILE.map(lambda path: "rootfs/" + path), HOSTILE.map(lambda path: "/" + path),
    SAFE.map(lambda path: "./rootfs//" + path),
    st.sampled_from(["rootfs", "rootfs/", ".", "manifest", "rootfs/../../victim/precious",
                     VICTIM + "/precious"])))
LINK_TARGET = st.one_of(
    SAFE, SAFE.map(lambda path: "/" + path), SAFE.map(lambda path: "rootfs/" + path),
    HOSTILE, HOSTILE.map(lambda path: "/" + path), HOSTILE.map(lambda path: "rootfs/" + path),
    st.sampled_from(["/", "..", "../..", "../../victim", "/../victim/precious", VICTIM,
                     VICTIM + "/precious", "rootfs/a", "manifest", ""]))
TYPE = mostly(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                               tarfile.LNKTYPE]),
              st.sampled_from([tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                               tarfile.CONTTYPE, b"Z", b"7"]))
ENTRY = st.fixed_dictionaries({
    "type": TYPE, "name": NAME, "linkname": LINK_TARGET,
    "data": st.binary(max_size=64) | st.sampled_from([b"", b"x" * 5000]),
    "mode": st.sampled_from([0o644, 0o755, 0o4755, 0o000, 0o7777, 0o1000]),
    "uid": st.sampled_from([0, 1000, 65534, 2**21]),
    "device": st.sampled_from([(1, 3), (1, 5), (8, 0), (0, 0), (1, 1)]),
})
# What is done to the archive's bytes afterwards: nothing, cut at a fraction, or a byte flipped.
DAMAGE = mostly(st.none(), st.tuples(st.just("cut"), st.floats(0, 1))
                | st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)))
IMAGE = st.fixed_dictionaries({"entries": st.lists(ENTRY, max_size=10),
                               "rootfs": mostly(st.just(True), st.just(False)),
                               "manifest": mostly(st.just(True), st.just(False)),
                               "damage": DAMAGE})


def build_tar(entries: list[dict], victim: str, rootfs: bool, manifest: bool) -> bytes:
    """The archive of ``entries`` (``{victim}`` replaced), with a rootfs directory first and a
    manifest last if asked."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if rootfs:
            tar.addfile(_info("rootfs", tarfile.DIRTYPE, mode=0o755))
        for entry in entries:
            info = _info(entry["name"].replace(VICTIM, victim), entry["type"], mode=entry["mode"],
                         linkname=entry["linkname"].replace(VICTIM, victim), uid=entry["uid"],
                         gid=entry["uid"])
            info.devmajor, info.devminor = entry["device"]
            if info.type in tarfile.REGULAR_TYPES:
                info.size = len(entry["data"])
                tar.addfile(info, io.BytesIO(entry["data"]))
            else:
                tar.addfile(info)
        if manifest:
            data = manifest_bytes("example.com/fuzz")
            info = _info("manifest", tarfile.REGTYPE, mode=0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, type: bytes, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mtime = type, 1_500_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def damaged(data: bytes, damage) -> bytes:
    if damage is None:
        return data
    offset = int(damage[1] * (len(data) - 1))
    if damage[0] == "cut":
        return data[:offset]
    return data[:offset] + bytes([data[offset] ^ damage[2]]) + data[offset + 1:]


class Sandbox:
    """A temporary directory with the target ``root`` and a victim beside it."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="rkt-fuzz-"))
        self.root = self.path / "root"
        self.root.mkdir()
        self.victim = Victim(self.path / "victim")
        self.inodes = {(st.st_dev, st.st_ino) for st in (
            os.lstat(self.victim.path / name) for name in ("", "precious", "sub", "sub/file"))}

    def check(self) -> None:
        """Nothing outside the target changed, nothing inside it is the victim."""
        assert self.victim.changes() == {}, "a write outside the target"
        assert sorted(os.listdir(self.path)) == ["layers", "root", "victim"]
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                assert (st.st_dev, st.st_ino) not in self.inodes, f"{name} is the victim"

    def remove(self) -> None:
        shutil.rmtree(self.path)


def refused_or_done(action) -> bool:
    """Run ``action``; True if it completed, False if it raised an ImageError with a message."""
    try:
        action()
    except ImageError as error:
        assert str(error).strip(), repr(error)
        return False
    return True


@given(st.lists(IMAGE, min_size=1, max_size=2))
def test_fetched_and_rendered_archives_stay_inside_the_target(figures, images):
    figures.add("fuzzing: archives")
    sandbox = Sandbox()
    try:
        layers_dir = sandbox.path / "layers"
        layers_dir.mkdir()
        layers = []
        for level, image in enumerate(images):
            data = damaged(build_tar(image["entries"], str(sandbox.victim.path), image["rootfs"],
                                     image["manifest"]), image["damage"])
            staged_path = layers_dir / f"layer-{level}"
            with open(staged_path, "w+b") as dest:
                staged = []
                if refused_or_done(lambda: staged.append(stage_aci(io.BytesIO(data), dest))):
                    layers.append(Layer(str(staged_path), staged[0].key, level=level))
        if layers:
            refused_or_done(lambda: render_layers(layers, str(sandbox.root)))
        sandbox.check()
    finally:
        sandbox.remove()


@given(st.lists(ENTRY, max_size=10))
def test_the_extractor_alone_stays_inside_the_target(figures, entries):
    """Archives the checks of a fetch would refuse, given to the extractor directly."""
    figures.add("fuzzing: archives")
    sandbox = Sandbox()
    (sandbox.path / "layers").mkdir()
    try:
        data = build_tar(entries, str(sandbox.victim.path), rootfs=False, manifest=False)

        def extract():
            with ScopedExtractor(str(sandbox.root)) as extractor, \
                    tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar:
                    refused_or_done(lambda: extractor.extract_member(tar, member))
                extractor.finish()

        refused_or_done(extract)
        sandbox.check()
    finally:
        sandbox.remove()
