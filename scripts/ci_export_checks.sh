#!/usr/bin/env bash
# Checks vitals' exporter output with the real tools: promtool (Debian
# package `prometheus`), the Python prometheus_client parsers, and Python's
# json. Self-contained: installs what is missing, builds the `exposition`
# example and the generated corpus (tests/properties_corpus.rs), runs every
# check, exits non-zero on any failure. Also installs
# `prometheus-pushgateway` and PyPI `opentelemetry-proto` for the push
# tests that .ci/run runs next.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "tools"
if ! command -v promtool >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq prometheus >/dev/null
fi
command -v promtool
promtool --version | head -1
# The push tests (tests/push_receivers.rs) start a real Prometheus with its
# remote-write receiver and a real Pushgateway.
if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq prometheus-pushgateway >/dev/null
fi
# openssl creates the certificates of the HTTPS push test (tests/push_tls.rs).
if ! command -v openssl >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq openssl >/dev/null
fi
command -v prometheus prometheus-pushgateway
prometheus-pushgateway --version 2>&1 | head -1
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    # A Debian-managed Python refuses plain pip installs (PEP 668).
    python3 -m pip install -q prometheus_client \
        || python3 -m pip install -q --break-system-packages prometheus_client
fi
python3 -c 'import prometheus_client, importlib.metadata as m; print("prometheus_client", m.version("prometheus_client"))'
# The protobuf runtime decodes remote-write bodies in tests/push_receivers.rs
# (scripts/decode_write_request.py).
if ! python3 -c 'import google.protobuf' 2>/dev/null; then
    python3 -m pip install -q protobuf \
        || python3 -m pip install -q --break-system-packages protobuf
fi
python3 -c 'import google.protobuf as p; print("protobuf", p.__version__)'
# HdrHistogram's Python implementation reads the interval logs of
# tests/hdr_log.rs.
if ! python3 -c 'import hdrh' 2>/dev/null; then
    python3 -m pip install -q hdrhistogram \
        || python3 -m pip install -q --break-system-packages hdrhistogram
fi
python3 -c 'import importlib.metadata as m; print("hdrhistogram", m.version("hdrhistogram"))'
# The OTLP receiver of tests/otlp_receiver.rs (scripts/otlp_receiver.py)
# decodes with the generated classes of PyPI opentelemetry-proto.
if ! python3 -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' 2>/dev/null; then
    python3 -m pip install -q opentelemetry-proto \
        || python3 -m pip install -q --break-system-packages opentelemetry-proto
fi
python3 -c 'import importlib.metadata as m; print("opentelemetry-proto", m.version("opentelemetry-proto"))'

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

step "render every format of the test registry"
cargo run --quiet --example exposition -- "$out"

step "promtool check metrics (errors and lint warnings both fail)"
# promtool exits non-zero on lint problems too; keep its output for the log.
if ! promtool check metrics < "$out/metrics.prom" > "$out/promtool.log" 2>&1; then
    cat "$out/promtool.log"
    echo "promtool rejected the 0.0.4 text"
    exit 1
fi
if [ -s "$out/promtool.log" ]; then
    cat "$out/promtool.log"
    echo "promtool printed warnings"
    exit 1
fi
echo "promtool: no errors, no warnings"

step "the serve example, scraped live: promtool check metrics (errors and lint warnings both fail), moving counters"
cargo build --quiet --features http --example serve
serve_bin="${CARGO_TARGET_DIR:-target}/debug/examples/serve"
VITALS_PORT=0 VITALS_SERVE_SECONDS=60 "$serve_bin" > "$out/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
    grep -q '^serving ' "$out/serve.log" && break
    sleep 0.1
done
url="$(sed -n 's|^serving \(http://[^ ]*/metrics\).*|\1|p' "$out/serve.log")"
if [ -z "$url" ]; then
    cat "$out/serve.log"
    kill "$serve_pid" 2>/dev/null || true
    echo "the serve example did not start"
    exit 1
fi
# Two scrapes 2.5 s apart (after the plug-ins' second reading): the second
# is linted, and the request counters must have moved between them.
serve_status=0
python3 - "$url" "$out" <<'PY' || serve_status=$?
import sys, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

url, out = sys.argv[1], sys.argv[2]
def scrape():
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()
def requests(text):
    return sum(s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.name == "api_requests_total")
time.sleep(1.5)
first = scrape()
time.sleep(2.5)
second = scrape()
open(f"{out}/serve.prom", "w").write(second)
a, b = requests(first), requests(second)
print(f"api_requests_total: {a:.0f} then {b:.0f}")
if not b > a > 0:
    sys.exit("the serve example's request counters do not move")
PY
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
if [ "$serve_status" -ne 0 ]; then
    cat "$out/serve.log"
    exit 1
fi
if ! promtool check metrics < "$out/serve.prom" > "$out/promtool-serve.log" 2>&1 \
    || [ -s "$out/promtool-serve.log" ]; then
    cat "$out/promtool-serve.log"
    echo "promtool: the serve example's scrape has errors or lint warnings"
    exit 1
fi
echo "promtool: serve example scrape ($(wc -l < "$out/serve.prom") lines): no errors, no warnings"

step "Python parsers, values, duplicates, buckets, JSON lines"
python3 scripts/check_exposition.py "$out"

# A corpus of generated registries (tests/properties_corpus.rs: the
# property tests' generators, a fixed seed unless VITALS_CORPUS_SEED is set):
# any names and label values, clashing names, small limits, plug-in samples
# of any value. Every check runs over all of it before the step fails.
corpus="$out/corpus"
size="${VITALS_CORPUS_SIZE:-200}"
failed=()
step "generated corpus: $size registries, also checked by the strict in-test parser"
if ! VITALS_CORPUS_DIR="$corpus" VITALS_CORPUS_SIZE="$size" \
    cargo test --quiet --all-features --test properties_corpus; then
    failed+=("strict in-test parser")
fi

step "promtool check metrics over the corpus (errors fail; lint warnings counted)"
# Generated names draw lint warnings by design (no help, camelCase, ':',
# "_total" on a gauge, `le` on a gauge...): exit status 3 is lint only.
# Any other failure, such as "error while linting", is a parse error.
errors=0
lint=0
for prom in "$corpus"/*.prom; do
    status=0
    promtool check metrics < "$prom" > "$out/promtool.log" 2>&1 || status=$?
    case "$status" in
        0) ;;
        3) lint=$((lint + 1)) ;;
        *)
            errors=$((errors + 1))
            echo "$prom: promtool exit $status"
            head -c 2000 "$out/promtool.log"
            echo
            ;;
    esac
done
echo "promtool: $errors file(s) with errors, $lint with lint warnings only, of $(ls "$corpus"/*.prom | wc -l)"
if [ "$errors" -gt 0 ]; then
    failed+=("promtool")
fi

step "Python parsers over the corpus: exactly the expected samples; strict JSON lines"
if ! python3 scripts/check_corpus.py "$corpus"; then
    failed+=("prometheus_client parsers / json")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo "corpus checks failed: ${failed[*]}"
    exit 1
fi

step "export checks passed"
