"""Entry point of the image flavor (``stage1-image``); the implementation is imported only when
a pod uses it."""

from rkt_core.plugin_api import Stage1Flavor, hookimpl

RKT_PLUGIN_API = 1


def _factory():
    from .stage1 import ImageStage1

    return ImageStage1()


def _check_image(manifest) -> None:
    from .manifest import Stage1Image

    Stage1Image.from_manifest(manifest)


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor(name="image", factory=_factory, interface_version=1,
                         check_image=_check_image,
                         description="runs rkt's stage1 images (--stage1-path, --stage1-url, "
                                     "--stage1-name=NAME:VERSION...) through their entrypoints")]
