"""Talking to ``rkt api-service`` in tests: a client generated from api.proto (run by
:mod:`apiclient` in a process of its own) and the services a test starts."""

import json
import subprocess
import sys
import time
from pathlib import Path

from rkt_core.testing.runner import Rkt
from rkt_core.testing.wait import WAIT_TIMEOUT

HERE = Path(__file__).parent
PROTO_DIR = HERE.parents[2] / "rkt_plugins" / "api_service" / "rkt_api_service"


class ApiError(Exception):
    """A gRPC error status: ``code`` (``NOT_FOUND``...) and details."""

    def __init__(self, code: str, details: str):
        super().__init__(f"{code} {details}")
        self.code, self.details = code, details


class Api:
    """Calls ``rkt api-service`` at ``address`` through the generated client."""

    def __init__(self, generated: Path, address: str):
        self.generated, self.address = generated, address

    def argv(self, method: str, request) -> list[str]:
        text = request if isinstance(request, str) else json.dumps(request or {})
        return [sys.executable, str(HERE / "apiclient.py"), str(self.generated), self.address,
                method, text]

    def __call__(self, method: str, request=None) -> dict:
        """A unary call's response; ApiError for an error status."""
        result = subprocess.run(self.argv(method, request), capture_output=True, text=True,
                                timeout=WAIT_TIMEOUT)
        if result.stdout.startswith("ERROR "):
            _, code, details = (result.stdout.strip() + " ").split(" ", 2)
            raise ApiError(code, details.strip())
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stream(self, method: str, request=None) -> subprocess.Popen:
        """A streaming call: its responses are JSON lines on the process's stdout (unbuffered,
        so that select(2) on it tells whether a response is there)."""
        return subprocess.Popen(self.argv(method, request), stdout=subprocess.PIPE, bufsize=0)


def read_response(process: subprocess.Popen) -> dict:
    """The next response of a stream (an AssertionError if the stream ended)."""
    line = process.stdout.readline().decode()
    assert line, f"the stream ended ({process.poll()})"
    assert not line.startswith("ERROR "), line
    return json.loads(line)


class Service:
    """``rkt api-service`` processes started by a test, all stopped at its end."""

    def __init__(self, generated: Path, tmp_path: Path):
        self.generated, self.tmp_path = generated, tmp_path
        self.processes: list[subprocess.Popen] = []

    def start(self, rkt: Rkt, *argv: str, listen: str = "--listen=127.0.0.1:0") -> Api:
        """Start the service on ``rkt``'s data directory; its client once it listens."""
        log = self.tmp_path / f"api-service-{len(self.processes)}.log"
        with open(log, "w") as out:
            process = subprocess.Popen([*argv, *rkt.argv("api-service", listen)],
                                       stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        deadline = time.monotonic() + WAIT_TIMEOUT
        while time.monotonic() < deadline:
            for line in log.read_text().splitlines():
                if line.startswith("API service listening on "):
                    return Api(self.generated, line.rsplit(" ", 1)[1].split(",")[0])
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"the API service did not start: {log.read_text()}")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
            assert process.wait(timeout=WAIT_TIMEOUT) in (0, -15)
