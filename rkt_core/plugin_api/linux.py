"""Thin wrappers of Linux calls, for plugins that set processes and mounts up themselves.

- ``libc``: the C library (``libc.call(name, *args, what=...)`` raises OSError with errno);
- ``mount``: mount(2)/umount(2), bind mounts, propagation, overlayfs, ``/proc/self/mountinfo``;
- ``scoped``: paths resolved inside an untrusted root through fds (open, read, bind, mount);
- ``ns``: unshare(2), setns(2) and namespace fds;
- ``proc``: prctl settings, pidfd-style process handles, signal forwarding, exit statuses;
- ``netns``: pinned network namespaces (``/run/netns``);
- ``spawn``: fork a process that must exec, with its set-up errors reported to the parent;
- ``activation``: the sockets systemd passed (socket activation, ``LISTEN_FDS``);
- ``watch``: a pollable wait for names to appear in a directory (inotify).
"""

from ..sys import activation, libc, mount, netns, ns, proc, scoped, spawn, watch

__all__ = ["activation", "libc", "mount", "netns", "ns", "proc", "scoped", "spawn", "watch"]
