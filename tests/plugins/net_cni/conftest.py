"""Fixtures of the networking tests as root (see :mod:`netcheck`)."""

from netcheck import lease_directories, rkt  # noqa: F401 - fixtures
