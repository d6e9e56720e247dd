"""The real ``rkt`` command for tests, on directories of the test's own.

    from rkt_core.testing.runner import Rkt

    rkt = Rkt(tmp_path, flavor="fly")
    result = rkt.run(image, "--exec", "/bin/true")     # rkt run --stage1-name=fly ...
    rkt("image", "list", check=0)                      # asserts the exit status
    pod = rkt.start(image, "--exec", "/bin/sleep", "--", "100")   # waits until it runs
    rkt("stop", pod.uuid, check=0)
    rkt.cleanup()                                      # force-stops what is still running

Every command runs as ``python -m rkt_core.cli.main`` with the interpreter of the test, its own
``--dir``, ``--local-config``, ``--system-config`` and ``--user-config`` (the host's ``/etc/rkt``
and ``/usr/lib/rkt`` are never read), ``--insecure-options=image`` unless told otherwise, and an
environment without proxy settings (tests talk to loopback only). Test plugins installed with
:meth:`Rkt.add_plugin_path` (see :func:`rkt_core.testing.plugins.plugin_site`) are discovered
by every later command like installed ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .wait import WAIT_TIMEOUT, wait_for

RKT_TIMEOUT = 120  # seconds any one rkt command may take
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def local_env() -> dict[str, str]:
    """The environment without proxy settings, so that traffic to 127.0.0.1 stays local."""
    return {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}


def parse_status(text: str) -> dict[str, str]:
    """``rkt status`` output (``key=value`` lines) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Started:
    """A ``rkt run`` in the background. Its output goes to files, never pipes: a pod's
    processes inherit them and would keep a reader waiting."""

    def __init__(self, argv: list[str], directory: Path, env: dict[str, str]):
        directory.mkdir(parents=True, exist_ok=True)
        self.uuid_file = directory / "uuid"
        self.out, self.err = directory / "stdout", directory / "stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=err, env=env)

    @property
    def uuid(self) -> str:
        """The pod's UUID ("" until ``rkt run`` saved it)."""
        return self.uuid_file.read_text().strip() if self.uuid_file.exists() else ""

    @property
    def stdout(self) -> str:
        """What ``rkt run`` wrote to stdout so far."""
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        """What ``rkt run`` wrote to stderr so far."""
        return self.err.read_text()

    def wait(self, timeout: float = WAIT_TIMEOUT) -> int:
        """The exit status of ``rkt run`` (killed, and AssertionError, after ``timeout``)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"rkt run did not finish within {timeout:g} s") from None


class Rkt:
    """The ``rkt`` command on its own directories under ``base`` (see the module docstring).

    ``flavor`` is the ``--stage1-name`` of :meth:`run` and :meth:`start` (``stage1``, e.g.
    ``--stage1-path=IMAGE``, chooses the stage1 another way instead); ``insecure`` the
    ``--insecure-options`` ("" for none); ``env`` is added to the environment; ``prefix`` goes
    before the command (e.g. ``nsenter --net=...``); ``python`` is the interpreter whose rkt
    runs (another virtual environment's); ``timeout`` is how long one command may take.
    """

    def __init__(self, base: str | Path, *, flavor: str = "", stage1: str = "",
                 insecure: str = "image",
                 env: dict[str, str] | None = None, prefix: tuple[str, ...] | list[str] = (),
                 python: str = sys.executable, timeout: float = RKT_TIMEOUT):
        self.base = Path(base)
        self.data_dir = self.base / "data"
        self.local_config = self.base / "etc"
        self.system_config = self.base / "usr-lib"
        self.user_config = self.base / "user-config"
        self.flavor = flavor
        self.stage1 = stage1
        self.insecure = insecure
        self.env = {**local_env(), **(env or {})}
        self.prefix = list(prefix)
        self.python = python
        self.timeout = timeout
        self.started: list[Started] = []

    def add_plugin_path(self, path: str | Path) -> None:
        """Discover the plugins installed in ``path`` (a :func:`plugin_site`) from now on."""
        paths = [str(path), *filter(None, self.env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env["PYTHONPATH"] = os.pathsep.join(paths)
        # rkt keeps an index of the plugins per sys.path (rkt_core.plugin_index): keep it with
        # the test
        self.env["XDG_CACHE_HOME"] = str(self.base / ".cache")

    def argv(self, *args, insecure: str | None = None) -> list[str]:
        """The argv of ``rkt ARGS`` with the global flags."""
        insecure = self.insecure if insecure is None else insecure
        return [*self.prefix, self.python, "-m", "rkt_core.cli.main", f"--dir={self.data_dir}",
                f"--local-config={self.local_config}", f"--system-config={self.system_config}",
                f"--user-config={self.user_config}",
                *([f"--insecure-options={insecure}"] if insecure else []), *map(str, args)]

    def __call__(self, *args, check: int | None = None, input: str | None = None,
                 timeout: float | None = None, insecure: str | None = None,
                 env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
        """Run ``rkt ARGS`` to completion, capturing its output; with ``check``, assert that it
        exited with that status. ``env`` is added to the environment; other ``options`` go to
        ``subprocess.run`` (``preexec_fn``, ``cwd``...)."""
        result = subprocess.run(self.argv(*args, insecure=insecure), input=input,
                                capture_output=True, text=True,
                                timeout=self.timeout if timeout is None else timeout,
                                env={**self.env, **(env or {})},
                                stdin=None if input is not None else subprocess.DEVNULL,
                                **options)
        if check is not None:
            assert result.returncode == check, (
                f"rkt {' '.join(map(str, args))}: exit {result.returncode}, expected {check}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def stage1_flags(self) -> list[str]:
        """The flag choosing the pods' stage1: ``stage1``, else ``--stage1-name=FLAVOR``."""
        if self.stage1:
            return [self.stage1]
        return [f"--stage1-name={self.flavor}"] if self.flavor else []

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        """``rkt run [--stage1-name=FLAVOR] ARGS`` (keywords as for calling the runner)."""
        return self("run", *self.stage1_flags(), *args, **kwargs)

    def start(self, *args, running: bool = True) -> Started:
        """``rkt run [--stage1-name=FLAVOR] ARGS`` in the background; unless not ``running``,
        returns once the pod runs with its pid recorded (AssertionError if ``rkt run`` ends
        first)."""
        directory = self.base / f"started-{len(self.started)}"
        started = Started(self.argv("run", *self.stage1_flags(),
                                    f"--uuid-file-save={directory / 'uuid'}", *args),
                          directory, self.env)
        self.started.append(started)
        if running:
            def runs() -> bool:
                if started.process.poll() is not None:
                    raise AssertionError(f"rkt run exited early ({started.process.returncode}): "
                                         f"{started.stdout}{started.stderr}")
                status = self.status(started.uuid) if started.uuid else {}
                return status.get("state") == "running" and "pid" in status

            wait_for(runs, what="the pod to run with its pid recorded")
        return started

    def status(self, uuid: str) -> dict[str, str]:
        """``rkt status UUID`` as a dict (empty if the command failed)."""
        result = self("status", uuid)
        return parse_status(result.stdout) if result.returncode == 0 else {}

    def pods(self, state_dir: str = "*") -> list[str]:
        """The UUIDs of the pods in the data directory (in ``pods/<state_dir>``)."""
        return sorted(p.name for p in (self.data_dir / "pods").glob(f"{state_dir}/*"))

    def images(self) -> list[str]:
        """The names (``name:version``) of the images in the store."""
        return sorted(self("image", "list", "--no-legend", "--fields=name", check=0)
                      .stdout.split())

    def image_keys(self) -> list[str]:
        """The full keys of the images in the store."""
        return sorted(self("image", "list", "--no-legend", "--full", "--fields=id", check=0)
                      .stdout.split())

    def tmp_leftovers(self) -> list[str]:
        """The files under ``cas/tmp`` (relative paths): what a fetch left behind."""
        tmp = self.data_dir / "cas" / "tmp"
        return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if not p.is_dir())

    def cleanup(self) -> None:
        """Force-stop every pod still running in the data directory and reap every background
        ``rkt run``."""
        for uuid in self.pods("run"):
            if self.status(uuid).get("state") == "running":
                self("stop", "--force", uuid)
        for started in self.started:
            try:
                started.process.wait(WAIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                started.process.kill()
                started.process.wait()
