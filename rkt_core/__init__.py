"""rkt in Python: a pod-native container runtime (core distribution ``rkt-core``).

Plugins mark their hook implementations with :data:`hookimpl` (see :mod:`rkt_core.hookspecs`).
"""

__version__ = "0.1.0"
APPC_VERSION = "0.7.4"


def __getattr__(name):
    # Imported lazily so that "rkt version" does not pay for pluggy.
    if name == "hookimpl":
        from .hookspecs import hookimpl

        return hookimpl
    raise AttributeError(name)
