"""rkt stage1 flavor "kvm": every pod in its own virtual machine."""
