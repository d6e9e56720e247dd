"""The nspawn stage1 flavor: the host's systemd-nspawn starts the pod, the host's systemd is its PID 1."""
