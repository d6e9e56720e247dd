"""The stage1-image flavor: runs rkt's stage1 images through the entrypoints their manifests name."""
