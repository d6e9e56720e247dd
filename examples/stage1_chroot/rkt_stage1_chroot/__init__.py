"""An example stage1 flavor for rkt, written only against rkt's public plugin API."""
