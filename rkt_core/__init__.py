"""rkt in Python: a pod-native container runtime (core distribution ``rkt-core``).

Plugins use :mod:`rkt_core.plugin_api` and nothing else of this package.
"""

__version__ = "0.1.0"
APPC_VERSION = "0.7.4"
