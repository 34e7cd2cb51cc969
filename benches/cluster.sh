#!/usr/bin/env bash
# Switchboard's cluster benchmark: fan-out through Redis. One redis-server and
# three examples/bench_server hubs (--redis), subscribers spread over the
# three, the publisher on the first; side by side in the same run with one hub
# alone (in-process broker) and one hub on Redis. Servers and Redis are pinned
# to CPU 0, the load generator to CPU 1. Prints one table and writes it under
# target/bench-results/.
#
#   benches/cluster.sh            # C=300 subscribers, N=2000 publications, 3 rounds
#   QUICK=1 benches/cluster.sh    # a smoke run
#
# Overridable (env): C, N, K, RATE (publications/s of the latency run), ROUNDS,
# SERVER_CPU, CLIENT_CPU, SKIP_BUILD=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${QUICK:-0}" == 1 ]]; then
    : "${C:=30}" "${N:=200}" "${ROUNDS:=1}" "${RATE:=500}"
fi
C="${C:-300}"
N="${N:-2000}"
K="${K:-64}"
RATE="${RATE:-2000}"
ROUNDS="${ROUNDS:-3}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
OUT_DIR="$TARGET_DIR/bench-results"
STAMP="$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT_DIR/cluster-$STAMP.jsonl"
TABLE="$OUT_DIR/cluster-$STAMP.txt"
mkdir -p "$OUT_DIR"
: >"$RESULTS"

log() { printf '[cluster.sh] %s\n' "$*" >&2; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

command -v redis-server >/dev/null || { log "needs redis-server (scripts/test.sh installs it)"; exit 1; }
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p switchboard-loadgen --bins
    cargo build --release --example bench_server
fi


LAST_PID=""
start() { # port command... (pinned to SERVER_CPU)
    local port="$1"
    shift
    taskset -c "$SERVER_CPU" "$@" >>"$OUT_DIR/cluster-servers.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_port "$port" "$LAST_PID" || { log "$1 did not listen on $port (see $OUT_DIR/cluster-servers.log)"; exit 1; }
}

# fanout NAME URL [--hub URL...]: a run at full speed, then one at RATE/s.
fanout() {
    local name="$1" url="$2" mode line
    shift 2
    for mode in full rate; do
        local rate=0
        [[ "$mode" == rate ]] && rate="$RATE"
        line="$(taskset -c "$CLIENT_CPU" "$BIN/loadgen" fanout --url "$url" "$@" -c "$C" -n "$N" -k "$K" \
            --rounds "$ROUNDS" --rate "$rate" --kind both 2>>"$OUT_DIR/cluster-loadgen.log" | grep '^RESULT ' || true)"
        [[ -n "$line" ]] || { log "$name/$mode: no RESULT (see $OUT_DIR/cluster-loadgen.log)"; continue; }
        printf '{"setup":"%s","run":"%s","result":%s}\n' "$name" "$mode" "${line#RESULT }" >>"$RESULTS"
        log "$name/$mode done"
    done
}

# 1. One hub, in-process broker.
P="$(free_port)"
start "$P" "$BIN/examples/bench_server" --addr "127.0.0.1:$P"
fanout "1 hub, in-process" "ws://127.0.0.1:$P/"
cleanup

# 2. Redis, one hub on it, then three.
RP="$(free_port)"
start "$RP" redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no
REDIS="redis://127.0.0.1:$RP"
P="$(free_port)"
start "$P" "$BIN/examples/bench_server" --addr "127.0.0.1:$P" --redis "$REDIS"
fanout "1 hub, Redis" "ws://127.0.0.1:$P/"
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
URLS=()
for _ in 1 2 3; do
    P="$(free_port)"
    start "$P" "$BIN/examples/bench_server" --addr "127.0.0.1:$P" --redis "$REDIS"
    URLS+=("ws://127.0.0.1:$P/")
done
fanout "3 hubs, Redis" "${URLS[0]}" --hub "${URLS[1]}" --hub "${URLS[2]}"
REDIS_CALLS="$(redis-cli -p "$RP" info commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|eval|fcall|publish|xadd):' || true)"
cleanup

python3 - "$RESULTS" "$C" "$N" "$RATE" "$REDIS_CALLS" >"$TABLE" <<'PY'
import json, sys
path, c, n, rate, calls = sys.argv[1:6]
rows = [json.loads(l) for l in open(path)]
print(f"Fan-out through Redis: C={c} subscribers, N={n} publications per round, plain and positioned")
print("(full: as fast as the publisher's window allows; rate: %s publications/s, for latency)" % rate)
print()
print("| setup | kind | deliveries/s (full) | ratio to 1 hub | p50 / p99 ms at %s/s |" % rate)
print("|---|---|---|---|---|")
base = {}
by = {}
for r in rows:
    by[(r["setup"], r["run"])] = r["result"]
for (setup, run), res in by.items():
    if run != "full":
        continue
    for kind, k in res.get("kinds", {}).items():
        d = k["deliveries_per_sec"]
        base.setdefault(kind, d)
        lat = by.get((setup, "rate"), {}).get("kinds", {}).get(kind, {}).get("latency_us", {})
        p50 = lat.get("p50", float("nan")) / 1000
        p99 = lat.get("p99", float("nan")) / 1000
        ok = "" if res.get("ok") else " (errors: %s)" % res.get("first_error")
        print(f"| {setup} | {kind} | {d:,.0f}{ok} | {d / base[kind]:.2f}x | {p50:.2f} / {p99:.2f} |")
print()
print("Redis commands over the whole Redis part (both setups):")
print(calls or "(none recorded)")
PY
cat "$TABLE"
log "results: $RESULTS, table: $TABLE"
