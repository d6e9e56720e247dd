"""appc v0.7.4 for rkt: names, labels, quantities, isolators, image and pod manifests.

Everything is parsed and validated the way the appc Go code (which rkt used) does, written
back the way Go's ``encoding/json`` writes it, and every error is an ``AppcError``. Image
names are also checked to be safe as store paths (no empty, ``.`` or ``..`` segments).
"""

from .annotations import Annotations
from .app import App, EnvironmentVariable, EventHandler, MountPoint, Port
from .errors import AppcError
from .identifiers import (app_name_from_image_name, check_path_safe, parse_uuid,
                          sanitize_ac_name, validate_ac_identifier, validate_ac_name,
                          validate_image_id, validate_image_name)
from .image_manifest import Dependency, ImageManifest
from .isolators import Isolator, cpu_isolator, memory_isolator
from .labels import VALID_OS_ARCH, Labels, host_os_arch
from .pod_manifest import ExposedPort, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume
from .quantity import Quantity, parse_quantity
from .reference import parse_app_string

__all__ = [
    "Annotations", "App", "AppcError", "Dependency", "EnvironmentVariable", "EventHandler",
    "ExposedPort", "ImageManifest", "Isolator", "Labels", "Mount", "MountPoint", "PodManifest",
    "Port", "Quantity", "RuntimeApp", "RuntimeImage", "VALID_OS_ARCH", "Volume",
    "app_name_from_image_name", "check_path_safe", "cpu_isolator", "host_os_arch",
    "memory_isolator", "parse_app_string", "parse_quantity", "parse_uuid", "sanitize_ac_name",
    "validate_ac_identifier", "validate_ac_name", "validate_image_id", "validate_image_name",
]
