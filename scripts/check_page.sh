#!/usr/bin/env bash
# The HTTP endpoint's live page in a real browser: installs Debian's
# `chromium` and npm's `playwright-core` (scripts/page) when missing, runs
# the `live_page` example (a simulated service behind basic auth) on
# loopback, and lets scripts/page/check_page.mjs open the page, wait for
# every chart to draw, compare every value shown with the /metrics.json the
# page rendered, and save a screenshot (target/ci-artifacts/page.png); then
# the same for a collector without exponential buckets, and for a program
# whose page reads a History.
#
# Without Chromium or Node it skips with a message, unless
# VITALS_REQUIRE_TOOLS=1 (as in CI), when that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
required() { [ "${VITALS_REQUIRE_TOOLS:-}" = 1 ]; }
missing() {
    if required; then
        echo "$1 is required (VITALS_REQUIRE_TOOLS=1) but could not be installed"
        exit 1
    fi
    echo "skipping the page check: $1 is not installed"
    exit 0
}

step "tools: chromium, node, playwright-core"
if ! command -v chromium >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    if required; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium nodejs npm >/dev/null
    fi
fi
command -v chromium >/dev/null 2>&1 || missing chromium
command -v node >/dev/null 2>&1 || missing node
command -v npm >/dev/null 2>&1 || missing npm
chromium --version 2>/dev/null | head -1 || true
node --version
if [ ! -d scripts/page/node_modules/playwright-core ]; then
    (cd scripts/page && npm ci --no-audit --no-fund --loglevel=error) || missing playwright-core
fi

step "build the live_page example"
cargo build --quiet --all-features --example live_page
example="${CARGO_TARGET_DIR:-target}/debug/examples/live_page"

artifacts=target/ci-artifacts
mkdir -p "$artifacts"
pids=()
logs=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "${logs[@]}"' EXIT

# Starts the example with the extra environment given; sets $url.
start_example() {
    local log
    log="$(mktemp)"
    logs+=("$log")
    env VITALS_PORT=0 VITALS_SERVE_SECONDS=300 VITALS_RECENT_INTERVAL_MS=500 "$@" \
        "$example" >"$log" 2>&1 &
    pids+=($!)
    url=""
    for _ in $(seq 1 100); do
        url="$(grep -o 'http://127[^ ]*' "$log" || true)"
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$log"; echo "the example did not start"; exit 1; }
    echo "serving $url"
}

credential="page-check:$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
start_example VITALS_BASIC_AUTH="$credential"

step "without the credential: 401 on every route"
for path in / /metrics /metrics.json /health "/api/query?name=jobs_queued"; do
    code="$(node -e 'fetch(process.argv[1]).then(r => console.log(r.status, r.headers.get("www-authenticate")))' "${url%/}$path")"
    echo "$path: $code"
    case "$code" in 401\ Basic*) ;; *) echo "expected 401 with a Basic challenge"; exit 1 ;; esac
done

step "the page in headless Chromium"
node scripts/page/check_page.mjs "$url" "$artifacts/page.png" "$credential"

step "the page of a collector without exponential buckets (the status line's p99 is a bound)"
start_example VITALS_LIFETIME_BUCKETS=0
node scripts/page/check_page.mjs "$url" "$artifacts/page-no-buckets.png"

step "the page of a program with a History (its charts read the History)"
start_example VITALS_HISTORY=1
node scripts/page/check_page.mjs "$url" "$artifacts/page-history.png" "" history
