"""The example flavor of examples/stage1_chroot, installed the way a user installs a third-party
plugin (its own distribution, built with pip), passes the Stage1Contract with no change to core."""

import subprocess
import sys
from pathlib import Path

import pytest

from rkt_core.testing.stage1_contract import Stage1Contract

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stage1_chroot"


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    """The example built and installed into a directory of its own, on the path of this test
    process and of the rkt commands it runs."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
                   check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(target))
        patch.syspath_prepend(str(target))
        yield target


class TestChrootContract(Stage1Contract):
    flavor = "chroot"

    def test_the_app_has_a_hostname_of_its_own(self, rkt, image, tmp_path):
        result = rkt.run("--hostname=example-host", image, "--exec", "/bin/hostname")
        assert (result.returncode, result.stdout) == (0, "example-host\n"), result.stderr
        uuid_file = tmp_path / "uuid"
        result = rkt.run(f"--uuid-file-save={uuid_file}", image, "--exec", "/bin/hostname")
        assert result.stdout == f"rkt-{uuid_file.read_text().strip()}\n", result.stderr

    def test_the_flavor_code_is_small(self):
        code = [line for line in (EXAMPLE / "rkt_stage1_chroot" / "plugin.py").read_text()
                .splitlines() if line.strip() and not line.strip().startswith("#")]
        assert len(code) <= 60
