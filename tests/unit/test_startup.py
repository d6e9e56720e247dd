"""Start-up stays lean: each command imports only what it uses (DESIGN.md, issue 18)."""

import json
import subprocess
import sys

import pytest

from rkt_core.testing.runner import local_env

HEAVY = ("requests", "urllib3", "sqlalchemy", "pyroute2", "pluggy", "stevedore", "gnupg",
         "cryptography", "ctypes")

PROGRAM = """
import json, sys
sys.argv = ["rkt", *sys.argv[1:]]
from rkt_core.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_modules(*args: str, env: dict[str, str] | None = None
                     ) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``rkt ARGS`` in a fresh interpreter (in ``/``: ``sys.path`` does not change between
    runs): its result and every module it imported."""
    result = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True,
                            text=True, check=True, env=env, cwd="/")
    return result, set(json.loads(result.stdout.splitlines()[-1]))


def imported_packages(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``rkt ARGS`` in a fresh interpreter: its result and the top-level packages it
    imported."""
    result, modules = imported_modules(*args)
    return result, {m.split(".")[0] for m in modules}


def test_rkt_version_imports_no_heavy_library():
    result, packages = imported_packages("version")
    assert "rkt Version:" in result.stdout
    assert packages.isdisjoint(HEAVY)
    assert "typing" not in packages  # with re and enum, 8% of the command


@pytest.mark.parametrize("args", [
    ["version"], ["list"], ["list", "--format=json"], ["status", "0123"], ["image", "list"],
])
def test_common_commands_run_without_click(tmp_path, args):
    result, packages = imported_packages(f"--dir={tmp_path}", *args)
    assert "click" not in packages, result.stderr


@pytest.mark.parametrize("args", [["list"], ["list", "--full", "--format=json"], ["status", "0123"]])
def test_list_and_status_load_no_plugin_and_no_heavy_library(tmp_path, args):
    result, packages = imported_packages(f"--dir={tmp_path}", *args)
    assert packages.isdisjoint(HEAVY), result.stderr
    assert not any(p.startswith("rkt_") and p != "rkt_core" for p in packages)


@pytest.mark.parametrize("args", [["list"], ["list", "--format=json"]])
def test_list_reads_pod_manifests_without_the_appc_model(tmp_path, args):
    pod = tmp_path / "pods" / "run" / "0b5c9f3e-8d1a-4c3e-9f00-3a4c1e2d5b6f"
    pod.mkdir(parents=True)
    (pod / "pod").write_text(json.dumps({"acKind": "PodManifest", "acVersion": "0.7.4", "apps": [
        {"name": "app", "image": {"name": "example.com/app", "id": "sha512-" + "ab" * 32}}]}))
    _, modules = imported_modules(f"--dir={tmp_path}", *args)
    assert "rkt_core.pod.listing" in modules  # the pod was read
    # rkt_core.appc: 13% of a list of 200 pods; typing, datetime, signal: 12% more
    assert modules.isdisjoint({"rkt_core.appc", "typing", "datetime", "signal"})


def test_image_list_imports_nothing_for_other_image_commands(tmp_path):
    _, modules = imported_modules(f"--dir={tmp_path}", "image", "list")
    assert "rkt_core.store.imagestore" in modules
    # OpenSSL's hashlib, shutil (with bz2 and lzma) and tempfile: a sixth of the command
    assert modules.isdisjoint({"_hashlib", "shutil", "tempfile"})


def test_help_still_goes_through_click(tmp_path):
    result, packages = imported_packages("list", "--help")
    assert "click" in packages
    assert "--no-legend" in result.stdout


def test_fetching_into_a_new_store_imports_neither_sqlalchemy_nor_click(tmp_path):
    from rkt_core.testing.aci import build_aci, image_manifest

    aci = build_aci(tmp_path / "small.aci", image_manifest("example.com/small"),
                    files={"etc/hello": b"hi\n"})
    result, packages = imported_packages(f"--dir={tmp_path / 'data'}", "--insecure-options=image",
                                         "fetch", str(aci))
    assert result.stdout.startswith("sha512-"), result.stderr
    assert "sqlalchemy" not in packages and "click" not in packages


def test_an_https_fetch_uses_http_client_not_requests(tmp_path):
    from rkt_core.testing.aci import build_aci, image_manifest
    from rkt_core.testing.httpserver import TestCA, TestServer

    aci = build_aci(tmp_path / "small.aci", image_manifest("example.com/small"),
                    files={"etc/hello": b"hi\n"})
    ca = TestCA(tmp_path / "ca")
    with TestServer(ca=ca) as server:
        server.add("/small.aci", aci.read_bytes())
        result, modules = imported_modules(
            f"--dir={tmp_path / 'data'}", "--insecure-options=image", "fetch",
            server.url("/small.aci"),
            env={**local_env(), "REQUESTS_CA_BUNDLE": str(ca.ca_path)})
    assert result.stdout.startswith("sha512-"), result.stderr
    assert "http.client" in modules and "ssl" in modules
    assert {m.split(".")[0] for m in modules}.isdisjoint({"requests", "urllib3"})


def test_a_docker_fetch_uses_http_client_not_requests(tmp_path):
    from rkt_core.testing.httpserver import TestServer

    with TestServer() as server:
        server.add("/v2/", b"{}")
        result, modules = imported_modules(
            f"--dir={tmp_path / 'data'}", "--insecure-options=image,http", "fetch",
            f"docker://{server.host}:{server.port}/app:latest", env=local_env())
        assert [r.path for r in server.requests][-1] == "/v2/app/manifests/latest"
    assert "rkt: " in result.stderr  # no such manifest: the requests were made all the same
    assert "http.client" in modules and "rkt_fetch_docker.client" in modules
    assert {m.split(".")[0] for m in modules}.isdisjoint({"requests", "urllib3"})
    # the plugin's records are rkt_core.records ones; uname is read without `platform`
    assert "rkt_fetch_docker.manifest" in modules
    assert modules.isdisjoint({"dataclasses", "platform"})


# What a fly run of a stored image has no use for: making temporary files (tempfile, and the
# shutil, random, bz2 and lzma it imports), OpenSSL's hashes, running tools, URLs and IP
# addresses, importing images, stdlib dataclasses (records are rkt_core.records ones, the
# plugins' included), and the heavy libraries but the plugin manager (it finds the flavor) and
# ctypes (the libc seam mounts and unshares).
NOT_ON_A_FLY_RUN = {"tempfile", "shutil", "random", "bz2", "lzma", "hashlib", "_hashlib",
                    "subprocess", "urllib.parse", "ipaddress", "tarfile", "zipfile",
                    "importlib.metadata", "email", "dataclasses", "socket", *HEAVY} - {"pluggy", "ctypes"}


@pytest.mark.root
def test_a_fly_run_of_a_stored_image_imports_only_what_it_uses(rkt, busybox_image, tmp_path):
    env = {**rkt.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # a plugin index of its own
    run = rkt.argv("run", "--stage1-name=fly", "example.com/busybox", "--exec", "/bin/true")[3:]
    rkt("fetch", busybox_image, check=0)
    imported_modules(*run, env=env)  # renders the image and writes the plugin index
    result, modules = imported_modules(*run, env=env)
    assert "rkt:" not in result.stderr, result.stderr
    assert len(rkt.pods()) == 2
    start_up = subprocess.run([sys.executable, "-c", "import sys; print(*sys.modules)"],
                              capture_output=True, text=True, check=True, env=env, cwd="/")
    assert (modules - set(start_up.stdout.split())) & NOT_ON_A_FLY_RUN == set()


def test_nspawn_flavor_and_cni_backend_declare_records_without_dataclasses():
    """Their record classes are ``rkt_core.records`` ones: ``dataclasses`` compiles methods for
    each class, 2-3.5M instructions apiece (the nspawn flavor's import was 19M, now 8M)."""
    program = ("import sys, rkt_core.cli.run, rkt_core.stage0.run; before = set(sys.modules); "
               "import rkt_stage1_nspawn.stage1, rkt_net_cni.plugin, rkt_net_cni.hookspecs, "
               "rkt_net_cni.backend; print(sorted(set(sys.modules) - before))")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True)
    added = set(json.loads(result.stdout.replace("'", '"')))
    assert "rkt_stage1_nspawn.units" in added and "rkt_net_cni.result" in added
    assert "dataclasses" not in added


def test_the_console_script_collects_garbage_rarely():
    """``console()`` raises the collector's threshold before the command runs: importing what a
    run needs then triggers no collection (with Python's threshold: more than ten)."""
    program = ("import gc, sys\n"
               "from rkt_core.cli import main\n"
               "def command():\n"
               "    before = gc.get_stats()[0]['collections']\n"
               "    import rkt_core.cli.run, rkt_core.stage0.run, rkt_core.plugins\n"
               "    print(gc.get_threshold()[0], gc.get_stats()[0]['collections'] - before)\n"
               "    sys.exit(0)\n"
               "main.main = command\n"
               "main.console()\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True, cwd="/")
    threshold, collections = map(int, result.stdout.split())
    assert threshold == 50_000
    assert collections <= 1
