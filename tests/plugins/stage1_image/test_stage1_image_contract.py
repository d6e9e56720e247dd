"""The image flavor passes the stage1 contract with the test stage1 image given by path."""

import pytest
from teststage1 import stage1_aci

from rkt_core.testing.stage1_contract import Rkt, Stage1Contract


class ImageRkt(Rkt):
    """``rkt`` that runs pods with a stage1 image where the contract names the flavor."""

    def __init__(self, data_dir, stage1):
        super().__init__(data_dir, "image")
        self.stage1 = stage1

    def command(self, *args):
        return super().command(*(f"--stage1-path={self.stage1}" if a == "--stage1-name=image"
                                 else a for a in args))


class TestStage1ImageContract(Stage1Contract):
    flavor = "image"

    @pytest.fixture(scope="class")
    @classmethod
    def stage1(cls, tmp_path_factory):
        return str(stage1_aci(tmp_path_factory.mktemp("stage1") / "stage1.aci"))

    @pytest.fixture
    def rkt(self, tmp_path, stage1):
        rkt = ImageRkt(tmp_path / "data", stage1)
        yield rkt
        rkt.cleanup()
