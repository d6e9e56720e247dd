"""The flannel network type for rkt-net-cni."""
