"""``rkt`` with the test-only ``nettest`` flavor registered next to the installed plugins:
``python rkt_with_nettest.py [rkt arguments]``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rkt_core import plugins  # noqa: E402

_discover = plugins.Plugins._discover


def _with_nettest(self):
    _discover(self)
    import nettest_flavor

    self.register(nettest_flavor, "stage1-nettest")


plugins.Plugins._discover = _with_nettest

from rkt_core.cli.main import main  # noqa: E402

sys.exit(main())
