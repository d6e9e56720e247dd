"""Errors of rkt itself. The command line prints them as ``rkt: <message>`` and exits 254."""

EXIT_RKT_ERROR = 254


class RktError(Exception):
    """An error of rkt itself, with a message meant for the user.

    ``hint`` is an optional second line telling the user what to do about it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RktError):
    """Wrong arguments or flags."""


class NotFoundError(RktError):
    """An image, pod or key that was asked for does not exist."""


class SignatureError(RktError):
    """An image signature is missing, invalid or made by an untrusted key."""


class ImageError(RktError):
    """An image archive or manifest is malformed or hostile."""


class StoreDatabaseError(RktError):
    """The store's database cannot be opened, read or migrated."""


class PluginMissingError(RktError):
    """A command needs a plugin that is not installed."""


def describe(error: BaseException) -> str:
    """A one-line message for an exception raised while setting a process or mount up."""
    if isinstance(error, RktError):
        return error.message
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return f"{type(error).__name__}: {error}"
