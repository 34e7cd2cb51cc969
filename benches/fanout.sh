#!/usr/bin/env bash
# Switchboard's fan-out benchmark, side by side with the raw baseline: one
# hub (examples/bench_server, in-process broker) or raw_baseline pinned to
# CPU 0, the load generator pinned to CPU 1. For each shape (subscribers x
# publications) and each server, a freshly started process: C connections
# subscribe to a topic (the hub: plain and positioned, each on a topic of its
# own, in turn; raw: plain, the only kind it has), one more connection
# publishes N publications with the contract's `publish`, first as fast as
# its window of K calls allows, then at a fixed rate for publish-to-delivery
# latency. Prints one table and writes it under target/bench-results/.
#
#   benches/fanout.sh            # 10,000 x 100, 1,000 x 1,000, 100 x 10,000
#   QUICK=1 benches/fanout.sh    # a smoke run (smaller shapes)
#
# Overridable (env): SHAPES ("C:N C:N ...", or "C:N:RATE" to give one
# shape's latency run its own rate in publications per second), K, ROUNDS
# (full-speed rounds), RATE_ROUNDS, DELIVERY_RATE (otherwise the latency run
# publishes DELIVERY_RATE / C publications per second, so every shape
# delivers about the same number per second), SERVER_CPU, CLIENT_CPU,
# SKIP_BUILD=1.
#
# The default DELIVERY_RATE, 50,000 deliveries/s, is what one core of the
# 2-core machine BENCHMARKS.md describes writes one frame at a time without
# falling behind (a loopback send costs that core 8-15 us); faster, every
# server coalesces publications and the latency measures its backlog.
#
# CPU per delivery (server and generator) is each process's CPU time over the
# rounds' delivery windows (first publish until every subscriber has counted
# its last; subscribing left out) divided by the deliveries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${QUICK:-0}" == 1 ]]; then
    : "${SHAPES:=1000:20 100:200}" "${ROUNDS:=1}"
fi
SHAPES="${SHAPES:-10000:100 1000:1000 100:10000}"
K="${K:-64}"
ROUNDS="${ROUNDS:-3}"
RATE_ROUNDS="${RATE_ROUNDS:-1}"
DELIVERY_RATE="${DELIVERY_RATE:-50000}"
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
    IFS=: read -r C N RATE <<<"$shape"
    [[ -n "$RATE" ]] || RATE=$(( DELIVERY_RATE / C > 0 ? DELIVERY_RATE / C : 1 ))
    for server in raw switchboard; do
        P="$(free_port)"
        if [[ "$server" == raw ]]; then
            kind=plain
            taskset -c "$SERVER_CPU" "$BIN/raw_baseline" --addr "127.0.0.1:$P" >>"$OUT_DIR/fanout-server.log" 2>&1 &
        else
            kind=both
            taskset -c "$SERVER_CPU" "$BIN/examples/bench_server" --addr "127.0.0.1:$P" \
                --max-connections $(( 2 * C + 100 )) --history 1000 >>"$OUT_DIR/fanout-server.log" 2>&1 &
        fi
        SP=$!
        PIDS+=("$SP")
        wait_port "$P" "$SP" || { log "$server did not listen on $P (see $OUT_DIR/fanout-server.log)"; exit 1; }
        BEFORE="$(rss_kib "$SP" VmRSS)"
        for mode in full rate; do
            wait_quiet
            rate=0 rounds="$ROUNDS"
            [[ "$mode" == rate ]] && rate="$RATE" rounds="$RATE_ROUNDS"
            line="$(taskset -c "$CLIENT_CPU" "$BIN/loadgen" fanout --url "ws://127.0.0.1:$P/" -c "$C" -n "$N" -k "$K" \
                --rounds "$rounds" --rate "$rate" --kind "$kind" --pid "$SP" 2>>"$OUT_DIR/fanout-loadgen.log" | grep '^RESULT ' || true)"
            [[ -n "$line" ]] || { log "$server $C x $N/$mode: no RESULT (see $OUT_DIR/fanout-loadgen.log)"; continue; }
            PEAK="$(rss_kib "$SP" VmHWM)"
            printf '{"server":"%s","c":%s,"n":%s,"run":"%s","rate":%s,"rss_before_kib":%s,"rss_peak_kib":%s,"result":%s}\n' \
                "$server" "$C" "$N" "$mode" "$rate" "$BEFORE" "$PEAK" "${line#RESULT }" >>"$RESULTS"
            log "$server $C x $N $mode done"
        done
        cleanup
    done
done

python3 - "$RESULTS" "$ROUNDS" "$RATE_ROUNDS" >"$TABLE" <<'PY'
import json, sys
path, rounds, rate_rounds = sys.argv[1:4]
rows = [json.loads(l) for l in open(path)]
by = {(r["server"], r["c"], r["n"], r["run"]): r for r in rows}
print(f"Fan-out, side by side with the raw baseline: the hub's plain and positioned subscribers on topics of their own,")
print(f"raw's plain ones (median of {rounds} rounds at full speed, {rate_rounds} at rate)")
print("(full: as fast as the publisher's window allows; rate: a fixed rate of publications/s, for latency;")
print(" vs raw: against raw's plain subscribers in the same run, higher is better for both (for latency: raw's p99 / ours);")
print(" CPU ns per delivery: each process's CPU time over the delivery windows / deliveries, at full speed;")
print(" memory: peak RSS growth per subscriber connection; noise: cores used by anything else, full / rate)")
print()
print("| subscribers x publications | server, kind | deliveries/s (full) | vs raw | server CPU ns per delivery | generator CPU ns per delivery | latency p50 / p99 / p999 ms (at rate) | p99 vs raw | peak RSS per subscriber | noise |")
print("|---|---|---|---|---|---|---|---|---|---|")
nan = float("nan")
num = lambda v: nan if v is None else v
for (server, c, n, run), r in by.items():
    if run != "full":
        continue
    res = r["result"]
    slow = by.get((server, c, n, "rate"), {})
    raw = by.get(("raw", c, n, "full"), {}).get("result", {}).get("kinds", {}).get("plain", {})
    raw_slow = by.get(("raw", c, n, "rate"), {}).get("result", {}).get("kinds", {}).get("plain", {})
    mem = (slow.get("rss_peak_kib", r["rss_peak_kib"]) - r["rss_before_kib"]) * 1024 / c
    noise = "%s / %s" % (res.get("other_cpu"), slow.get("result", {}).get("other_cpu"))
    for kind, k in res.get("kinds", {}).items():
        sk = slow.get("result", {}).get("kinds", {}).get(kind, {})
        lat = sk.get("latency_us", {})
        p = [lat.get(q, nan) / 1000 for q in ("p50", "p99", "p999")]
        ok = "" if res.get("ok") else " (errors: %s)" % res.get("first_error")
        rate = slow.get("rate", "?")
        vs = k["deliveries_per_sec"] / raw["deliveries_per_sec"] if raw.get("deliveries_per_sec") else nan
        raw_p99 = raw_slow.get("latency_us", {}).get("p99")
        p99_vs = raw_p99 / lat["p99"] if raw_p99 and lat.get("p99") else nan
        print(f"| {c:,} x {n:,} | {server}, {kind} | {k['deliveries_per_sec']:,.0f}{ok} | {vs:.2f}x | "
              f"{num(k.get('server_ns_per_delivery')):.0f} | {num(k.get('client_ns_per_delivery')):.0f} | "
              f"{p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} (at {rate}/s) | {p99_vs:.2f}x | {mem:,.0f} B | {noise} |")
PY
cat "$TABLE"
log "results: $RESULTS, table: $TABLE"
