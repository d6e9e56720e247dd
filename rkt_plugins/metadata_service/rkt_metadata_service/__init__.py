"""The appc metadata service for rkt: ``rkt metadata-service`` serves each pod registered with
``rkt run --mds-register`` its manifests, annotations and an HMAC identity at
``AC_METADATA_URL`` (see :mod:`.server` for how pods reach it, :mod:`.api` for what it
answers)."""
