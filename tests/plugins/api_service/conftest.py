"""Fixtures of the API service tests: the generated client and the services a test starts."""

import subprocess
import sys
from pathlib import Path

import pytest

from apitest import PROTO_DIR, Service


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """A client generated from the service's api.proto by protoc."""
    out = tmp_path_factory.mktemp("client")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
                    f"--python_out={out}", f"--grpc_python_out={out}", "api.proto"], check=True)
    return out


@pytest.fixture
def service(generated, tmp_path):
    started = Service(generated, tmp_path)
    yield started
    started.stop_all()
