#!/usr/bin/env python3
"""Decodes a remote-write WriteRequest with the protobuf runtime (PyPI
`protobuf`), from message descriptors built here with the field numbers of
prometheus/prompb (types.proto, remote.proto): WriteRequest.timeseries = 1;
TimeSeries.labels = 1, .samples = 2; Label.name = 1, .value = 2;
Sample.value = 1 (double), .timestamp = 2 (int64).

Usage: decode_write_request.py BODY_FILE (uncompressed protobuf).
Prints JSON: [{"labels": [[name, value], ...], "samples": [[bits, ts]]}],
with each value as the integer of its IEEE 754 bits (exact, NaN included).
Fails on bytes the runtime rejects or fields it does not know. Exits 3 when
the protobuf runtime is not installed.
"""
import json
import struct
import sys

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:
    sys.exit(3)

F = descriptor_pb2.FieldDescriptorProto


def message(fdp, name, fields):
    m = fdp.message_type.add(name=name)
    for field_name, number, kind, label, type_name in fields:
        f = m.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            f.type_name = type_name


fdp = descriptor_pb2.FileDescriptorProto(
    name="vitals_prompb_subset.proto", package="prometheus", syntax="proto3"
)
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
message(fdp, "Label", [("name", 1, F.TYPE_STRING, OPT, None), ("value", 2, F.TYPE_STRING, OPT, None)])
message(fdp, "Sample", [("value", 1, F.TYPE_DOUBLE, OPT, None), ("timestamp", 2, F.TYPE_INT64, OPT, None)])
message(
    fdp,
    "TimeSeries",
    [
        ("labels", 1, F.TYPE_MESSAGE, REP, ".prometheus.Label"),
        ("samples", 2, F.TYPE_MESSAGE, REP, ".prometheus.Sample"),
    ],
)
message(fdp, "WriteRequest", [("timeseries", 1, F.TYPE_MESSAGE, REP, ".prometheus.TimeSeries")])
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
WriteRequest = message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))

data = open(sys.argv[1], "rb").read()
request = WriteRequest()
request.ParseFromString(data)


def no_unknown_fields(msg):
    from google.protobuf import unknown_fields

    if len(unknown_fields.UnknownFieldSet(msg)):
        raise SystemExit(f"unknown fields in {msg.DESCRIPTOR.name}")


no_unknown_fields(request)
out = []
for ts in request.timeseries:
    no_unknown_fields(ts)
    for x in list(ts.labels) + list(ts.samples):
        no_unknown_fields(x)
    out.append(
        {
            "labels": [[l.name, l.value] for l in ts.labels],
            "samples": [
                [struct.unpack("<Q", struct.pack("<d", s.value))[0], s.timestamp] for s in ts.samples
            ],
        }
    )
print(json.dumps(out))
