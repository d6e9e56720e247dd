"""A v1alpha client generated from api.proto, run in a process of its own (its generated
messages must not meet the service's in one descriptor pool):

    python apiclient.py GENERATED_DIR ADDRESS METHOD REQUEST_JSON
    python apiclient.py GENERATED_DIR ADDRESS raw:METHOD HEX_BYTES|oversized:SIZE

prints each response as a JSON line (as it arrives, for streams), or ``ERROR <CODE> <details>``
and exits 3."""

import json
import sys

sys.path.insert(0, sys.argv[1])

import api_pb2  # noqa: E402
import api_pb2_grpc  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

STREAMS = {"ListenEvents", "GetLogs"}
TIMEOUT = 120


def main() -> int:
    _, address, method, request = sys.argv[1:5]
    channel = grpc.insecure_channel(address)
    try:
        if method.startswith("raw:"):
            call = channel.unary_unary(f"/v1alpha.PublicAPI/{method[4:]}")
            if request.startswith("oversized:"):  # a valid request of that many bytes
                size = int(request.split(":")[1])
                payload = api_pb2.ListPodsRequest(
                    filters=[api_pb2.PodFilter(ids=["x" * size])]).SerializeToString()
            else:
                payload = bytes.fromhex(request)
            print(json.dumps({"bytes": len(call(payload, timeout=TIMEOUT))}))
            return 0
        stub = api_pb2_grpc.PublicAPIStub(channel)
        message = json_format.Parse(request, getattr(api_pb2, f"{method}Request")())
        result = getattr(stub, method)(message, timeout=None if method in STREAMS else TIMEOUT)
        for response in result if method in STREAMS else [result]:
            print(json_format.MessageToJson(response, preserving_proto_field_name=True,
                                            indent=None,
                                            always_print_fields_with_no_presence=True),
                  flush=True)
    except grpc.RpcError as e:
        print(f"ERROR {e.code().name} {e.details()}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
