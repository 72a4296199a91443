#!/usr/bin/env bash
# Checks vitals' exporter output with the real tools: promtool (Debian
# package `prometheus`), the Python prometheus_client parsers, and Python's
# json. Self-contained: installs what is missing, builds the `exposition`
# example, runs every check, exits non-zero on any failure.
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
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    # A Debian-managed Python refuses plain pip installs (PEP 668).
    python3 -m pip install -q prometheus_client \
        || python3 -m pip install -q --break-system-packages prometheus_client
fi
python3 -c 'import prometheus_client, importlib.metadata as m; print("prometheus_client", m.version("prometheus_client"))'

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

step "Python parsers, values, duplicates, buckets, JSON lines"
python3 scripts/check_exposition.py "$out"

step "export checks passed"
