"""Annotations: free-form metadata on images, pods and apps, with a few checked names."""

import re

from .errors import AppcError
from .identifiers import quote
from .namevalues import NameValues

_RFC3339 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"


def _check_date(name: str, value: str) -> None:
    if re.fullmatch(_RFC3339, value):
        from datetime import datetime  # here: few annotations are dates

        try:
            datetime.fromisoformat(value[:19])
            return
        except ValueError:
            pass
    raise AppcError(f"invalid annotation {quote(name)} value {quote(value)}: must be an "
                    f"RFC 3339 date such as 2015-12-09T10:00:00Z")


def _check_url(name: str, value: str) -> None:
    from urllib.parse import urlsplit  # here: few annotations are URLs

    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        raise AppcError(f"invalid annotation {quote(name)} value {quote(value)}: must be an "
                        f"http or https URL")


class Annotations(NameValues):
    """Annotations; ``created`` must be an RFC 3339 date, ``homepage`` and ``documentation``
    http(s) URLs."""

    kind = "annotation"

    def _check_values(self) -> None:
        for name, check in (("created", _check_date), ("homepage", _check_url),
                            ("documentation", _check_url)):
            value = self.get(name)
            if value is not None:
                check(name, value)
