"""``rkt tpm-log [--check] [--format=json]``: the event log of measured pod starts."""

import json
from dataclasses import asdict

import click

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.cli import RktCommand

from .eventlog import EventLog, replay
from .measure import pcr_index
from .tpm import BANK, Tpm, TpmError

COLUMNS = ("TIME", "PCR", "POD", "EVENT", "SHA256")


@click.command("tpm-log", cls=RktCommand)
@click.option("--check", is_flag=True,
              help="replay the log and compare the result with the TPM's PCR")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="how to print the events")
def tpm_log(check: bool, output_format: str) -> None:
    """Print the TPM event log of pod starts: rkt tpm-log [--check] [--format=json]

    The log is /run/rkt/tpm-events.log ($RKT_TPM_EVENT_LOG); the TPM is reached with the TCTI
    $RKT_TPM_TCTI (default: tpm2-tools' own).
    """
    log = EventLog()
    try:
        events = log.read()
        pcr = pcr_index()
    except ValueError as e:
        raise RktError(str(e)) from None
    if output_format == "json":
        click.echo(json.dumps([asdict(e) for e in events], indent=2, sort_keys=True))
    else:
        rows = [COLUMNS] + [(e.time, str(e.pcr), e.pod[:8], e.event, e.digests.get(BANK, ""))
                            for e in events]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
        for row in rows:
            click.echo("  ".join([c.ljust(w) for c, w in zip(row, widths)] + [row[-1]]))
    if check:
        try:
            value = Tpm().read(pcr)
        except TpmError as e:
            raise RktError(f"cannot read PCR {pcr}: {e}") from None
        expected = replay(events, pcr)
        if value != expected:
            raise RktError(f"PCR {pcr} ({BANK}) is {value.hex()}, but {log.path} replays to "
                           f"{expected.hex()}: the PCR was extended by something else, or the log "
                           "is not the whole story")
        click.echo(f"PCR {pcr} ({BANK}) {value.hex()} matches the event log", err=True)
