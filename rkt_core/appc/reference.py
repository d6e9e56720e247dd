"""Image references as users write them: ``name[:version][,label=value...]``."""

from .errors import AppcError
from .identifiers import quote, validate_ac_identifier, validate_image_name


def parse_app_string(text: str) -> tuple[str, dict[str, str]]:
    """Split an app string into the image name and its labels, as appc discovery does.

    ``example.com/app:1.0,os=linux`` gives ``("example.com/app", {"version": "1.0",
    "os": "linux"})``. At most one colon is allowed, right after the name; each label may
    appear once (so ``:1.0`` and ``version=`` together are an error).
    """
    first_comma, first_colon = text.find(","), text.find(":")
    if first_comma > -1 and first_colon > first_comma:
        raise AppcError(f"invalid image reference {quote(text)}: a colon may appear only "
                        f"right after the image name")
    if text.count(":") > 1:
        raise AppcError(f"invalid image reference {quote(text)}: a colon may appear only once")
    name, *parts = text.replace(":", ",version=", 1).split(",")
    labels: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise AppcError(f"invalid image reference {quote(text)}: label {quote(key)} has "
                            f"no value (expected label=value)")
        if key == "name" or key in labels:
            raise AppcError(f"invalid image reference {quote(text)}: {quote(key)} is given "
                            f"more than once")
        labels[validate_ac_identifier(key, "label name")] = value
    return validate_image_name(name), labels
