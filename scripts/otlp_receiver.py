#!/usr/bin/env python3
"""An OTLP/HTTP metrics receiver on loopback that decodes strictly with the
PyPI `opentelemetry-proto` package and checks what it gets.

Usage: otlp_receiver.py [PORT]   (0 or absent: any free port)
Prints "PORT <n>" on its first line, then serves:

* POST /v1/metrics (gzip bodies are unpacked): `application/x-protobuf` is parsed with
  ExportMetricsServiceRequest.ParseFromString and refused if any message
  holds unknown fields; `application/json` is parsed with
  google.protobuf.json_format.Parse (unknown fields NOT ignored) after
  checking the OTLP/JSON rules the parser lets through: lowerCamelCase keys
  only, 64-bit integers as strings, enums as numbers. Each request is also
  checked on its own: a resource with `service.name`, an instrumentation
  scope, bucket counts (+ zero count) equal to the count, start before end,
  a temporality on every sum and histogram. A request failing any check is
  answered 400 with the reason (and the reason is kept); else 200.
* GET /report: JSON {"points": [...], "problems": [...]}: every data point
  received, flattened, and the problems found across requests: a
  cumulative series whose start time changed, a delta series whose windows
  are not contiguous or overlap.
* GET /ready: 200.

Exits 3 when opentelemetry-proto is not installed.
"""
import gzip
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
except ImportError:
    sys.exit(3)

try:
    from google.protobuf import unknown_fields
except ImportError:  # older runtimes
    unknown_fields = None

DELTA, CUMULATIVE = 1, 2
# Fields that are 64-bit integers in the messages vitals sends.
INT64_KEYS = {"startTimeUnixNano", "timeUnixNano", "asInt", "count", "zeroCount"}
INT64_LIST_KEYS = {"bucketCounts"}

lock = threading.Lock()
points = []
problems = []


def check_json_rules(node, path="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            if "_" in k:
                raise ValueError(f"{path}.{k}: not a lowerCamelCase key")
            if k in INT64_KEYS and not isinstance(v, str):
                raise ValueError(f"{path}.{k}: a 64-bit integer must be a string, got {v!r}")
            if k in INT64_LIST_KEYS and not all(isinstance(x, str) for x in v):
                raise ValueError(f"{path}.{k}: 64-bit integers must be strings")
            if k == "aggregationTemporality" and not isinstance(v, int):
                raise ValueError(f"{path}.{k}: an enum must be a number")
            check_json_rules(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_json_rules(v, f"{path}[{i}]")


def hex_ids_to_base64(node, path="$"):
    """OTLP/JSON writes trace and span ids as hex, which json_format (base64
    for bytes) does not know: checks their length and rewrites them."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k in ("traceId", "spanId"):
                size = 16 if k == "traceId" else 8
                raw = bytes.fromhex(v)
                if len(raw) != size or v != v.lower():
                    raise ValueError(f"{path}.{k}: {v!r} is not {size} bytes of lower-case hex")
                node[k] = base64.b64encode(raw).decode()
            else:
                hex_ids_to_base64(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            hex_ids_to_base64(v, f"{path}[{i}]")


def check_no_unknown(msg, path="request"):
    if unknown_fields is not None:
        if len(unknown_fields.UnknownFieldSet(msg)):
            raise ValueError(f"{path}: unknown fields")
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        repeated = getattr(fd, "is_repeated", None)
        if repeated is None:  # protobuf before 6
            repeated = fd.label == fd.LABEL_REPEATED
        if repeated:
            for i, v in enumerate(value):
                check_no_unknown(v, f"{path}.{fd.name}[{i}]")
        else:
            check_no_unknown(value, f"{path}.{fd.name}")


def attrs(kvs):
    out = {}
    for kv in kvs:
        if kv.value.WhichOneof("value") != "string_value":
            raise ValueError(f"attribute {kv.key}: not a string")
        out[kv.key] = kv.value.string_value
    return out


def flatten(req):
    """Checks one request; returns its points."""
    out = []
    if not req.resource_metrics:
        raise ValueError("no resource_metrics")
    for rm in req.resource_metrics:
        resource = attrs(rm.resource.attributes)
        if not resource.get("service.name"):
            raise ValueError("the resource has no service.name")
        for sm in rm.scope_metrics:
            if not sm.scope.name:
                raise ValueError("no instrumentation scope name")
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    raise ValueError(f"{m.name}: no data")
                data = getattr(m, kind)
                temporality = None
                if kind in ("sum", "histogram", "exponential_histogram"):
                    temporality = data.aggregation_temporality
                    if temporality not in (DELTA, CUMULATIVE):
                        raise ValueError(f"{m.name}: temporality {temporality}")
                if kind == "sum" and not data.is_monotonic:
                    raise ValueError(f"{m.name}: a counter's sum must be monotonic")
                for dp in data.data_points:
                    p = {
                        "resource": resource,
                        "scope": sm.scope.name,
                        "name": m.name,
                        "unit": m.unit,
                        "description": m.description,
                        "kind": kind,
                        "temporality": temporality,
                        "attributes": attrs(dp.attributes),
                        "start": dp.start_time_unix_nano,
                        "time": dp.time_unix_nano,
                    }
                    if dp.start_time_unix_nano == 0 or dp.start_time_unix_nano >= dp.time_unix_nano:
                        if kind != "gauge":
                            raise ValueError(f"{m.name}: start {dp.start_time_unix_nano} not before {dp.time_unix_nano}")
                    if kind in ("sum", "gauge"):
                        which = dp.WhichOneof("value")
                        if which is None:
                            raise ValueError(f"{m.name}: a point without a value")
                        p["value"] = getattr(dp, which)
                        p["int"] = which == "as_int"
                    elif kind == "histogram":
                        counts = list(dp.bucket_counts)
                        if len(counts) != len(dp.explicit_bounds) + 1:
                            raise ValueError(f"{m.name}: {len(counts)} bucket counts for {len(dp.explicit_bounds)} bounds")
                        if sum(counts) != dp.count:
                            raise ValueError(f"{m.name}: bucket counts {sum(counts)} != count {dp.count}")
                        p.update(count=dp.count, sum=dp.sum, bounds=list(dp.explicit_bounds), buckets=counts,
                                 min=dp.min if dp.HasField("min") else None,
                                 max=dp.max if dp.HasField("max") else None)
                    elif kind == "exponential_histogram":
                        counts = list(dp.positive.bucket_counts)
                        if sum(counts) + dp.zero_count != dp.count:
                            raise ValueError(f"{m.name}: bucket counts {sum(counts)} + zero count {dp.zero_count} != count {dp.count}")
                        if len(counts) > 160:
                            raise ValueError(f"{m.name}: {len(counts)} buckets, more than 160")
                        if list(dp.negative.bucket_counts):
                            raise ValueError(f"{m.name}: negative buckets")
                        p.update(count=dp.count, sum=dp.sum, scale=dp.scale, zero_count=dp.zero_count,
                                 offset=dp.positive.offset, buckets=counts,
                                 min=dp.min if dp.HasField("min") else None,
                                 max=dp.max if dp.HasField("max") else None)
                    elif kind == "summary":
                        p.update(count=dp.count, sum=dp.sum,
                                 quantiles=[[q.quantile, q.value] for q in dp.quantile_values])
                    if kind != "summary" and kind != "gauge":
                        p["exemplars"] = [
                            {
                                "attributes": attrs(e.filtered_attributes),
                                "value": e.as_double,
                                "time": e.time_unix_nano,
                                "trace_id": e.trace_id.hex(),
                                "span_id": e.span_id.hex(),
                            }
                            for e in dp.exemplars
                        ]
                    out.append(p)
    return out


def cross_check(new):
    """Problems across requests: start times and windows of each series."""
    series = {}
    for p in points:
        series.setdefault((p["name"], p["kind"], json.dumps(p["attributes"], sort_keys=True)), []).append(p)
    for p in new:
        key = (p["name"], p["kind"], json.dumps(p["attributes"], sort_keys=True))
        earlier = series.get(key, [])
        if not earlier or p["kind"] == "gauge":
            continue
        last = earlier[-1]
        if p["time"] <= last["time"]:
            problems.append(f"{key}: time {p['time']} not after {last['time']}")
        if p["temporality"] == DELTA and p["start"] != last["time"]:
            problems.append(f"{key}: delta window starts at {p['start']}, the previous ended at {last['time']}")
        if p["temporality"] != DELTA and p["start"] != last["start"]:
            problems.append(f"{key}: cumulative start moved from {last['start']} to {p['start']}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ready":
            self.reply(200, "ok")
        elif self.path == "/report":
            with lock:
                body = json.dumps({"points": points, "problems": problems})
            self.reply(200, body, "application/json")
        else:
            self.reply(404, "not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path != "/v1/metrics":
            self.reply(404, "not found")
            return
        ctype = self.headers.get("Content-Type", "")
        encoding = self.headers.get("Content-Encoding", "identity")
        req = ExportMetricsServiceRequest()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding != "identity":
                raise ValueError(f"content encoding {encoding!r}")
            if ctype == "application/x-protobuf":
                req.ParseFromString(body)
                check_no_unknown(req)
            elif ctype == "application/json":
                tree = json.loads(body)
                check_json_rules(tree)
                hex_ids_to_base64(tree)
                json_format.Parse(json.dumps(tree), req)
            else:
                raise ValueError(f"content type {ctype!r}")
            new = flatten(req)
        except Exception as e:  # anything the runtime or a check refuses
            e = f"{type(e).__name__}: {e}"
            with lock:
                problems.append(f"refused: {e}")
            self.reply(400, str(e))
            return
        for p in new:
            p["format"] = "json" if ctype == "application/json" else "protobuf"
            p["encoding"] = encoding
        with lock:
            cross_check(new)
            points.extend(new)
        if ctype == "application/json":
            self.reply(200, b"{}", "application/json")
        else:
            self.reply(200, b"", "application/x-protobuf")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
