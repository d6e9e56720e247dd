"""``rkt run docker://...`` with every installed stage1 flavor: the app is Entrypoint + Cmd, with
the image's environment, working directory and user."""

import pytest

from rkt_core.plugins import Plugins
from rkt_core.testing.registry import DOCKER_V2, TEST_REPO

pytestmark = pytest.mark.root
FLAVORS = sorted(name for name, flavor in Plugins().stage1_flavors().items()
                 if flavor.check_image is None)  # stage1 image runners need an image
# The host's network where the flavor can share it (no pod network to set up); a VM has none.
NET = {name: "--net=host" if flavor.factory().features.host_network else "--net=none"
       for name, flavor in Plugins().stage1_flavors().items()}
ROOT_LISTING = {"app", "bin", "data", "dev", "etc", "home", "opt", "tmp", "usr", "var"}


@pytest.fixture(params=FLAVORS)
def run(request, rkt):
    def run(image, *args):
        return rkt("run", f"--stage1-name={request.param}", NET[request.param], image, *args)
    return run


def ref_of(registry, tag="latest"):
    sep = "@" if tag.startswith("sha256:") else ":"
    return f"docker://{registry.address}/{TEST_REPO}{sep}{tag}"


@pytest.mark.parametrize("tag", ["latest", "v2s1", "list"])
def test_run_prints_what_entrypoint_and_cmd_print(run, images, tag):
    result = run(ref_of(images, tag))
    assert result.returncode == 0, result.stderr
    first, *listing = result.stdout.splitlines()
    assert first == "hello from /app"
    assert ROOT_LISTING <= set(listing)


def test_run_by_digest_as_the_images_user(run, images):
    _, digest = images.manifest("user", DOCKER_V2)
    result = run(ref_of(images, digest), "--exec", "/bin/sh", "--", "-c",
                 "id -u; id -g; pwd; echo $GREETING; cat /home/user/secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "1000", "/app", "hello", "secret"]
