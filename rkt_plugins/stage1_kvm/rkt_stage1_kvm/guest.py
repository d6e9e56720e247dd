"""The agent inside the VM: PID 1 once the initramfs' script has loaded the drivers and mounted
the pod's app roots (``/opt/stage2``, shared from the host over 9p).

It gets the plan from the host (:mod:`.plan`: every app's process already resolved on the host
by rkt's shared helpers: executable, working directory, user, groups, environment, capability
bounding set and limits), configures the network, gives each app's root its own /proc, /sys
and /dev, starts the apps, reports their exit statuses and runs ``rkt enter`` commands; when
the last app is done it powers the VM off. A power button press (``rkt stop``) or the host's
STOP terminates the apps.

It runs on the guest's minimal Python (:mod:`.initramfs`): the standard library's lightest
modules only, imported here at the top (the initramfs packs what this module imports).
"""

import ctypes
import marshal  # noqa: F401 - used by wire; listed so that the initramfs packs it
import os
import select
import struct
import sys
import time

import _signal

from . import wire

PORTS = "/sys/class/virtio-ports"
STAGE2 = "/opt/stage2"
CGROUP = "/sys/fs/cgroup"
BUSYBOX = "/rkt/busybox"
STOP_GRACE = 10  # seconds between SIGTERM and SIGKILL when the pod is stopped
KEY_POWER, EV_KEY = 116, 1
_EVENT = struct.Struct("llHHi")  # struct input_event on x86_64

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
PR_CAPBSET_DROP = 24
F_GETFL, F_SETFL, F_SETOWN, O_ASYNC = 3, 4, 8, 0o20000
RB_POWER_OFF = 0x4321FEDC
TIOCSCTTY = 0x540E
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2)."""
    _check(libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                      data.encode() or None), f"mount {fstype} on {target}")


def run(argv: list) -> None:
    """Run a helper (busybox) to completion; an error if it fails."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if status:
        raise OSError(0, f"{' '.join(argv[1:])} failed ({status})")


def write(path: str, text: str) -> None:
    """Write a kernel setting."""
    with open(path, "w") as f:
        f.write(text)


def uptime() -> float:
    """Seconds since the guest's kernel started."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def port(name: str) -> int:
    """A descriptor of the virtio-serial port called ``name``."""
    for entry in os.listdir(PORTS):
        with open(f"{PORTS}/{entry}/name") as f:
            if f.read().strip() == name:
                return os.open(f"/dev/{entry}", os.O_RDWR | os.O_CLOEXEC)
    raise OSError(0, f"no virtio-serial port {name}")


# --- setting the VM up ----------------------------------------------------------------------


def configure_network(interfaces: list) -> None:
    """Name each NIC as in the pod's namespace (found by MAC), then its addresses and routes."""
    ip = [BUSYBOX, "ip"]
    run(ip + ["link", "set", "lo", "up"])
    by_mac = {}
    for name in os.listdir("/sys/class/net"):
        with open(f"/sys/class/net/{name}/address") as f:
            by_mac[f.read().strip()] = name
    for i, nic in enumerate(interfaces):  # temporary names first: no clash while renaming
        current = by_mac.get(nic["mac"])
        if current is None:
            raise OSError(0, f"no network device with MAC {nic['mac']}")
        run(ip + ["link", "set", current, "name", f"rkttmp{i}"])
    for i, nic in enumerate(interfaces):
        name = nic["name"]
        run(ip + ["link", "set", f"rkttmp{i}", "name", name])
        run(ip + ["link", "set", name, "mtu", str(nic["mtu"]), "up"])
        for address in nic["addresses"]:
            run(ip + ["addr", "add", address, "dev", name])
    for nic in interfaces:
        for route in sorted(nic["routes"], key=lambda r: bool(r.get("via"))):
            argv = ip + ["route", "replace", route["dst"]]
            if route.get("via"):
                argv += ["via", route["via"]]
            argv += ["dev", nic["name"]]
            if route.get("scope"):
                argv += ["scope", route["scope"]]
            run(argv)


def prepare_root(root: str, volumes: list) -> None:
    """The app's own /proc, /sys and the VM's cgroups (read-only) and a minimal /dev (the host made sure these are
    directories of the root, not symlinks); each volume, which the host mounted, a mount point
    here too (read-only if it is)."""
    for volume in volumes:
        target = root + volume["target"]
        mount(target, target, "", MS_BIND)
        if volume["read_only"]:
            mount(target, target, "", MS_BIND | MS_REMOUNT | MS_RDONLY)
    for name in ("proc", "sys", "dev"):
        if os.path.islink(f"{root}/{name}"):
            raise OSError(0, f"{root}/{name} is a symbolic link")
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("sysfs", f"{root}/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("cgroup2", f"{root}{CGROUP}", "cgroup2", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = f"{root}/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755")
    for name, major, minor in DEVICES:
        os.mknod(f"{dev}/{name}", 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)
    for name in ("pts", "shm"):
        os.mkdir(f"{dev}/{name}", 0o755)
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.symlink("/proc/self/fd", f"{dev}/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{dev}/{name}")


def prepare_cgroups(apps: list) -> None:
    """cgroup v2 with the cpu and memory controllers; one group per app with its limits."""
    mount("cgroup2", CGROUP, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    write(f"{CGROUP}/cgroup.subtree_control", "+cpu +memory")
    for app in apps:
        group = f"{CGROUP}/{app['name']}"
        os.mkdir(group)
        if app["memory"]:
            write(f"{group}/memory.max", str(app["memory"]))
        if app["cpu_millis"]:
            write(f"{group}/cpu.max", f"{app['cpu_millis'] * 100} 100000")


# --- processes --------------------------------------------------------------------------------


def start(app: dict, process: dict, stdio: tuple, tty: bool = False) -> int:
    """Fork ``process`` of ``app``: its cgroup, root, working directory, bounding set, groups,
    user, environment; stdio ``(in, out, err)``. Returns its pid; an error (OSError) if it
    could not exec."""
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_r)
            for sig in (_signal.SIGCHLD, _signal.SIGIO, _signal.SIGTERM):
                _signal.signal(sig, _signal.SIG_DFL)
            _signal.set_wakeup_fd(-1)
            os.setsid()
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            if tty:
                libc.ioctl(0, TIOCSCTTY, 0)
            write(f"{CGROUP}/{app['name']}/cgroup.procs", str(os.getpid()))
            os.chroot(app["root"])
            os.chdir(process["cwd"])
            for cap in range(app["last_cap"] + 1):
                if not app["capabilities"] >> cap & 1:
                    _check(libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0),
                           "drop a capability")
            os.setgroups(process["groups"])
            os.setresgid(process["gid"], process["gid"], process["gid"])
            os.setresuid(process["uid"], process["uid"], process["uid"])
            if process["search"]:
                os.execvpe(process["path"], process["argv"], process["env"])
            os.execve(process["path"], process["argv"], process["env"])
        except BaseException as e:  # noqa: BLE001 - reported to the agent through the pipe
            message = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            os.write(errors_w, f'cannot execute "{process["argv"][0]}": {message}'.encode())
        finally:
            os._exit(254)
    os.close(errors_w)
    message = os.read(errors_r, 4096)
    os.close(errors_r)
    if message:
        os.waitpid(pid, 0)
        raise OSError(0, message.decode("utf-8", "replace"))
    return pid


def exit_code(status: int) -> int:
    """A wait status as a shell reports it (128+N for signal N)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait(pid: int) -> int:
    """Wait for a child (handlers run to completion); its exit code."""
    return exit_code(os.waitpid(pid, 0)[1])


# --- the agent ------------------------------------------------------------------------------


class Agent:
    """Runs the plan's apps and ``rkt enter`` sessions until the apps are done."""

    def __init__(self, control: int):
        self.control = control
        self.reader = wire.Reader()
        self.apps = {}  # name -> plan entry
        self.running = {}  # pid -> app name
        self.stopping = 0.0  # when the apps were sent SIGTERM
        self.enter = None  # the enter session
        self.poller = select.poll()
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.wake = wake_r
        _signal.set_wakeup_fd(self.wake_w)
        for sig in (_signal.SIGCHLD, _signal.SIGIO):
            _signal.signal(sig, lambda *_: None)

    def send(self, buffer: bytes) -> None:
        wire.write_all(self.control, buffer)

    def error(self, message: str) -> None:
        self.send(wire.frame(wire.ERROR, message.encode()))

    def receive(self, wanted: bytes) -> bytes:
        """Block for the next control frame, which must be ``wanted``."""
        while True:
            for kind, payload in self.reader.feed(os.read(self.control, 65536)):
                if kind == wanted:
                    return payload

    def run(self) -> None:
        self.send(wire.data(wire.HELLO, {"init": float(os.environ.get("RKT_INIT_UPTIME", 0)),
                                         "agent": uptime()}))
        plan = wire.load(self.receive(wire.PLAN))
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
        for app in plan["apps"]:
            app["last_cap"] = last_cap
        write("/proc/sys/kernel/hostname", plan["hostname"])
        configure_network(plan["interfaces"])
        prepare_cgroups(plan["apps"])
        for app in plan["apps"]:
            self.apps[app["name"]] = app
            prepare_root(app["root"], app["volumes"])
        for app in plan["apps"]:
            self.start_app(app, plan["interactive"])
        self.send(wire.data(wire.STARTED, uptime()))
        self.loop()

    def start_app(self, app: dict, interactive: bool) -> None:
        if interactive:  # the VM's console, rkt run's terminal, as the app's /dev/console
            console_path = f"{app['root']}/dev/console"
            os.mknod(console_path, 0o620 | 0o020000, os.stat("/dev/hvc0").st_rdev)
            console = os.open(console_path, os.O_RDWR | os.O_CLOEXEC)
            stdio = (console, console, console)
        else:
            stdio = (self.devnull, port(app["stdout"]), port(app["stderr"]))
        try:
            if app["pre_start"]:
                code = wait(start(app, app["pre_start"], stdio))
                if code:
                    raise OSError(0, f'pre-start handler "{app["pre_start"]["argv"][0]}" '
                                     f"exited with {code}")
            self.running[start(app, app["main"], stdio, tty=interactive)] = app["name"]
        except OSError as e:
            self.error(f'app "{app["name"]}": {e.strerror or e}')
            self.send(wire.data(wire.EXITED, [app["name"], 254]))
        finally:
            for fd in set(stdio):
                if fd != self.devnull:
                    os.close(fd)

    def loop(self) -> None:
        """Until the apps are done: exits, control frames, the power button, enter
        sessions."""
        power = power_button()
        enter_port = port("rkt.enter")
        os.set_blocking(enter_port, False)
        libc.fcntl(enter_port, F_SETOWN, os.getpid())  # SIGIO when the host (dis)connects
        libc.fcntl(enter_port, F_SETFL, libc.fcntl(enter_port, F_GETFL, 0) | O_ASYNC)
        poller = self.poller
        for fd in (self.control, self.wake, enter_port, power):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        listening = True
        while self.running:
            if self.stopping and time.monotonic() - self.stopping > STOP_GRACE:
                self.signal_apps(_signal.SIGKILL)
            for fd, events in poller.poll(1000):
                if fd == self.wake:
                    os.read(self.wake, 4096)
                    self.reap()
                    if not listening:  # SIGIO: the host side of the enter port changed
                        poller.register(enter_port, select.POLLIN)
                        listening = True
                elif fd == self.control:
                    for kind, _ in self.reader.feed(os.read(self.control, 65536)):
                        if kind == wire.STOP:
                            self.stop()
                elif fd == power:
                    if self.power_pressed(power):
                        self.stop()
                elif fd == enter_port:
                    if self.enter is None:
                        self.enter = Enter(self, enter_port)
                    if not self.enter.on_port(events):
                        self.enter.close()
                        self.enter = None
                        if events & select.POLLHUP:  # nobody connected: wait for SIGIO
                            poller.unregister(enter_port)
                            listening = False
                elif self.enter is not None and fd in self.enter.fds:
                    self.enter.on_output(fd)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            name = self.running.pop(pid, None)
            if name is not None:
                self.app_exited(self.apps[name], exit_code(status))
            elif self.enter is not None and pid == self.enter.pid:
                self.enter.exited(exit_code(status))

    def app_exited(self, app: dict, code: int) -> None:
        if app["post_stop"]:
            try:
                handler = wait(start(app, app["post_stop"], (self.devnull,) * 3))
                if handler:
                    self.error(f'app "{app["name"]}": post-stop handler '
                               f'"{app["post_stop"]["argv"][0]}" exited with {handler}')
            except OSError as e:
                self.error(f'app "{app["name"]}": post-stop: {e.strerror or e}')
        self.send(wire.data(wire.EXITED, [app["name"], code]))

    def stop(self) -> None:
        if not self.stopping:
            self.stopping = time.monotonic()
            self.signal_apps(_signal.SIGTERM)

    def signal_apps(self, sig: int) -> None:
        for pid in list(self.running):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    @staticmethod
    def power_pressed(fd: int) -> bool:
        data = os.read(fd, _EVENT.size * 16)
        for i in range(0, len(data) - _EVENT.size + 1, _EVENT.size):
            _, _, kind, code, value = _EVENT.unpack_from(data, i)
            if kind == EV_KEY and code == KEY_POWER and value == 1:
                return True
        return False


def power_button():
    """An input device of the ACPI power button, if the VM has one."""
    for name in sorted(os.listdir("/sys/class/input")):
        if not name.startswith("event"):
            continue
        try:
            with open(f"/sys/class/input/{name}/device/name") as f:
                if f.read().strip() == "Power Button":
                    return os.open(f"/dev/input/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return None


class Enter:
    """One ``rkt enter`` session on the enter port: a request, the process's input and output,
    its exit status. The process runs as the app's main process does, in ``/``."""

    def __init__(self, agent: Agent, port_fd: int):
        self.agent = agent
        self.port = port_fd
        self.reader = wire.Reader()
        self.pid = None
        self.stdin = None  # our end of the process's stdin
        self.outputs = {}  # our end of its stdout/stderr -> frame kind
        self.fds = []  # outputs still open
        self.status = None
        self.done = False

    def send(self, buffer: bytes) -> None:
        os.set_blocking(self.port, True)
        try:
            wire.write_all(self.port, buffer)
        finally:
            os.set_blocking(self.port, False)

    def on_port(self, events: int) -> bool:
        """Frames from the host; False once the session is over."""
        try:
            chunk = os.read(self.port, 65536)
        except BlockingIOError:
            chunk = None
        except OSError:
            chunk = b""
        if not chunk:
            if chunk == b"" or events & select.POLLHUP:
                return False  # the host went away
            return not self.done
        for kind, payload in self.reader.feed(chunk):
            if kind == wire.ENTER and self.pid is None and not self.done:
                self.begin(wire.load(payload))
            elif kind == wire.INPUT and self.stdin is not None:
                try:
                    wire.write_all(self.stdin, payload)
                except BrokenPipeError:
                    pass
            elif kind == wire.INPUT_END and self.stdin is not None:
                os.close(self.stdin)
                self.stdin = None
        return not self.done

    def on_output(self, fd: int) -> None:
        """The process wrote (or closed) its stdout or stderr."""
        chunk = os.read(fd, 65536)
        if chunk:
            self.send(wire.frame(self.outputs[fd], chunk))
            return
        self.agent.poller.unregister(fd)
        os.close(fd)
        self.fds.remove(fd)
        self.finish()

    def begin(self, request: dict) -> None:
        app = self.agent.apps.get(request.get("app"))
        argv = request.get("argv") or []
        if app is None or not argv:
            self.fail(f'the pod has no app "{request.get("app")}"' if app is None
                      else "nothing to execute")
            return
        process = dict(app["main"], argv=argv, path=argv[0], cwd="/", search="/" not in argv[0])
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        try:
            self.pid = start(app, process, (pipes[0][0], pipes[1][1], pipes[2][1]))
        except OSError as e:
            self.fail(e.strerror or str(e))
            return
        finally:
            for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
                os.close(fd)
        self.stdin = pipes[0][1]
        self.outputs = {pipes[1][0]: wire.OUTPUT, pipes[2][0]: wire.ERROR_OUTPUT}
        self.fds = list(self.outputs)
        for fd in self.fds:
            self.agent.poller.register(fd, select.POLLIN)

    def fail(self, message: str) -> None:
        self.send(wire.frame(wire.ERROR, message.encode()))
        self.done = True

    def exited(self, code: int) -> None:
        self.pid = None
        self.status = code
        self.finish()

    def finish(self) -> None:
        """Once the process exited and its output is all sent: its status."""
        if self.pid is None and not self.fds and self.status is not None and not self.done:
            self.send(wire.data(wire.STATUS, self.status))
            self.done = True

    def close(self) -> None:
        """End the session; a process still running (the host went away) is killed."""
        if self.pid is not None:
            try:
                os.kill(-self.pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_quietly(self.pid)
            self.pid = None
        for fd in self.fds:
            self.agent.poller.unregister(fd)
            os.close(fd)
        if self.stdin is not None:
            os.close(self.stdin)
        self.fds, self.stdin = [], None


def wait_quietly(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def main() -> None:
    """PID 1 of the VM: run the pod, then power off (also after an error, reported first)."""
    control = -1
    try:
        control = port("rkt.control")
        Agent(control).run()
    except BaseException as e:  # noqa: BLE001 - the host must hear of it, then power off
        message = f"the VM's agent failed: {e.strerror if isinstance(e, OSError) else e}"
        try:
            if control < 0:
                raise OSError(0, "no control port")
            wire.write_all(control, wire.frame(wire.ERROR, message.encode()))
        except OSError:
            print(message, file=sys.stderr)
    finally:
        os.sync()
        libc.reboot(RB_POWER_OFF)
        os._exit(1)
