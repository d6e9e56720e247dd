"""The image flavor passes the stage1 contract with the test stage1 image given by path."""

import pytest
from teststage1 import stage1_aci

from rkt_core.testing.runner import Rkt
from rkt_core.testing.stage1_contract import Stage1Contract


class TestStage1ImageContract(Stage1Contract):
    flavor = "image"

    @pytest.fixture(scope="class")
    @classmethod
    def stage1(cls, tmp_path_factory):
        return str(stage1_aci(tmp_path_factory.mktemp("stage1") / "stage1.aci"))

    @pytest.fixture
    def rkt(self, tmp_path, stage1):
        """``rkt`` choosing the test stage1 image by path wherever the contract names the
        flavor."""
        rkt = Rkt(tmp_path, flavor=self.flavor, stage1=f"--stage1-path={stage1}")
        yield rkt
        rkt.cleanup()
