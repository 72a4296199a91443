#!/usr/bin/env python3
"""Decodes a Prometheus protobuf exposition body (`encoding=delimited`:
each io.prometheus.client.MetricFamily preceded by its length as a varint)
with the protobuf runtime (PyPI `protobuf`), from message descriptors built
here with the field numbers of prometheus/client_model's metrics.proto
(proto2). Fails on bytes the runtime rejects, on a length prefix that runs
past the body, and on fields it does not know.

Usage: decode_metric_families.py BODY_FILE
Prints JSON: a list of families as `google.protobuf.json_format` writes them
(field names as in the .proto; 64-bit integers as strings; NaN as "NaN").
Exits 3 when the protobuf runtime is not installed.
"""
import json
import sys

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
    from google.protobuf import unknown_fields
except ImportError:
    sys.exit(3)

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
P = ".io.prometheus.client."

fdp = descriptor_pb2.FileDescriptorProto(
    name="vitals_client_model_subset.proto", package="io.prometheus.client", syntax="proto2"
)


def message(name, fields):
    m = fdp.message_type.add(name=name)
    for field_name, number, kind, label, type_name in fields:
        f = m.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            f.type_name = type_name


enum = fdp.enum_type.add(name="MetricType")
for n, v in [("COUNTER", 0), ("GAUGE", 1), ("SUMMARY", 2), ("UNTYPED", 3), ("HISTOGRAM", 4), ("GAUGE_HISTOGRAM", 5)]:
    enum.value.add(name=n, number=v)

message("LabelPair", [("name", 1, F.TYPE_STRING, OPT, None), ("value", 2, F.TYPE_STRING, OPT, None)])
# google.protobuf.Timestamp, declared here under its own field numbers.
message("Timestamp", [("seconds", 1, F.TYPE_INT64, OPT, None), ("nanos", 2, F.TYPE_INT32, OPT, None)])
message(
    "Exemplar",
    [
        ("label", 1, F.TYPE_MESSAGE, REP, P + "LabelPair"),
        ("value", 2, F.TYPE_DOUBLE, OPT, None),
        ("timestamp", 3, F.TYPE_MESSAGE, OPT, P + "Timestamp"),
    ],
)
message("Gauge", [("value", 1, F.TYPE_DOUBLE, OPT, None)])
message("Counter", [("value", 1, F.TYPE_DOUBLE, OPT, None), ("exemplar", 2, F.TYPE_MESSAGE, OPT, P + "Exemplar")])
message("Quantile", [("quantile", 1, F.TYPE_DOUBLE, OPT, None), ("value", 2, F.TYPE_DOUBLE, OPT, None)])
message(
    "Summary",
    [
        ("sample_count", 1, F.TYPE_UINT64, OPT, None),
        ("sample_sum", 2, F.TYPE_DOUBLE, OPT, None),
        ("quantile", 3, F.TYPE_MESSAGE, REP, P + "Quantile"),
    ],
)
message(
    "Bucket",
    [
        ("cumulative_count", 1, F.TYPE_UINT64, OPT, None),
        ("cumulative_count_float", 4, F.TYPE_DOUBLE, OPT, None),
        ("upper_bound", 2, F.TYPE_DOUBLE, OPT, None),
        ("exemplar", 3, F.TYPE_MESSAGE, OPT, P + "Exemplar"),
    ],
)
message("BucketSpan", [("offset", 1, F.TYPE_SINT32, OPT, None), ("length", 2, F.TYPE_UINT32, OPT, None)])
message(
    "Histogram",
    [
        ("sample_count", 1, F.TYPE_UINT64, OPT, None),
        ("sample_count_float", 4, F.TYPE_DOUBLE, OPT, None),
        ("sample_sum", 2, F.TYPE_DOUBLE, OPT, None),
        ("bucket", 3, F.TYPE_MESSAGE, REP, P + "Bucket"),
        ("schema", 5, F.TYPE_SINT32, OPT, None),
        ("zero_threshold", 6, F.TYPE_DOUBLE, OPT, None),
        ("zero_count", 7, F.TYPE_UINT64, OPT, None),
        ("zero_count_float", 8, F.TYPE_DOUBLE, OPT, None),
        ("negative_span", 9, F.TYPE_MESSAGE, REP, P + "BucketSpan"),
        ("negative_delta", 10, F.TYPE_SINT64, REP, None),
        ("negative_count", 11, F.TYPE_DOUBLE, REP, None),
        ("positive_span", 12, F.TYPE_MESSAGE, REP, P + "BucketSpan"),
        ("positive_delta", 13, F.TYPE_SINT64, REP, None),
        ("positive_count", 14, F.TYPE_DOUBLE, REP, None),
        ("exemplars", 16, F.TYPE_MESSAGE, REP, P + "Exemplar"),
    ],
)
message(
    "Metric",
    [
        ("label", 1, F.TYPE_MESSAGE, REP, P + "LabelPair"),
        ("gauge", 2, F.TYPE_MESSAGE, OPT, P + "Gauge"),
        ("counter", 3, F.TYPE_MESSAGE, OPT, P + "Counter"),
        ("summary", 4, F.TYPE_MESSAGE, OPT, P + "Summary"),
        ("histogram", 7, F.TYPE_MESSAGE, OPT, P + "Histogram"),
        ("timestamp_ms", 6, F.TYPE_INT64, OPT, None),
    ],
)
message(
    "MetricFamily",
    [
        ("name", 1, F.TYPE_STRING, OPT, None),
        ("help", 2, F.TYPE_STRING, OPT, None),
        ("type", 3, F.TYPE_ENUM, OPT, P + "MetricType"),
        ("metric", 4, F.TYPE_MESSAGE, REP, P + "Metric"),
        ("unit", 5, F.TYPE_STRING, OPT, None),
    ],
)
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
MetricFamily = message_factory.GetMessageClass(pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))


def varint(data, at):
    shift = value = 0
    while True:
        if at >= len(data):
            raise SystemExit("a length prefix runs past the body")
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise SystemExit("a length prefix longer than ten bytes")


def no_unknown_fields(msg):
    if len(unknown_fields.UnknownFieldSet(msg)):
        raise SystemExit(f"unknown fields in {msg.DESCRIPTOR.name}")
    for field, value in msg.ListFields():
        if field.type == F.TYPE_MESSAGE:
            # `is_repeated` in protobuf 6 and later, `label` before.
            repeated = getattr(field, "is_repeated", None)
            repeated = repeated if repeated is not None else field.label == REP
            for m in value if repeated else [value]:
                no_unknown_fields(m)


data = open(sys.argv[1], "rb").read()
at, families = 0, []
while at < len(data):
    length, at = varint(data, at)
    if at + length > len(data):
        raise SystemExit("a message runs past the body")
    family = MetricFamily()
    family.ParseFromString(data[at : at + length])
    at += length
    no_unknown_fields(family)
    families.append(json_format.MessageToDict(family, preserving_proto_field_name=True))
print(json.dumps(families))
