#!/usr/bin/env python3
"""Checks the generated corpus written by `tests/properties_corpus.rs`.

    python3 scripts/check_corpus.py DIR

For every registry NNN in DIR:

* `NNN.prom` parses with `prometheus_client.parser` and `NNN.om` with the
  strict `prometheus_client.openmetrics.parser`, and what they read is
  exactly `NNN.expected.json`: the same samples with the same label values
  and values (and, for OpenMetrics, the same families, types, help and
  units). Sample names and values are compared as the parsers return them.
* (The structure itself, no series twice, families contiguous, buckets
  cumulative, `# EOF`, is checked by the strict parser in the tests, which
  knows each family's type; `check_exposition.own_checks` guesses types
  from sample names and splits lines on more than `\n`, which generated
  names and label values defeat.)
* Every line of `NNN.jsonl` is strict JSON (no NaN or Infinity tokens), an
  object with the documented snapshot fields, whose gauges and samples are
  numbers or the strings "NaN", "+Inf", "-Inf", and whose histogram sums and
  counts are numbers.

`promtool check metrics` runs over the `.prom` files from
`scripts/ci_export_checks.sh`. Exits non-zero, printing every problem (the
first 50 in full), if anything is off.
"""

import json
import math
import sys
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_exposition  # noqa: E402  (the documented snapshot fields)

problems = []


def problem(msg):
    problems.append(msg)
    if len(problems) <= 50:
        print("FAIL:", msg[:2000])


def number(text):
    return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}.get(text) or float(text)


def same_number(a, b):
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def label_key(labels):
    """Labels as a hashable key; `le` and `quantile` values that are numbers
    compared as numbers (`1` and `1.0` are one bound)."""
    out = []
    for k, v in labels:
        if k in ("le", "quantile"):
            try:
                v = repr(number(v))
            except ValueError:
                pass  # a counter's or gauge's own label of that name
        out.append((k, v))
    return tuple(sorted(out))


def expected_samples(families):
    out = {}
    for f in families:
        for s in f["samples"]:
            key = (s["name"], label_key(s["labels"]))
            if key in out:
                problem(f"expected.json lists {key} twice")
            out[key] = s["value"]
    return out


def compare_samples(where, parsed_families, families):
    want = expected_samples(families)
    got = {}
    for fam in parsed_families:
        for s in fam.samples:
            key = (s.name, label_key(s.labels.items()))
            if key in got:
                problem(f"{where}: the parser read {key} twice")
            got[key] = s.value
    for key, value in want.items():
        if key not in got:
            problem(f"{where}: missing {key}")
        elif not same_number(got[key], number(value)):
            problem(f"{where}: {key} read as {got[key]!r}, expected {value}")
    for key in got.keys() - want.keys():
        problem(f"{where}: unexpected {key}")


def compare_openmetrics_families(where, parsed_families, families):
    got = [(f.name, f.type, f.documentation, f.unit) for f in parsed_families]
    want = [(f["name"], f["type"], f["help"] or "", f["unit"] or "") for f in families]
    if got != want:
        problem(f"{where}: families read {got}, expected {want}")


def read(path):
    # Bytes, then UTF-8: text mode would turn a CR inside a label value
    # into a line break.
    return path.read_bytes().decode("utf-8")


def check_text(path, fmt, parse, families):
    text = read(path)
    try:
        parsed = list(parse(text))
    except Exception as e:  # the parser's own rejection
        problem(f"{path}: rejected by the {fmt} parser: {e!r}")
        return
    compare_samples(str(path), parsed, families)
    if fmt == "openmetrics":
        compare_openmetrics_families(str(path), parsed, families)


def reject_constant(token):
    raise ValueError(f"non-standard JSON token {token}")


def is_value(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) or v in ("NaN", "+Inf", "-Inf")


def check_jsonl(path):
    lines = read(path).split("\n")
    if lines[-1] != "" or len(lines) < 2:
        problem(f"{path}: does not end with a newline or has no line")
    for number_, line in enumerate(lines[:-1], 1):
        where = f"{path}:{number_}"
        try:
            snap = json.loads(line, parse_constant=reject_constant)
        except ValueError as e:
            problem(f"{where}: not strict JSON: {e}")
            continue
        if not isinstance(snap, dict):
            problem(f"{where}: not an object")
            continue
        for field, typ in check_exposition.SNAPSHOT_FIELDS.items():
            if not isinstance(snap.get(field), typ):
                problem(f"{where}: field {field} missing or not {typ}")
        for g in snap.get("gauges", []):
            if not is_value(g.get("value")):
                problem(f"{where}: gauge {g.get('name')!r} value {g.get('value')!r}")
        for p in snap.get("plugins", []):
            for s in p.get("samples", []):
                if not is_value(s.get("value")):
                    problem(f"{where}: plug-in sample {s.get('name')!r} value {s.get('value')!r}")
        for h in snap.get("histograms", []):
            s = h.get("summary", {})
            for part in ("window", "lifetime"):
                stats = s.get(part, {})
                if not isinstance(stats.get("count"), int):
                    problem(f"{where}: histogram {h.get('name')!r} {part}.count {stats.get('count')!r}")
                if not isinstance(stats.get("sum"), (int, float)):
                    problem(f"{where}: histogram {h.get('name')!r} {part}.sum {stats.get('sum')!r}")


def main():
    out = Path(sys.argv[1])
    registries = sorted(p.name[: -len(".expected.json")] for p in out.glob("*.expected.json"))
    if not registries:
        problem(f"{out}: no registries")
    for name in registries:
        want = json.loads(read(out / f"{name}.expected.json"))
        check_text(out / f"{name}.prom", "prometheus", parse_prometheus, want["prometheus"])
        check_text(out / f"{name}.om", "openmetrics", parse_openmetrics, want["openmetrics"])
        check_jsonl(out / f"{name}.jsonl")
    if problems:
        print(f"{len(problems)} problem(s) in {len(registries)} registries")
        sys.exit(1)
    print(f"{len(registries)} registries: both parsers read exactly what was expected; JSON lines strict")


if __name__ == "__main__":
    main()
