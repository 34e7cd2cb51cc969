#!/usr/bin/env bash
# Runs every test Switchboard has, installing what they need on a fresh machine.
# This is the README's test command, and CI runs exactly it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---- Redis, for the cluster tests --------------------------------------------
# Each test starts its own throwaway redis-server on a free loopback port
# (tests/support/redis.rs); Debian's package is installed here when missing.
if ! command -v redis-server >/dev/null 2>&1; then
    echo "scripts/test.sh: installing redis-server for the cluster tests" >&2
    as_root apt-get update
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends redis-server
fi

cargo test --workspace

# ---- The JavaScript client (client/js) and the dashboard in a browser ------
# Needs Node >= 20 (with npm) and Debian's chromium, which is installed here
# when missing. The unit tests run against a live hub (examples/js_test_hub.rs),
# the end-to-end test drives headless Chromium on examples/dashboard.rs.

if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "scripts/test.sh: the JavaScript tests need Node.js 20 or newer (with npm) on PATH" >&2
    exit 1
fi

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "scripts/test.sh: installing chromium for the browser test" >&2
    as_root apt-get update
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends chromium
fi
export CHROMIUM

# playwright-core (drives the installed Chromium; it downloads no browser),
# typescript (checks switchboard.d.ts) and jayson (an old JSON-RPC 1.0 client
# against our hub): devDependencies only, pinned by the lock.
if [ ! -f client/js/node_modules/.package-lock.json ] ||
    [ client/js/package-lock.json -nt client/js/node_modules/.package-lock.json ]; then
    (cd client/js && npm ci --no-audit --no-fund)
fi

# Node 20 has a WebSocket client only behind a flag; Node 22 has it by default.
NODE_FLAGS=()
if [ "$(node -e 'process.stdout.write(typeof WebSocket)')" != "function" ]; then
    NODE_FLAGS+=(--experimental-websocket)
fi

# Built here so that compile time never counts against a test's hang guards.
# (client/js/test/jayson.test.mjs runs `switchboard serve --jsonrpc1`.)
cargo build --example js_test_hub --example dashboard --bin switchboard

(cd client/js && npx --no-install tsc -p test/types)

# The wrappers `switchboard codegen ts` generates (the dashboard's checked-in
# examples/dashboard/api.d.ts, which tests/dashboard_api.rs keeps up to date,
# and the generator's fixture) compile and are usable...
(cd client/js && npx --no-install tsc -p test/generated)
# ...and catch a param of the wrong type: this project must fail, with
# exactly this one error (so that it cannot pass for another reason).
expected="test/generated-wrong/wrong.ts(11,39): error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'."
wrong_status=0
wrong_output=$(cd client/js && npx --no-install tsc -p test/generated-wrong 2>&1) || wrong_status=$?
if [ "$wrong_status" -eq 0 ] || [ "$wrong_output" != "$expected" ]; then
    echo "scripts/test.sh: tsc -p client/js/test/generated-wrong must fail with exactly:" >&2
    echo "  $expected" >&2
    echo "it exited $wrong_status, saying:" >&2
    echo "$wrong_output" >&2
    exit 1
fi

node "${NODE_FLAGS[@]}" --test client/js/test/
node "${NODE_FLAGS[@]}" --test client/js/e2e/
