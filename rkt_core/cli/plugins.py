"""``rkt plugins``: what is installed, what it provides, and what failed to load."""

from .declare import Choice, command, option
from .main import get_context
from .output import print_json, print_table


@command()
@option("--no-legend/--legend", default=False, help="suppress a legend with the list")
@option("--format", "fmt", type=Choice(["", "json", "json-pretty"]), default="",
        help="choose the output format")
def plugins(no_legend: bool, fmt: str) -> None:
    """List installed plugins: distribution and version, what each provides, load errors."""
    infos = get_context().plugins.infos()
    if fmt:
        print_json([i.as_json() for i in infos], pretty=fmt == "json-pretty")
        return
    rows = []
    for info in infos:
        status = info.status if not info.errors else f"{info.status}: " + "; ".join(info.errors)
        version = f"{info.distribution} {info.version}".strip() or "-"
        provides = ", ".join(info.provides) or ",".join(h.removeprefix("rkt_") for h in info.hooks)
        rows.append([info.name, version, provides or "-", status])
    print_table(["NAME", "DISTRIBUTION", "PROVIDES", "STATUS"], rows, legend=not no_legend)
