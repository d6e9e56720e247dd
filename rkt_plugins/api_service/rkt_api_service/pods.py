"""Pods as the v1alpha API shows them (``Pod``), and ListPods' filters, as rkt defined them.

What a pod's manifest says never changes once it is prepared, so it is read once per pod (and
again only if the ``pod`` file's mtime changes); state, pid, times, networks, cgroup and exit
statuses are read on every request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from rkt_core.plugin_api import APPC_VERSION

from . import api_pb2 as pb

STATES = {
    "embryo": pb.POD_STATE_EMBRYO,
    "preparing": pb.POD_STATE_PREPARING,
    "aborted prepare": pb.POD_STATE_ABORTED_PREPARE,
    "prepared": pb.POD_STATE_PREPARED,
    "running": pb.POD_STATE_RUNNING,
    "exited": pb.POD_STATE_EXITED,
    "deleting": pb.POD_STATE_DELETING,
    "exited deleting": pb.POD_STATE_DELETING,
    "exited garbage": pb.POD_STATE_GARBAGE,
    "garbage": pb.POD_STATE_GARBAGE,
}
AFTER_RUN = {"exited", "exited garbage", "exited deleting"}
WITH_NETWORKS = {"running", "exited"}


@dataclass(frozen=True)
class StaticApp:
    """What the pod manifest and the app's image manifest say of an app."""

    name: str
    image_id: str
    image_name: str
    image_version: str
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StaticPod:
    """What a pod's manifest says: its apps and annotations, and the manifest itself."""

    mtime_ns: int
    manifest: bytes
    annotations: tuple[tuple[str, str], ...]
    apps: tuple[StaticApp, ...]


def _pairs(items) -> tuple[tuple[str, str], ...]:
    return tuple((str(i.get("name", "")), str(i.get("value", ""))) for i in items or ()
                 if isinstance(i, dict))


def read_static(pod, mtime_ns: int) -> StaticPod | None:
    """What the pod's manifest (last modified at ``mtime_ns``) says; None while it has none."""
    data = pod.manifest_json()
    if data is None:
        return None
    manifest = json.loads(data)
    apps = []
    for ra in manifest.get("apps") or ():
        name = str(ra.get("name", ""))
        image = ra.get("image") or {}
        image_name, version = str(image.get("name", "")), "latest"
        text = pod.read_text("appsinfo", name, "manifest") if name else None
        if text:
            image_manifest = json.loads(text)
            image_name = str(image_manifest.get("name", image_name))
            version = dict(_pairs(image_manifest.get("labels"))).get("version", version)
        apps.append(StaticApp(name, str(image.get("id", "")), image_name, version,
                              _pairs(ra.get("annotations"))))
    return StaticPod(mtime_ns, data, _pairs(manifest.get("annotations")), tuple(apps))


class PodCache:
    """The static part of each pod, read once."""

    def __init__(self):
        self._pods: dict[str, StaticPod] = {}

    def static(self, pod) -> StaticPod | None:
        """The pod's static part, from the cache if its manifest did not change."""
        cached = self._pods.get(pod.uuid)
        try:
            mtime_ns = os.stat(pod.file("pod")).st_mtime_ns
        except FileNotFoundError:
            return None
        if cached is None or cached.mtime_ns != mtime_ns:
            cached = read_static(pod, mtime_ns)
            if cached is None:
                return None
            self._pods[pod.uuid] = cached
        return cached

    def forget_others(self, uuids: set[str]) -> None:
        """Drop the pods that are gone."""
        for uuid in set(self._pods) - uuids:
            del self._pods[uuid]


def _key_values(pairs) -> list[pb.KeyValue]:
    return [pb.KeyValue(Key=k, value=v) for k, v in pairs]


def to_message(pod, static: StaticPod | None, detail: bool) -> pb.Pod:
    """The API's view of a pod (an open ``PodView``)."""
    state = pod.state
    message = pb.Pod(id=pod.uuid, state=STATES.get(state, pb.POD_STATE_UNDEFINED), pid=-1)
    if state == "embryo":
        return message
    if pod.pid is not None:
        message.pid = pod.pid
    for field, when in (("created_at", pod.created_at), ("started_at", pod.started_at),
                        ("gc_marked_at", pod.gc_marked_at)):
        if when:
            setattr(message, field, int(when * 1e9))
    if state in WITH_NETWORKS:
        for net in pod.networks():
            ip = str(net.get("ip", ""))
            message.networks.append(pb.Network(name=str(net.get("netName", "")),
                                               **{"ipv6" if ":" in ip else "ipv4": ip}))
    if state == "running":
        message.cgroup = pod.cgroup()
    if static is None:
        return message
    if detail:
        message.manifest = static.manifest
    message.annotations.extend(_key_values(static.annotations))
    codes = pod.app_exit_codes() if state == "running" or state in AFTER_RUN else {}
    for app in static.apps:
        image = pb.Image(id=app.image_id, name=app.image_name, version=app.image_version,
                         base_format=pb.ImageFormat(type=pb.IMAGE_TYPE_APPC,
                                                    version=APPC_VERSION))
        message.apps.append(pb.App(
            name=app.name, image=image, annotations=_key_values(app.annotations),
            state=(pb.APP_STATE_RUNNING if state == "running" else
                   pb.APP_STATE_EXITED if state in AFTER_RUN else pb.APP_STATE_UNDEFINED),
            exit_code=codes.get(app.name, -1)))
    return message


def _has_all(pairs, required) -> bool:
    have = {(kv.Key, kv.value) for kv in pairs}
    return all((kv.Key, kv.value) in have for kv in required)


def matches(pod: pb.Pod, f: pb.PodFilter) -> bool:
    """Whether a pod passes one filter (every condition it sets)."""
    apps = {a.name for a in pod.apps}
    images = {a.image.id for a in pod.apps}
    networks = {n.name for n in pod.networks}
    return ((not f.ids or pod.id in f.ids)
            and (not f.states or pod.state in f.states)
            and all(name in apps for name in f.app_names)
            and all(image in images for image in f.image_ids)
            and all(name in networks for name in f.network_names)
            and _has_all(pod.annotations, f.annotations)
            and (not f.cgroups or pod.cgroup in f.cgroups)
            and (not f.pod_sub_cgroups or (pod.cgroup != "" and any(
                c.startswith(pod.cgroup) for c in f.pod_sub_cgroups))))


def matches_any(pod: pb.Pod, filters) -> bool:
    """Whether a pod passes any of the filters (or there are none)."""
    return not filters or any(matches(pod, f) for f in filters)
