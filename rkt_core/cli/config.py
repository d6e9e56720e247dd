"""``rkt config``: print the merged configuration."""

from .declare import command, option
from .main import get_context
from .output import print_json


@command()
@option("--pretty-print/--no-pretty-print", default=False, help="apply indent to format the output")
def config(pretty_print: bool) -> None:
    """Print configuration for each stage in JSON format."""
    ctx = get_context()
    conf = ctx.config
    if not conf.data_dir:
        conf.data_dir = ctx.data_dir
    print_json(conf.to_json(), pretty=pretty_print)
