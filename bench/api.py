"""The API service at scale: ListPods with 1,000 pods and ListImages with 1,000 images
(issue 13: "well under a second"), each call timed from a client generated from api.proto.

Usage: python bench/api.py   (needs rkt-api-service and grpcio-tools installed; standalone)
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rkt_core.store.imagestore import ImageStore
from rkt_core.testing.aci import build_aci, image_manifest

COUNT = 1000
RUNS = 7
PROTO_DIR = Path(__file__).resolve().parents[1] / "rkt_plugins" / "api_service" / "rkt_api_service"


def fill_store(data: Path, work: Path) -> None:
    store = ImageStore(str(data))
    for i in range(COUNT):
        manifest = image_manifest(f"example.com/img{i}", "1.0", ["/x"],
                                  annotations=[{"name": "n", "value": str(i)}])
        aci = build_aci(work / f"{i}.aci", manifest, files={"f": str(i).encode()},
                        compression=None)
        with open(aci, "rb") as f, store.staging(f) as staged:
            store.commit(staged)
        aci.unlink()


def fill_pods(data: Path) -> None:
    """Exited pods as stage0 leaves them: a manifest, the app's image manifest, times, status."""
    image = json.dumps(image_manifest("example.com/img", exec=["/x"]))
    for i in range(COUNT):
        pod = data / "pods" / "run" / str(uuid.uuid4())
        (pod / "appsinfo" / "app").mkdir(parents=True)
        (pod / "stage1" / "rootfs" / "rkt" / "status").mkdir(parents=True)
        manifest = {"acVersion": "0.7.4", "acKind": "PodManifest", "apps": [{
            "name": "app", "image": {"name": "example.com/img", "id": "sha512-" + "a" * 64},
            "app": {"exec": ["/x"], "user": "0", "group": "0"}}]}
        (pod / "pod").write_text(json.dumps(manifest))
        (pod / "pod-created").touch()
        (pod / "pid").write_text("1")
        (pod / "appsinfo" / "app" / "manifest").write_text(image)
        (pod / "stage1" / "rootfs" / "rkt" / "status" / "app").write_text("0")
        (pod / "net-info.json").write_text(json.dumps([{"netName": "default",
                                                        "ip": f"172.16.{i // 250}.{i % 250}"}]))


def client(work: Path):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
                    f"--python_out={work}", f"--grpc_python_out={work}", "api.proto"], check=True)
    sys.path.insert(0, str(work))
    import api_pb2
    import api_pb2_grpc

    return api_pb2, api_pb2_grpc


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work, data = Path(tmp), Path(tmp) / "data"
        print(f"filling {COUNT} images and {COUNT} pods...", file=sys.stderr)
        fill_store(data, work)
        fill_pods(data)
        pb, grpc_pb = client(work)
        log = work / "service.log"
        with open(log, "w") as out:
            service = subprocess.Popen([sys.executable, "-m", "rkt_core.cli.main",
                                        f"--dir={data}", "api-service",
                                        "--listen=127.0.0.1:0"], stdout=out, stderr=out)
        try:
            while "listening on" not in log.read_text():
                assert service.poll() is None, log.read_text()
                time.sleep(0.05)
            address = log.read_text().split("listening on ")[1].split()[0]
            import grpc

            stub = grpc_pb.PublicAPIStub(grpc.insecure_channel(
                address, options=[("grpc.max_receive_message_length", 64 << 20)]))
            for name, call, request, key in (
                    ("ListPods", stub.ListPods, pb.ListPodsRequest(), "pods"),
                    ("ListPods detail", stub.ListPods, pb.ListPodsRequest(detail=True), "pods"),
                    ("ListImages", stub.ListImages, pb.ListImagesRequest(), "images"),
                    ("ListImages detail", stub.ListImages, pb.ListImagesRequest(detail=True),
                     "images")):
                times = []
                for _ in range(RUNS):
                    start = time.perf_counter()
                    found = len(getattr(call(request), key))
                    times.append(time.perf_counter() - start)
                assert found == COUNT, (name, found)
                print(f"{name:<18} {COUNT} {key}: first {times[0] * 1000:6.1f} ms, "
                      f"median {statistics.median(times) * 1000:6.1f} ms")
        finally:
            service.terminate()
            service.wait()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("note: run as root to match the service's usual reads", file=sys.stderr)
    main()
