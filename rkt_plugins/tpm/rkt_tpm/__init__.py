"""Measured pod starts for rkt: before a pod's stage1 flavor starts, the flavor, the pod
manifest and the run options are hashed into a TPM PCR and written to an event log that replays
to the PCR's value (see :mod:`.measure`)."""
