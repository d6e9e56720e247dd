"""The global state of one ``rkt`` invocation: flags, configuration, plugins and the store.

Everything is built lazily, on first use, so that cheap commands stay cheap.
"""

from __future__ import annotations

import os
import sys
from functools import cached_property

from .config import DEFAULT_DATA_DIR, DEFAULT_LOCAL_CONFIG, DEFAULT_SYSTEM_CONFIG, Config, load_config
from .insecure import Insecure

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (for `rkt list`)
if TYPE_CHECKING:
    from .plugins import Plugins
    from .store.imagestore import ImageStore


_current: Context | None = None


def current() -> Context:
    """The context of the running command (the one built last); RuntimeError outside one."""
    if _current is None:
        raise RuntimeError("no rkt command is running")
    return _current


class Context:
    """Global options of a command and the services built from them; the newest one is
    :func:`current`."""

    def __init__(self, *, dir: str | None = None, system_config: str = DEFAULT_SYSTEM_CONFIG,
                 local_config: str = DEFAULT_LOCAL_CONFIG, user_config: str = "",
                 debug: bool = False, insecure: Insecure = Insecure.NONE,
                 trust_keys_from_https: bool = False, disabled_plugins: tuple[str, ...] = ()):
        self.dir_flag = dir
        self.system_config = system_config
        self.local_config = local_config
        self.user_config = user_config
        self.debug = debug
        self.insecure = insecure
        self.trust_keys_from_https = trust_keys_from_https
        self.disabled_plugins = disabled_plugins
        self._warned: set[str] = set()
        global _current
        _current = self

    @cached_property
    def config(self) -> Config:
        """The merged configuration (system < local < user)."""
        return load_config(self.system_config, self.local_config, self.user_config)

    @cached_property
    def data_dir(self) -> str:
        """The data directory: ``--dir``, else ``paths.d`` ``data``, else ``/var/lib/rkt``."""
        path = self.dir_flag or self.config.data_dir or DEFAULT_DATA_DIR
        return os.path.realpath(path)

    @cached_property
    def plugins(self) -> "Plugins":
        """Every installed plugin, discovered on first use."""
        from .plugins import Plugins

        return Plugins(self.disabled_plugins, warn=self.warn)

    @cached_property
    def store(self) -> "ImageStore":
        """The image store in the data directory (created on first use); read-only for users
        who may not write the data directory (see :mod:`rkt_core.access`)."""
        from .access import may_write
        from .store.imagestore import ImageStore

        return ImageStore(self.data_dir, log=self.log, read_only=not may_write(self.data_dir))

    def require_write_access(self, activity: str) -> None:
        """Refuse the command before it changes anything unless this user may write the data
        directory (``activity`` names what it does, as in "running pods")."""
        from .access import require_write_access

        require_write_access(self.data_dir, activity)

    def insecure_for(self, flag: Insecure) -> bool:
        """Whether the user switched off the check ``flag``."""
        return bool(self.insecure & flag)

    def log(self, message: str) -> None:
        """A debug message, shown only with ``--debug``."""
        if self.debug:
            print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        """A warning, always shown on stderr."""
        print(f"rkt: {message}", file=sys.stderr)

    def warn_once(self, message: str) -> None:
        """A warning shown at most once per command."""
        if message not in self._warned:
            self._warned.add(message)
            self.warn(message)
