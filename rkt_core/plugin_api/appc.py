"""The appc v0.7.4 model: image and pod manifests, names, labels, isolators, and Go-compatible
JSON (manifests are written back the way appc's Go code wrote them)."""

from ..appc import (Annotations, App, AppcError, Dependency, EnvironmentVariable, EventHandler,
                    ExposedPort, ImageManifest, Isolator, Labels, Mount, MountPoint, PodManifest,
                    Port, Quantity, RuntimeApp, RuntimeImage, VALID_OS_ARCH, Volume,
                    app_name_from_image_name, host_os_arch, parse_quantity, sanitize_ac_name,
                    validate_ac_identifier, validate_ac_name, validate_image_name)
from ..appc.gojson import dumps as go_json_dumps
from ..appc.isolators import CAPABILITIES_REMOVE_SET, CAPABILITIES_RETAIN_SET, CPU, MEMORY

__all__ = [
    "Annotations", "App", "AppcError", "CAPABILITIES_REMOVE_SET", "CAPABILITIES_RETAIN_SET",
    "CPU", "Dependency", "EnvironmentVariable", "EventHandler", "ExposedPort", "ImageManifest",
    "Isolator", "Labels", "MEMORY", "Mount", "MountPoint", "PodManifest", "Port", "Quantity",
    "RuntimeApp", "RuntimeImage", "VALID_OS_ARCH", "Volume", "app_name_from_image_name",
    "go_json_dumps", "host_os_arch", "parse_quantity", "sanitize_ac_name",
    "validate_ac_identifier", "validate_ac_name", "validate_image_name",
]
