"""Thin wrappers over Linux calls. The C library is reached only through :mod:`.libc`, the
Linux-call boundary that unit tests fake."""
