"""The service's events: the journal's, and those it notices in the pod directories.

Two sources, because neither alone sees everything:

- the journal (:mod:`.journal`), written by the observers of every ``rkt`` process, has the
  exact time and details (a pod's exit status, the image's name), and images change only through
  ``rkt`` commands, so their events come from it alone;
- but a pod can change state with no ``rkt`` process to tell: a fly pod whose ``rkt run`` was
  killed exits when its app does, a ``rkt prepare`` killed half-way leaves an aborted prepare,
  and an install may have the plugin disabled. A pod's state is its directory and its lock
  (rkt's own rule), so the service lists the pod directories every :data:`POLL_SECONDS` and
  derives the events of every change it sees.

App events come from both sources too, where they can be known: an app exited once its flavor
recorded its exit status (``stage1/rootfs/rkt/status/<app>``, while the pod runs or when it
exits); an app started when its pod did, for pods of one app (no flavor records when each app of
several starts). Their ``id`` is the pod's uuid, their ``from`` the app's name.

Each pod goes through each event once at most (each app of a pod once through each app event),
so those events are kept once per (type, pod, app): whichever source reports one first wins;
the journal is read first, so its richer version wins whenever it was written before the change
could be seen. Probing a pod's lock never disturbs
rkt: only pods in ``prepare/`` and ``run/`` are probed (where the lock decides the state), and
once unlocked there they never lock again, so they are not probed any more.
"""

from __future__ import annotations

import collections
import threading
import time

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api import images as store_images
from rkt_core.plugin_api import pods as store_pods

from .journal import Event, Reader

POLL_SECONDS = 0.5
KEPT = 10000  # events kept in memory for ListenEvents' since_time
PROBED_DIRS = ("prepare", "run")
FINAL_STATES = {"aborted prepare", "exited"}
EXITED_STATES = {"exited", "exited garbage", "exited deleting"}
POD_EVENTS = {"POD_PREPARED", "POD_PREPARE_ABORTED", "POD_STARTED", "POD_EXITED",
              "POD_GARBAGE_COLLECTED"}
APP_EVENTS = {"APP_STARTED", "APP_EXITED"}


def derived_events(old: str | None, new: str | None) -> list[str]:
    """The events a pod's change of state from ``old`` to ``new`` implies (None: not there)."""
    if new is None:
        return ["POD_GARBAGE_COLLECTED"] if old is not None else []
    if new == old:
        return []
    if new == "prepared":
        return ["POD_PREPARED"]
    if new == "aborted prepare":
        return ["POD_PREPARE_ABORTED"]
    if new == "running":
        return ["POD_STARTED"]
    if new in EXITED_STATES:
        if old in EXITED_STATES:
            return []
        return (["POD_STARTED"] if old != "running" else []) + ["POD_EXITED"]
    return []


def app_events(uuid: str, apps: list[str], exit_codes: dict[str, int],
               when: float) -> list[Event]:
    """The app events known of a pod that started: ``APP_STARTED`` of its only app (of a pod
    of several, when each app started is not known) and ``APP_EXITED`` of every app with an exit
    status in ``exit_codes``."""
    found = [Event("APP_STARTED", uuid, apps[0], when)] if len(apps) == 1 else []
    found += [Event("APP_EXITED", uuid, app, when, (("exit-code", str(exit_codes[app])),))
              for app in apps if app in exit_codes]
    return found


class EventLog:
    """Every event since the service started (and the journal's history), in order, each with
    a sequence number; listeners wait for new ones."""

    def __init__(self, ctx, poll_seconds: float = POLL_SECONDS):
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.started_at = time.time()
        self._events: collections.deque[tuple[int, Event]] = collections.deque(maxlen=KEPT)
        self._next = 0
        self._seen: set[tuple[str, str, str]] = set()
        self._changed = threading.Condition()
        self._journal = Reader(ctx.data_dir)
        self._states: dict[str, tuple[str, str]] = {}  # uuid -> (state dir, state)
        self._apps: dict[str, list[str]] = {}  # uuid -> its apps' names, once looked at
        self._image_names = {i.key: i.name for i in store_images.list_images(ctx)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        """Read the journal's history and the pods' current states, then follow both."""
        self._add(self._journal.history())
        self._states = self._pod_states()
        for uuid, (_, state) in self._states.items():  # what happened before is not news
            if state == "running":
                self._seen.update(_once(e) for e in self._app_events(uuid, 0.0))
        self._thread.start()

    def stop(self) -> None:
        """Stop following (listeners wake up)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._journal.close()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def after(self, seq: int, timeout: float) -> tuple[list[Event], int]:
        """The events numbered ``seq`` and later (waiting up to ``timeout`` seconds for one),
        and the number to ask for next. A ``seq`` of -1 means "from now on"."""
        with self._changed:
            if seq < 0:
                return [], self._next
            if seq >= self._next and not self._stop.is_set():
                self._changed.wait(timeout)
            first = self._events[0][0] if self._events else self._next
            events = [e for n, e in self._events if n >= max(seq, first)]
            return events, self._next

    def collect(self) -> None:
        """Read what the journal gained and what the pod directories show now."""
        self._add(self._journal.new())
        states = self._pod_states()
        derived = []
        now = time.time()
        for uuid in sorted(set(self._states) | set(states)):
            old = self._states.get(uuid, (None, None))[1]
            new = states.get(uuid, (None, None))[1]
            kinds = derived_events(old, new)
            pod_events = [Event(kind, uuid, uuid, now) for kind in kinds]
            if new == "running" or "POD_EXITED" in kinds:  # apps may have started or exited
                exited = pod_events[-1:] if "POD_EXITED" in kinds else []
                pod_events = pod_events[:len(pod_events) - len(exited)]
                pod_events += self._app_events(uuid, now) + exited
            derived += pod_events
        self._apps = {uuid: apps for uuid, apps in self._apps.items() if uuid in states}
        self._states = states
        self._add(derived)

    def _app_events(self, uuid: str, now: float) -> list[Event]:
        """The app events a started pod's directory shows (none if it is gone)."""
        try:
            with store_pods.open_pod(self.ctx, uuid) as pod:
                if uuid not in self._apps:
                    self._apps[uuid] = [app.name for app in pod.manifest().apps]
                codes = pod.app_exit_codes()
        except RktError:  # gone, or no valid pod manifest to name its apps
            return []
        return app_events(uuid, self._apps[uuid], codes, now)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.collect()
            except OSError as e:
                self.ctx.warn(f"api-service: reading events: {e}")

    def _pod_states(self) -> dict[str, tuple[str, str]]:
        states = {}
        for state_dir, uuid in store_pods.pod_dirs(self.ctx):
            known = self._states.get(uuid)
            if known and known[0] == state_dir and (state_dir not in PROBED_DIRS
                                                    or known[1] in FINAL_STATES):
                states[uuid] = known
                continue
            state = store_pods.pod_state(self.ctx, uuid)
            if state is not None:
                states[uuid] = (state_dir, state)
        return states

    def _add(self, events: list[Event]) -> None:
        fresh = []
        for event in events:
            key = _once(event)
            if key:
                if key in self._seen:
                    continue
                self._seen.add(key)
            elif event.type == "IMAGE_IMPORTED":
                self._image_names[event.id] = event.name
            elif event.type == "IMAGE_REMOVED" and not event.name:
                event = Event(event.type, event.id, self._image_names.get(event.id, ""),
                              event.time, event.data)
            fresh.append(event)
        if not fresh:
            return
        with self._changed:
            for event in fresh:
                self._events.append((self._next, event))
                self._next += 1
            self._changed.notify_all()


def _once(event: Event) -> tuple[str, str, str] | None:
    """What makes an event that happens once at most unique (None for other events)."""
    if event.type in POD_EVENTS:
        return event.type, event.id, ""
    if event.type in APP_EVENTS:
        return event.type, event.id, event.name
    return None


def matches(event: Event, types: set[str], ids: set[str], names: set[str], since: int,
            until: int) -> bool:
    """Whether an event passes a ListenEvents filter (all its conditions; empty ones pass)."""
    return ((not types or event.type in types) and (not ids or event.id in ids)
            and (not names or event.name in names) and (not since or event.time >= since)
            and (not until or int(event.time) <= until))
