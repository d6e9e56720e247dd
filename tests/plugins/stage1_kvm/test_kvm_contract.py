"""The kvm flavor through the real ``rkt`` command: the stage1 contract."""

from rkt_core.testing.stage1_contract import Stage1Contract


class TestKvmContract(Stage1Contract):
    flavor = "kvm"
