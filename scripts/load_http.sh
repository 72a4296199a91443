#!/usr/bin/env bash
# Load test of the HTTP endpoint (run by hand, not in CI): wrk against
# /metrics for 30 s with 16 connections on a registry of 1,000 counters and
# 100 histograms, once with the default shared-snapshot time (500 ms) and
# once with none (every scrape takes and renders its own snapshot). Prints
# requests/s, latency p99, errors and the server's peak RSS, beside the rate
# at which snapshot + render runs in a loop on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-30s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --features http --example serve
BIN=target/release/examples/serve

"$BIN" --load --loop 5 & LOOP=$!
sleep 7; kill $LOOP 2>/dev/null || true; wait $LOOP 2>/dev/null || true

for TTL in 500 0; do
  VITALS_TTL_MS=$TTL VITALS_PORT=9898 "$BIN" --load > /tmp/vitals-serve.log & SERVER=$!
  sleep 1
  echo "== shared-snapshot time ${TTL} ms"
  wrk -t2 -c16 -d"$DURATION" --latency http://127.0.0.1:9898/metrics | grep -E "Requests/sec|99%|Socket errors|Non-2xx|requests in"
  echo "server peak RSS: $(grep VmHWM /proc/$SERVER/status | awk '{print $2, $3}')"
  kill $SERVER; wait $SERVER 2>/dev/null || true
done
