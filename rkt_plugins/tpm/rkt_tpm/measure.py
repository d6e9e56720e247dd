"""What a pod start measures: three events, each extending the PCR (``$RKT_TPM_PCR``, default
15 as rkt) with the SHA-256 of its data, in this order:

1. ``stage1 flavor``: the flavor's name, with the version of its distribution when it follows
   rkt's naming (``nspawn (rkt-stage1-nspawn 0.1.0)``);
2. ``pod manifest``: the pod manifest as the pod directory holds it (its ``pod`` file);
3. ``run options``: the pod's uuid, the flavor and the run options the flavor gets, as compact
   JSON with sorted keys, leaving out the lock's descriptor number (of this process only) and
   the metadata service URL (it holds the pod's secret token).

rkt measured the stage1 image's tree, the pod manifest and stage1's arguments, in one event.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict

from .eventlog import Event, EventLog
from .tpm import Tpm

PCR_ENV = "RKT_TPM_PCR"
DEFAULT_PCR = 15
LEFT_OUT = ("lock_fd", "metadata_url")


def pcr_index() -> int:
    """The PCR pod starts are measured into."""
    value = os.environ.get(PCR_ENV, "")
    if not value:
        return DEFAULT_PCR
    if not value.isdigit() or not 0 <= int(value) <= 23:
        raise ValueError(f"{PCR_ENV}={value!r} is not a PCR index (0-23)")
    return int(value)


def flavor_text(flavor: str) -> str:
    """The flavor's name, with its distribution's version when it is ``rkt-stage1-<name>``."""
    from importlib import metadata

    distribution = f"rkt-stage1-{flavor}"
    try:
        return f"{flavor} ({distribution} {metadata.version(distribution)})"
    except metadata.PackageNotFoundError:
        return flavor


def options_text(pod, flavor: str, options) -> str:
    """The run options as measured (see the module documentation)."""
    fields = {k: v for k, v in asdict(options).items() if k not in LEFT_OUT}
    return json.dumps({"pod": pod.uuid, "flavor": flavor, "options": fields}, sort_keys=True,
                      separators=(",", ":"))


def measurements(pod, flavor: str, options) -> list[tuple[str, bytes, str | None]]:
    """(event, measured data, data as logged) of a pod start, in extend order."""
    flavor_data = flavor_text(flavor)
    options_data = options_text(pod, flavor, options)
    return [("stage1 flavor", flavor_data.encode(), flavor_data),
            ("pod manifest", pod.manifest_json() or b"", None),
            ("run options", options_data.encode(), options_data)]


def measure_pod_start(pod, flavor: str, options, tpm: Tpm | None = None,
                      log: EventLog | None = None) -> None:
    """Extend the PCR with each measurement and log it, holding the log meanwhile so that
    concurrent pod starts keep PCR and log in the same order. Raises on the first failure;
    what was extended before it is logged."""
    tpm = tpm or Tpm()
    log = log or EventLog()
    pcr = pcr_index()
    with log.locked():
        for event, data, logged in measurements(pod, flavor, options):
            digest = hashlib.sha256(data).digest()
            tpm.extend(pcr, digest)
            log.append(Event(time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pcr=pcr,
                             pod=pod.uuid, event=event, digests={"sha256": digest.hex()},
                             data=logged))
