#!/usr/bin/env python3
"""Checks the texts written by `cargo run --example exposition -- DIR`.

* Prometheus 0.0.4 (`DIR/metrics.prom`) parses with
  `prometheus_client.parser.text_string_to_metric_families`, and OpenMetrics
  (`DIR/metrics.om`) with the strict
  `prometheus_client.openmetrics.parser.text_string_to_metric_families`.
* Every parsed value equals the snapshot's (`DIR/snapshot.json`), and every
  series of the snapshot is in both texts.
* Our own checks, which the tools do not make: no series twice, the series
  of a family contiguous, buckets cumulative and ending with `+Inf` equal to
  `_count`, OpenMetrics ending with `# EOF`.
* Every line of `DIR/snapshots.jsonl` parses with `json` and has the
  documented fields.

Exits non-zero, printing every problem, if anything is off.
"""

import json
import math
import re
import sys
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

QUANTILES = {"0.5": "p50", "0.9": "p90", "0.95": "p95", "0.99": "p99", "0.999": "p999"}
SNAPSHOT_FIELDS = {
    "schema_version": int,
    "timestamp_unix_ms": int,
    "uptime_seconds": (int, float),
    "counters": list,
    "gauges": list,
    "histograms": list,
    "metadata": list,
}
problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL:", msg)


def gauge_value(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[v]
    return float(v)


def same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b or (
        math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    )


def key(name, labels):
    return (name, tuple(sorted(labels.items())))


def expected_samples(snap):
    """(sample name, labels) -> value, as both formats must expose them."""
    out = {}
    for c in snap["counters"]:
        base = c["name"][: -len("_total")] if c["name"].endswith("_total") else c["name"]
        out[key(base + "_total", c["labels"])] = float(c["value"])
    for g in snap["gauges"]:
        out[key(g["name"], g["labels"])] = gauge_value(g["value"])
    for h in snap["histograms"]:
        name, labels, s = h["name"], h["labels"], h["summary"]
        buckets = s.get("buckets")
        if buckets:
            for bound, cum in zip(buckets["bounds"], buckets["cumulative"]):
                out[key(name + "_bucket", {**labels, "le": repr(float(bound))})] = float(cum)
            out[key(name + "_bucket", {**labels, "le": "+Inf"})] = float(buckets["count"])
            out[key(name + "_count", labels)] = float(buckets["count"])
        else:
            q = s["window"]["quantiles"]
            for level, field in QUANTILES.items():
                v = math.nan if q is None else float(q[field])
                out[key(name, {**labels, "quantile": repr(float(level))})] = v
            out[key(name + "_count", labels)] = float(s["lifetime"]["count"])
        out[key(name + "_sum", labels)] = float(s["lifetime"]["sum"])
    return out


def normalise_le(labels):
    # The parsers keep label text as written; compare bounds as floats.
    for name in ("le", "quantile"):
        if name in labels and labels[name] != "+Inf":
            labels = {**labels, name: repr(float(labels[name]))}
    return labels


def compare(fmt, families, expected):
    got = {}
    for fam in families:
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            k = key(s.name, normalise_le(dict(s.labels)))
            if k in got:
                problem(f"{fmt}: duplicate series {k}")
            got[k] = float(s.value)
    for k, v in expected.items():
        if k not in got:
            problem(f"{fmt}: missing series {k}")
        elif not same(v, got[k]):
            problem(f"{fmt}: {k} is {got[k]!r}, snapshot says {v!r}")
    for k in got.keys() - expected.keys():
        problem(f"{fmt}: unexpected series {k}")
    return len(got)


LE = re.compile(r'(^|,)le="[^"]*"')


def own_checks(fmt, text):
    """Duplicates, contiguity and cumulative buckets, from the raw text."""
    lines = text.splitlines()
    if fmt == "openmetrics" and (not lines or lines[-1] != "# EOF"):
        problem("openmetrics: does not end with '# EOF'")
    seen_series = set()
    finished_families = set()
    family = None
    last_bucket = {}  # (histogram, labels without le) -> last cumulative count
    counts = {}
    for line in lines:
        if line.startswith("# TYPE "):
            name = line.split(" ")[2]
            if name in finished_families or name == family:
                problem(f"{fmt}: family {name} is not contiguous")
            if family is not None:
                finished_families.add(family)
            family = name
            continue
        if line.startswith("#") or not line:
            continue
        series, _, value = line.rpartition(" ")
        if series in seen_series:
            problem(f"{fmt}: series written twice: {series}")
        seen_series.add(series)
        name, _, labels = series.partition("{")
        labels = labels[:-1] if labels.endswith("}") else labels
        if name.endswith("_bucket"):
            group = (name[: -len("_bucket")], LE.sub("", labels).lstrip(","))
            v = float(value)
            if v < last_bucket.get(group, 0):
                problem(f"{fmt}: bucket counts go down at {series}")
            last_bucket[group] = v
            if 'le="+Inf"' not in labels:
                continue
        elif name.endswith("_count"):
            counts[(name[: -len("_count")], labels)] = float(value)
    for group, v in last_bucket.items():
        if counts.get(group) != v:
            problem(f"{fmt}: {group} +Inf bucket {v} but _count {counts.get(group)}")
    return len(seen_series)


def check_jsonl(path):
    n = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line:
            continue
        try:
            snap = json.loads(line)
        except ValueError as e:
            problem(f"{path}:{number}: not JSON: {e}")
            continue
        n += 1
        for field, typ in SNAPSHOT_FIELDS.items():
            if not isinstance(snap.get(field), typ):
                problem(f"{path}:{number}: field {field} missing or not {typ}")
        if "first_error" not in snap:
            problem(f"{path}:{number}: field first_error missing")
        for c in snap.get("counters", []):
            if not {"name", "labels", "value", "rate"} <= c.keys():
                problem(f"{path}:{number}: counter fields {sorted(c)}")
        for g in snap.get("gauges", []):
            if not {"name", "labels", "value"} <= g.keys():
                problem(f"{path}:{number}: gauge fields {sorted(g)}")
        for h in snap.get("histograms", []):
            s = h.get("summary", {})
            if not {"window", "lifetime", "saturated", "dropped"} <= s.keys():
                problem(f"{path}:{number}: histogram summary fields {sorted(s)}")
    if n == 0:
        problem(f"{path}: no snapshot lines")
    return n


def readme_plugin_metrics():
    """Every metric name in the first column of the README's plug-in tables."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Plug-ins\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for token in re.findall(r"`([a-z_][a-z0-9_]*)(?:\{[^}]*\})?`", first):
            names.add(token)
    if len(names) < 40:
        problem(f"only {len(names)} plug-in metric names found in the README tables")
    return sorted(names)


def check_readme_plugin_metrics(families):
    """No sample the README lists for a built-in plug-in is missing."""
    present = set()
    for family in families:
        for sample in family.samples:
            present.add(sample.name)
    names = readme_plugin_metrics()
    for name in names:
        found = any(
            p == name or p in (name + "_count", name + "_sum", name + "_bucket", name + "_total")
            for p in present
        )
        if not found:
            problem(f"README lists plug-in metric {name}, the scrape has no sample of it")
    return len(names)


def main():
    out = Path(sys.argv[1])
    snap = json.loads((out / "snapshot.json").read_text(encoding="utf-8"))
    expected = expected_samples(snap)
    prom = (out / "metrics.prom").read_text(encoding="utf-8")
    om = (out / "metrics.om").read_text(encoding="utf-8")
    try:
        n = compare("prometheus 0.0.4", list(parse_prometheus(prom)), expected)
        print(f"prometheus_client.parser: {n} samples parsed, values match the snapshot")
    except Exception as e:  # the parser's own rejection
        problem(f"prometheus 0.0.4 rejected by prometheus_client.parser: {e!r}")
    try:
        n = compare("openmetrics", list(parse_openmetrics(om)), expected)
        print(f"prometheus_client.openmetrics.parser: {n} samples parsed, values match")
    except Exception as e:
        problem(f"OpenMetrics rejected by prometheus_client.openmetrics.parser: {e!r}")
    for fmt, text in (("prometheus", prom), ("openmetrics", om)):
        n = own_checks(fmt, text)
        print(f"{fmt}: {n} series, none repeated, families contiguous, buckets cumulative")
    n = check_readme_plugin_metrics(list(parse_prometheus(prom)))
    print(f"every one of the {n} plug-in metrics the README lists is in the scrape")
    n = check_jsonl(out / "snapshots.jsonl")
    print(f"snapshots.jsonl: {n} lines, all JSON with the documented fields")
    if problems:
        print(f"{len(problems)} problem(s)")
        sys.exit(1)
    print("all exposition checks passed")


if __name__ == "__main__":
    main()
