"""Entry point of the TPM plugin (``tpm``): measures each pod start into the TPM (an observer:
a failure is reported and never stops the pod) and adds ``rkt tpm-log``. Everything else is
imported only when used."""

import sys

from rkt_core.plugin_api import hookimpl

RKT_PLUGIN_API = 1


@hookimpl
def rkt_before_stage1(pod, flavor, options):
    from .tpm import TpmError, configured

    if not configured():  # a host without a TPM: nothing to measure into, nothing to say
        if options.debug:
            print(f"rkt: tpm: no TPM (no device, no RKT_TPM_TCTI): pod {pod.uuid} was not "
                  "measured", file=sys.stderr)
        return
    from .measure import measure_pod_start

    try:
        measure_pod_start(pod, flavor, options)
    except (TpmError, OSError, ValueError) as e:
        print(f"rkt: tpm: pod {pod.uuid} was not measured: {e}", file=sys.stderr)


@hookimpl
def rkt_add_commands(cli):
    from .command import tpm_log

    cli.add_command(tpm_log)
