"""The error raised for anything wrong in an appc manifest, name or value."""

from ..errors import ImageError


class AppcError(ImageError):
    """A manifest, name, label or other appc value breaks the appc v0.7.4 rules."""
