"""The gRPC service ``v1alpha.PublicAPI``: pods, images, events and logs, read-only.

Every method is registered by hand on a generic handler with the messages of ``api_pb2``
(generated from ``api.proto``), so no code generated for a particular grpcio version is needed.
Errors of rkt become gRPC statuses (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION);
anything unexpected is INTERNAL and reported on stderr, and the service goes on. Requests
larger than :data:`MAX_REQUEST_BYTES` are refused by gRPC itself (RESOURCE_EXHAUSTED), and at
most :data:`MAX_STREAMS` streams (ListenEvents, GetLogs) are open at once, so that they never
take every worker from the other calls.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import traceback
from concurrent import futures

import grpc

from rkt_core.plugin_api import (APPC_VERSION, NotFoundError, RktError, UsageError,
                                 __version__)
from rkt_core.plugin_api import images as store_images
from rkt_core.plugin_api import pods as store_pods
from rkt_core.plugin_api.cli import global_flags

from . import api_pb2 as pb
from . import events as event_log
from . import images, pods

API_VERSION = "1.0.0-alpha"
SERVICE = "v1alpha.PublicAPI"
MAX_REQUEST_BYTES = 1 << 20
WORKERS = 16
MAX_STREAMS = WORKERS - 4
MAX_BATCH_LINES = 1000  # log lines per GetLogs response
WAIT_SECONDS = 1.0  # how often an idle stream checks that its client is still there


def _status(error: Exception) -> grpc.StatusCode:
    if isinstance(error, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, UsageError):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.FAILED_PRECONDITION


def _unary(method):
    """Errors of a unary method as gRPC statuses."""
    @functools.wraps(method)
    def call(self, request, context):
        try:
            return method(self, request, context)
        except RktError as e:
            context.abort(_status(e), e.message)
        except Exception as e:  # noqa: BLE001 - one bad request never stops the service
            traceback.print_exc(file=sys.stderr)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    return call


def _stream(method):
    """A streaming method limited to :data:`MAX_STREAMS` at once, errors as gRPC statuses."""
    @functools.wraps(method)
    def call(self, request, context):
        if not self.streams.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"too many open streams (at most {MAX_STREAMS})")
        try:
            yield from method(self, request, context)
        except RktError as e:
            context.abort(_status(e), e.message)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        finally:
            self.streams.release()
    return call


class PublicAPI:
    """The methods of ``v1alpha.PublicAPI``."""

    def __init__(self, ctx, events: event_log.EventLog):
        self.ctx = ctx
        self.events = events
        self.flags = global_flags(ctx)
        self.pod_cache = pods.PodCache()
        self.image_cache = images.ImageCache(ctx)
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)

    @_unary
    def GetInfo(self, request, context):  # noqa: N802 - the RPC's name
        f = self.flags
        return pb.GetInfoResponse(info=pb.Info(
            rkt_version=__version__, appc_version=APPC_VERSION, api_version=API_VERSION,
            global_flags=pb.GlobalFlags(
                dir=f.dir, system_config_dir=f.system_config, local_config_dir=f.local_config,
                user_config_dir=f.user_config, insecure_flags=f.insecure_options,
                trust_keys_from_https=f.trust_keys_from_https)))

    @_unary
    def ListPods(self, request, context):  # noqa: N802
        found, seen = [], set()
        for pod in store_pods.list_pods(self.ctx):
            seen.add(pod.uuid)
            try:
                message = pods.to_message(pod, self.pod_cache.static(pod), request.detail)
            except (OSError, ValueError) as e:
                self.ctx.warn(f"api-service: unable to read pod {pod.uuid}: {e}")
                continue
            if pods.matches_any(message, request.filters):
                found.append(message)
        self.pod_cache.forget_others(seen)
        return pb.ListPodsResponse(pods=found)

    @_unary
    def InspectPod(self, request, context):  # noqa: N802
        if not request.id:
            raise UsageError("no pod id given")
        with store_pods.open_pod(self.ctx, request.id) as pod:
            return pb.InspectPodResponse(pod=pods.to_message(pod, self.pod_cache.static(pod),
                                                             detail=True))

    @_unary
    def ListImages(self, request, context):  # noqa: N802
        found, seen = [], set()
        for info in store_images.list_images(self.ctx):
            seen.add(info.key)
            try:
                message = images.to_message(info, self.image_cache.manifest(info.key),
                                            request.detail)
            except (OSError, ValueError, RktError) as e:
                self.ctx.warn(f"api-service: unable to read image {info.key}: {e}")
                continue
            if images.matches_any(message, request.filters):
                found.append(message)
        self.image_cache.forget_others(seen)
        return pb.ListImagesResponse(images=found)

    @_unary
    def InspectImage(self, request, context):  # noqa: N802
        if not request.id.startswith("sha512-"):
            raise UsageError(f'"{request.id}" is not an image id (sha512-...)')
        info = store_images.find_image(self.ctx, request.id)
        return pb.InspectImageResponse(image=images.to_message(
            info, self.image_cache.manifest(info.key), detail=True))

    @_stream
    def ListenEvents(self, request, context):  # noqa: N802
        f = request.filter
        try:
            types = {pb.EventType.Name(t).removeprefix("EVENT_TYPE_") for t in f.types}
        except ValueError:
            raise UsageError(f"unknown event type in {list(f.types)}") from None
        ids, names = set(f.ids), set(f.names)
        seq = 0 if f.since_time else self.events.after(-1, 0)[1]
        yield pb.ListenEventsResponse()  # the stream is open: later events will come
        while context.is_active() and not self.events.stopped:
            now = time.time()
            if f.until_time and now > f.until_time:
                return
            wait = min(WAIT_SECONDS, f.until_time - now) if f.until_time else WAIT_SECONDS
            new, seq = self.events.after(seq, max(wait, 0))
            batch = [_event(e) for e in new
                     if event_log.matches(e, types, ids, names, f.since_time, f.until_time)]
            if batch:
                yield pb.ListenEventsResponse(events=batch)

    @_stream
    def GetLogs(self, request, context):  # noqa: N802
        if not request.pod_id:
            raise UsageError("no pod id given")
        if request.lines < 0:
            raise UsageError(f"lines must not be negative (got {request.lines})")
        with store_pods.open_pod(self.ctx, request.pod_id) as pod:
            found = store_pods.pod_logs(self.ctx, pod, request.app_name, request.lines,
                                        request.follow, request.since_time or None,
                                        request.until_time or None)
            try:
                batch = []
                for line in found:
                    if line is not None:
                        batch.append(line.formatted())
                    if batch and (request.follow or len(batch) >= MAX_BATCH_LINES):
                        yield pb.GetLogsResponse(lines=batch)
                        batch = []
                    if not context.is_active():
                        return
                if batch or not request.follow:
                    yield pb.GetLogsResponse(lines=batch)
            finally:
                close = getattr(found, "close", None)
                if close is not None:
                    close()


def _event(event) -> pb.Event:
    return pb.Event(type=pb.EventType.Value("EVENT_TYPE_" + event.type), id=event.id,
                    time=int(event.time), data=[pb.KeyValue(Key=k, value=v)
                                                for k, v in event.data],
                    **{"from": event.name})


def handler(api: PublicAPI) -> grpc.GenericRpcHandler:
    """The gRPC handler of the service's methods."""
    unary = {"GetInfo": (pb.GetInfoRequest, pb.GetInfoResponse),
             "ListPods": (pb.ListPodsRequest, pb.ListPodsResponse),
             "InspectPod": (pb.InspectPodRequest, pb.InspectPodResponse),
             "ListImages": (pb.ListImagesRequest, pb.ListImagesResponse),
             "InspectImage": (pb.InspectImageRequest, pb.InspectImageResponse)}
    streams = {"ListenEvents": (pb.ListenEventsRequest, pb.ListenEventsResponse),
               "GetLogs": (pb.GetLogsRequest, pb.GetLogsResponse)}
    methods = {}
    for name, (request, response) in unary.items():
        methods[name] = grpc.unary_unary_rpc_method_handler(
            getattr(api, name), request_deserializer=request.FromString,
            response_serializer=response.SerializeToString)
    for name, (request, response) in streams.items():
        methods[name] = grpc.unary_stream_rpc_method_handler(
            getattr(api, name), request_deserializer=request.FromString,
            response_serializer=response.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def make_server(api: PublicAPI) -> grpc.Server:
    """A gRPC server of the service (not started, no port yet)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="api"),
                         options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                                  ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler(api),))
    return server
