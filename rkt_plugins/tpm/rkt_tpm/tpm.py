"""The TPM, through tpm2-tools: extend a PCR's SHA-256 bank, read it back.

The TCTI (how tpm2-tools reach the TPM: ``device:/dev/tpmrm0``, ``tabrmd``,
``swtpm:host=127.0.0.1,port=2321``...) is ``$RKT_TPM_TCTI``; without it tpm2-tools use their
own default (``$TPM2TOOLS_TCTI``, else the TPM device).
"""

from __future__ import annotations

import os
import re

TCTI_ENV = "RKT_TPM_TCTI"
TOOLS_TCTI_ENV = "TPM2TOOLS_TCTI"
DEVICES = ("/dev/tpmrm0", "/dev/tpm0")
BANK = "sha256"
TIMEOUT = 10  # seconds one tpm2-tools command may take: a pod never waits longer on the TPM
_PCR_VALUE = r"^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$"  # compiled when a PCR is read


def configured() -> bool:
    """Whether there is a TPM to measure into: a TCTI was chosen, or the host has a TPM."""
    return bool(os.environ.get(TCTI_ENV) or os.environ.get(TOOLS_TCTI_ENV)
                or any(os.path.exists(d) for d in DEVICES))


class TpmError(Exception):
    """The TPM could not be reached or refused."""


class Tpm:
    """One TPM, reached with the TCTI ``tcti`` ("" = tpm2-tools' default)."""

    def __init__(self, tcti: str | None = None):
        self.tcti = os.environ.get(TCTI_ENV, "") if tcti is None else tcti

    def _run(self, tool: str, *args: str) -> str:
        import subprocess  # here: a pod on a host without a TPM never runs a tool

        argv = [tool, *([f"--tcti={self.tcti}"] if self.tcti else []), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise TpmError(f"{tool} is not installed (Debian: tpm2-tools)") from None
        except subprocess.TimeoutExpired:
            raise TpmError(f"{tool} did not answer within {TIMEOUT} s") from None
        if done.returncode != 0:
            lines = [l for l in done.stderr.splitlines() if l.strip()]
            raise TpmError(f"{tool} failed: {lines[-1] if lines else done.returncode}")
        return done.stdout

    def extend(self, pcr: int, digest: bytes) -> None:
        """Extend PCR ``pcr`` of the SHA-256 bank with ``digest``."""
        self._run("tpm2_pcrextend", f"{pcr}:{BANK}={digest.hex()}")

    def read(self, pcr: int) -> bytes:
        """The value of PCR ``pcr`` of the SHA-256 bank."""
        out = self._run("tpm2_pcrread", f"{BANK}:{pcr}")
        for number, value in re.findall(_PCR_VALUE, out, re.M):
            if int(number) == pcr:
                return bytes.fromhex(value)
        raise TpmError(f"tpm2_pcrread did not report PCR {pcr}: {out.strip()}")
