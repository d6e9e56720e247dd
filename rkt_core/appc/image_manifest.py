"""The image manifest (``manifest`` in an ACI): parse, validate and write it as appc v0.7.4."""

from .. import APPC_VERSION
from ..records import dataclass, field
from .annotations import Annotations
from .app import App
from .errors import AppcError
from .gojson import UINT64_MAX, as_int, as_list, as_str, as_str_list, dumps, loads, struct_fields
from .identifiers import parse_semver, quote, validate_image_id, validate_image_name
from .labels import Labels

IMAGE_MANIFEST_KIND = "ImageManifest"

__all__ = ["Annotations", "Dependency", "ImageManifest", "IMAGE_MANIFEST_KIND"]


@dataclass
class Dependency:
    """An image whose rootfs is laid down under this one, found by name and labels (or ID)."""

    image_name: str
    image_id: str | None = None
    labels: Labels = field(default_factory=Labels)
    size: int | None = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the name, the optional image ID and size."""
        validate_image_name(self.image_name, "dependency imageName")
        if self.image_id is not None:
            validate_image_id(self.image_id, f"imageID of dependency {quote(self.image_name)}")
        if self.size is not None:
            as_int(self.size, f"size of dependency {quote(self.image_name)}", 0, UINT64_MAX)

    @classmethod
    def from_json(cls, data: object, what: str = "dependency") -> "Dependency":
        """Decode ``{"imageName", "imageID", "labels", "size"}``."""
        fields = struct_fields(data, ("imageName", "imageID", "labels", "size"), what)
        image_id = fields.get("imageID")
        size = fields.get("size")
        return cls(
            image_name=as_str(fields.get("imageName", ""), f"{what} imageName"),
            image_id=None if image_id is None else as_str(image_id, f"{what} imageID"),
            labels=Labels.from_json(fields.get("labels"), f"{what} labels"),
            size=None if size is None else as_int(size, f"{what} size", 0, UINT64_MAX),
        )

    def to_json(self) -> dict:
        """The JSON form; absent or zero optional fields are left out, as Go does."""
        self.validate()
        data = {"imageName": self.image_name}
        if self.image_id is not None:
            data["imageID"] = self.image_id
        if self.labels:
            data["labels"] = self.labels.to_json()
        if self.size:
            data["size"] = self.size
        return data


_FIELDS = ("acKind", "acVersion", "name", "labels", "app", "annotations", "dependencies",
           "pathWhitelist")


@dataclass
class ImageManifest:
    """An appc image manifest. Building one validates it; ``to_json`` validates again."""

    ac_kind: str = IMAGE_MANIFEST_KIND
    ac_version: str = APPC_VERSION
    name: str = ""
    labels: Labels = field(default_factory=Labels)
    app: App | None = None
    annotations: Annotations = field(default_factory=Annotations)
    dependencies: list[Dependency] = field(default_factory=list)
    path_whitelist: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check kind, version and name (the parts hold their own rules)."""
        if self.ac_kind != IMAGE_MANIFEST_KIND:
            raise AppcError(f"invalid image manifest: acKind must be {quote(IMAGE_MANIFEST_KIND)}, "
                            f"not {quote(self.ac_kind)}")
        if not self.ac_version:
            raise AppcError("invalid image manifest: acVersion must be set")
        self.ac_version = parse_semver(self.ac_version)
        if not self.name:
            raise AppcError("invalid image manifest: name must be set")
        validate_image_name(self.name)
        for i, path in enumerate(self.path_whitelist):
            as_str(path, f"pathWhitelist[{i}]")

    @classmethod
    def from_json(cls, data: bytes | str | dict) -> "ImageManifest":
        """Parse and validate a manifest from JSON text or an already decoded object."""
        fields = struct_fields(loads(data, "image manifest"), _FIELDS, "image manifest")
        app = fields.get("app")
        return cls(
            ac_kind=as_str(fields.get("acKind", ""), "image manifest acKind"),
            ac_version=as_str(fields.get("acVersion", ""), "image manifest acVersion"),
            name=as_str(fields.get("name", ""), "image name"),
            labels=Labels.from_json(fields.get("labels"), "image labels"),
            app=None if app is None else App.from_json(app),
            annotations=Annotations.from_json(fields.get("annotations"), "image annotations"),
            dependencies=[Dependency.from_json(item, f"dependencies[{i}]") for i, item in
                          enumerate(as_list(fields.get("dependencies", []), "dependencies"))],
            path_whitelist=as_str_list(fields.get("pathWhitelist", []), "pathWhitelist"),
        )

    def to_dict(self) -> dict:
        """The JSON object, keys in appc's Go field order, empty optional fields left out."""
        self.validate()
        data = {"acKind": self.ac_kind, "acVersion": self.ac_version, "name": self.name}
        if self.labels:
            data["labels"] = self.labels.to_json()
        if self.app is not None:
            data["app"] = self.app.to_json()
        if self.annotations:
            data["annotations"] = self.annotations.to_json()
        if self.dependencies:
            data["dependencies"] = [dep.to_json() for dep in self.dependencies]
        if self.path_whitelist:
            data["pathWhitelist"] = list(self.path_whitelist)
        return data

    def to_json(self, pretty: bool = False) -> str:
        """The manifest as Go's ``json.Marshal`` writes it (``MarshalIndent``, tab, if pretty)."""
        return dumps(self.to_dict(), pretty)
