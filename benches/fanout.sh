#!/usr/bin/env bash
# Switchboard's fan-out benchmark: one examples/bench_server hub (in-process
# broker) pinned to CPU 0, the load generator pinned to CPU 1. For each shape
# (subscribers x publications) a freshly started hub: C connections subscribe
# to a topic, plain and positioned (each on a topic of its own, same run),
# one more connection publishes N publications with the contract's
# `publish`, first as fast as its window of K calls allows, then at a fixed
# rate for publish-to-delivery latency. Prints one table and writes it under
# target/bench-results/.
#
#   benches/fanout.sh            # 10,000 x 100, 1,000 x 1,000, 100 x 10,000
#   QUICK=1 benches/fanout.sh    # a smoke run (smaller shapes)
#
# Overridable (env): SHAPES ("C:N C:N ..."), K, ROUNDS, DELIVERY_RATE (the
# latency run publishes DELIVERY_RATE / C publications per second, so every
# shape delivers about the same number per second), SERVER_CPU, CLIENT_CPU,
# SKIP_BUILD=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${QUICK:-0}" == 1 ]]; then
    : "${SHAPES:=1000:20 100:200}" "${ROUNDS:=1}"
fi
SHAPES="${SHAPES:-10000:100 1000:1000 100:10000}"
K="${K:-64}"
ROUNDS="${ROUNDS:-3}"
DELIVERY_RATE="${DELIVERY_RATE:-1000000}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
OUT_DIR="$TARGET_DIR/bench-results"
STAMP="$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT_DIR/fanout-$STAMP.jsonl"
TABLE="$OUT_DIR/fanout-$STAMP.txt"
mkdir -p "$OUT_DIR"
: >"$RESULTS"

log() { printf '[fanout.sh] %s\n' "$*" >&2; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p switchboard-loadgen --bins
    cargo build --release --example bench_server
fi


rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

for shape in $SHAPES; do
    C="${shape%%:*}" N="${shape##*:}"
    RATE=$(( DELIVERY_RATE / C > 0 ? DELIVERY_RATE / C : 1 ))
    P="$(free_port)"
    taskset -c "$SERVER_CPU" "$BIN/examples/bench_server" --addr "127.0.0.1:$P" \
        --max-connections $(( 2 * C + 100 )) --history 1000 >>"$OUT_DIR/fanout-server.log" 2>&1 &
    SP=$!
    PIDS+=("$SP")
    wait_port "$P" "$SP" || { log "bench_server did not listen on $P (see $OUT_DIR/fanout-server.log)"; exit 1; }
    BEFORE="$(rss_kib "$SP" VmRSS)"
    for mode in full rate; do
        rate=0
        [[ "$mode" == rate ]] && rate="$RATE"
        line="$(taskset -c "$CLIENT_CPU" "$BIN/loadgen" fanout --url "ws://127.0.0.1:$P/" -c "$C" -n "$N" -k "$K" \
            --rounds "$ROUNDS" --rate "$rate" --kind both --pid "$SP" 2>>"$OUT_DIR/fanout-loadgen.log" | grep '^RESULT ' || true)"
        [[ -n "$line" ]] || { log "$C x $N/$mode: no RESULT (see $OUT_DIR/fanout-loadgen.log)"; continue; }
        PEAK="$(rss_kib "$SP" VmHWM)"
        printf '{"c":%s,"n":%s,"run":"%s","rate":%s,"rss_before_kib":%s,"rss_peak_kib":%s,"result":%s}\n' \
            "$C" "$N" "$mode" "$rate" "$BEFORE" "$PEAK" "${line#RESULT }" >>"$RESULTS"
        log "$C x $N $mode done"
    done
    cleanup
done

python3 - "$RESULTS" "$ROUNDS" >"$TABLE" <<'PY'
import json, sys
path, rounds = sys.argv[1:3]
rows = [json.loads(l) for l in open(path)]
by = {(r["c"], r["n"], r["run"]): r for r in rows}
print(f"Fan-out, one hub: plain and positioned subscribers on topics of their own, median of {rounds} rounds")
print("(full: as fast as the publisher's window allows; rate: a fixed rate, C x rate deliveries/s, for latency;")
print(" CPU ns per delivery: server CPU time over deliveries, both kinds; memory: peak RSS growth per subscriber connection)")
print()
print("| subscribers x publications | kind | deliveries/s (full) | server CPU ns per delivery | latency p50 / p99 / p999 ms (at rate) | peak RSS per subscriber |")
print("|---|---|---|---|---|---|")
for (c, n, run), r in by.items():
    if run != "full":
        continue
    res = r["result"]
    kinds = res.get("kinds", {})
    # The kinds run one after the other: CPU time per delivery over both.
    per = [1 / k["deliveries_per_sec"] for k in kinds.values() if k["deliveries_per_sec"]]
    ns = res.get("server_cpu", 0) * sum(per) / len(per) * 1e9 if per else float("nan")
    slow = by.get((c, n, "rate"), {})
    mem = (slow.get("rss_peak_kib", r["rss_peak_kib"]) - r["rss_before_kib"]) * 1024 / c
    for kind, k in kinds.items():
        lat = slow.get("result", {}).get("kinds", {}).get(kind, {}).get("latency_us", {})
        p = [lat.get(q, float("nan")) / 1000 for q in ("p50", "p99", "p999")]
        ok = "" if res.get("ok") else " (errors: %s)" % res.get("first_error")
        rate = slow.get("rate", "?")
        print(f"| {c:,} x {n:,} | {kind} | {k['deliveries_per_sec']:,.0f}{ok} | {ns:.0f} | {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} (at {rate}/s) | {mem:,.0f} B |")
PY
cat "$TABLE"
log "results: $RESULTS, table: $TABLE"
