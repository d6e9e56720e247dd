"""Image labels (``version``, ``os``, ``arch``...) and the appc os/arch whitelist."""

from .errors import AppcError
from .identifiers import quote
from .namevalues import NameValues

#: The os/arch pairs appc v0.7.4's code accepts (a superset of the prose spec's list).
VALID_OS_ARCH: dict[str, tuple[str, ...]] = {
    "linux": ("amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b"),
    "freebsd": ("amd64", "i386", "arm"),
    "darwin": ("x86_64", "i386"),
}

_MACHINE_TO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64",
                    "arm64": "aarch64", "i686": "i386", "i386": "i386", "armv7l": "armv7l",
                    "armv6l": "armv6l"}


def host_os_arch() -> tuple[str, str]:
    """The appc ``os`` and ``arch`` label values of this machine."""
    import platform  # here: its import compiles ten regexes

    machine = platform.machine()
    return platform.system().lower(), _MACHINE_TO_ARCH.get(machine, machine.lower())


class Labels(NameValues):
    """Image labels: unique ACIdentifier names, none called "name", os/arch whitelisted.

    An ``arch`` without an ``os`` is not checked, as in appc.
    """

    kind = "label"

    def _check_values(self) -> None:
        if "name" in self:
            raise AppcError('invalid label name "name": the image name is not a label')
        os_name = self.get("os")
        if os_name is None:
            return
        if os_name not in VALID_OS_ARCH:
            raise AppcError(f"invalid os label {quote(os_name)}: must be one of "
                            f"{', '.join(sorted(VALID_OS_ARCH))}")
        arch = self.get("arch")
        if arch is not None and arch not in VALID_OS_ARCH[os_name]:
            raise AppcError(f"invalid arch label {quote(arch)} for os {quote(os_name)}: must be "
                            f"one of {', '.join(VALID_OS_ARCH[os_name])}")
