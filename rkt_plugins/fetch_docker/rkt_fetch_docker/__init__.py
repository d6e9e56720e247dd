"""rkt's ``docker://`` fetcher: images from a Docker Registry v2, converted to one squashed ACI."""
