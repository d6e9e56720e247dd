"""Start-up stays lean: ``rkt version`` loads none of the heavy libraries (DESIGN.md)."""

import json
import subprocess
import sys

HEAVY = ("requests", "urllib3", "sqlalchemy", "pyroute2", "pluggy", "stevedore", "gnupg",
         "cryptography", "ctypes")

PROGRAM = """
import json, sys
sys.argv = ["rkt", "version"]
from rkt_core.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def test_rkt_version_imports_no_heavy_library():
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                            check=True)
    modules = json.loads(result.stdout.splitlines()[-1])
    assert "rkt Version:" in result.stdout
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
