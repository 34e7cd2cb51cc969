#!/usr/bin/env bash
# Switchboard's interfaces benchmark: the same examples/bench_server measured
# over its WebSocket (ws://) against JSON-RPC by HTTP POST with keep-alive
# (http://, same port), and against TLS (wss://, a second bench_server with a
# throwaway certificate). Servers pinned to SERVER_CPU, the load generator to
# CLIENT_CPU. Prints one table (each figure with its ratio to the ws figure of
# the same run) and writes it under target/bench-results/interfaces-*.txt.
#
#   benches/interfaces.sh             # every scenario, REPEAT=2 times
#   QUICK=1 benches/interfaces.sh     # a smoke run: short windows, small counts
#
# Overridable (env): REPEAT, CALLS_SECONDS, CALLS_WARMUP, FLOOD_N, FLOOD_ROUNDS,
# PLAIN_ADDR, TLS_ADDR, SERVER_CPU, CLIENT_CPU, QUIET_WAIT, QUIET_BUSY,
# LOADGEN_ARGS (extra arguments for every loadgen run), SKIP_BUILD=1 (use what
# target/release already has), ONLY (a regex over scenario names, e.g.
# ONLY='c64'). BENCHMARKS.md ("Interfaces") describes the rows.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${QUICK:-0}" == 1 ]]; then
    : "${REPEAT:=1}" "${CALLS_SECONDS:=1}" "${CALLS_WARMUP:=0.3}" "${FLOOD_N:=20000}" "${FLOOD_ROUNDS:=3}"
fi
REPEAT="${REPEAT:-2}"
CALLS_SECONDS="${CALLS_SECONDS:-5}"
CALLS_WARMUP="${CALLS_WARMUP:-1}"
FLOOD_N="${FLOOD_N:-100000}"
FLOOD_ROUNDS="${FLOOD_ROUNDS:-5}"
PLAIN_ADDR="${PLAIN_ADDR:-127.0.0.1:9010}"
TLS_ADDR="${TLS_ADDR:-127.0.0.1:9011}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
OUT_DIR="$TARGET_DIR/bench-results"
STAMP="$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT_DIR/interfaces-$STAMP.jsonl"
TABLE="$OUT_DIR/interfaces-$STAMP.txt"
CERTS="$OUT_DIR/interfaces-certs"
mkdir -p "$OUT_DIR"
: >"$RESULTS"

log() { printf '[interfaces.sh] %s\n' "$*" >&2; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# ------------------------------------------------------------------ build
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building the load generator and examples/bench_server (release)"
    cargo build --release -p switchboard-loadgen --bins
    cargo build --release --example bench_server
fi
for exe in "$BIN/loadgen" "$BIN/examples/bench_server"; do
    [[ -x "$exe" ]] || { log "$exe is missing (run without SKIP_BUILD=1)"; exit 1; }
done

# A throwaway CA and server certificate for 127.0.0.1, made for this run.
"$BIN/loadgen" gen-cert --out "$CERTS" >/dev/null

# ------------------------------------------------------------------ servers


# start_server NAME -> sets SERVER_PID; NAME is plain (ws and http on
# PLAIN_ADDR) or tls (wss on TLS_ADDR). Not called in $(...): the server
# must stay a child of this shell.
SERVER_PID=""
start_server() {
    local name="$1" addr args pid
    if [[ "$name" == tls ]]; then
        addr="$TLS_ADDR"
        args=(--addr "$addr" --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem")
    else
        addr="$PLAIN_ADDR"
        args=(--addr "$addr")
    fi
    taskset -c "$SERVER_CPU" "$BIN/examples/bench_server" "${args[@]}" >>"$OUT_DIR/interfaces-$name.log" 2>&1 &
    pid=$!
    wait_port "$addr" "$pid" || { log "bench_server ($name) did not listen on $addr (see $OUT_DIR/interfaces-$name.log)"; return 1; }
    PIDS+=("$pid")
    SERVER_PID="$pid"
}


# run_loadgen SCENARIO INTERFACE PID URL ARGS... : one run, its RESULT line appended.
run_loadgen() {
    local scenario="$1" interface="$2" pid="$3" url="$4" line
    shift 4
    [[ "$QUIET_WAIT" == 0 ]] || wait_quiet
    line=""
    while IFS= read -r l; do
        if [[ "$l" == "RESULT "* ]]; then line="$l"; else printf '    %s\n' "$l" >&2; fi
        # shellcheck disable=SC2086
    done < <(taskset -c "$CLIENT_CPU" "$BIN/loadgen" "$@" --url "$url" --ca "$CERTS/ca.pem" --pid "$pid" $LOADGEN_ARGS 2>&1 || true)
    if [[ -z "$line" ]]; then
        line='RESULT {"ok":false,"error":"no result line"}'
    fi
    printf '{"scenario":"%s","interface":"%s","result":%s}\n' "$scenario" "$interface" "${line#RESULT }" >>"$RESULTS"
    log "$scenario [$interface] ${line#RESULT }"
}

# SCENARIO|INTERFACE|ARGS: each scenario is measured on ws and on the
# interface it compares ws with, back to back in every repeat, so that
# machine noise hits both alike.
SCENARIOS=(
    "calls_c64_k1|ws|calls -c 64 -k 1 --bytes 64"
    "calls_c64_k1|http|http-calls -c 64 -k 1 --bytes 64"
    "calls_c1_k1|ws|calls -c 1 -k 1 --bytes 64"
    "calls_c1_k1|http|http-calls -c 1 -k 1 --bytes 64"
    "calls_c1_k16|ws|calls -c 1 -k 16 --bytes 64"
    "calls_c1_k16|http|http-calls -c 1 -k 16 --bytes 64"
    "calls_c1_k64|ws|calls -c 1 -k 64 --bytes 64"
    "calls_c1_k64|wss|calls -c 1 -k 64 --bytes 64"
    "calls_c64_k16|ws|calls -c 64 -k 16 --bytes 64"
    "calls_c64_k16|wss|calls -c 64 -k 16 --bytes 64"
    "flood_c1|ws|flood -c 1 -n $FLOOD_N --bytes 64 --rounds $FLOOD_ROUNDS"
    "flood_c1|wss|flood -c 1 -n $FLOOD_N --bytes 64 --rounds $FLOOD_ROUNDS"
)

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "servers on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU; repeat=$REPEAT calls=${CALLS_SECONDS}s after ${CALLS_WARMUP}s warm-up"

# Both servers up at once: an idle server costs nothing.
declare -A PID_OF
for s in plain tls; do
    start_server "$s" || exit 1
    PID_OF[$s]="$SERVER_PID"
done
for ((r = 1; r <= REPEAT; r++)); do
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r scenario interface args <<<"$entry"
        [[ -z "${ONLY:-}" || "$scenario" =~ $ONLY ]] || continue
        case "$interface" in
            ws) server=plain url="ws://$PLAIN_ADDR/" ;;
            http) server=plain url="http://$PLAIN_ADDR/" ;;
            wss) server=tls url="wss://$TLS_ADDR/" ;;
        esac
        if ! kill -0 "${PID_OF[$server]}" 2>/dev/null; then
            status=0
            wait "${PID_OF[$server]}" 2>/dev/null || status=$?
            log "WARNING: the $server server (pid ${PID_OF[$server]}) is gone (exit status $status): starting a new one"
            start_server "$server" || continue
            PID_OF[$server]="$SERVER_PID"
        fi
        if [[ "$args" == *calls* ]]; then
            # shellcheck disable=SC2086
            run_loadgen "$scenario" "$interface" "${PID_OF[$server]}" "$url" $args --seconds "$CALLS_SECONDS" --warmup "$CALLS_WARMUP"
        else
            # shellcheck disable=SC2086
            run_loadgen "$scenario" "$interface" "${PID_OF[$server]}" "$url" $args
        fi
    done
done
cleanup

# ------------------------------------------------------------------ table
python3 - "$RESULTS" "$TABLE" <<'PY'
import json, sys, os, datetime

results_path, table_path = sys.argv[1], sys.argv[2]
runs = {}
for line in open(results_path):
    line = line.strip()
    if line:
        row = json.loads(line)
        runs.setdefault((row["scenario"], row["interface"]), []).append(row["result"])

# scenario, label, unit, the interface compared with ws
SCEN = [
    ("calls_c64_k1", "calls C=64 K=1 64 B", "calls/s", "http"),
    ("calls_c1_k1", "calls C=1 K=1 64 B", "calls/s", "http"),
    ("calls_c1_k16", "calls C=1 K=16 64 B (http: pipelined)", "calls/s", "http"),
    ("calls_c1_k64", "calls C=1 K=64 64 B", "calls/s", "wss"),
    ("calls_c64_k16", "calls C=64 K=16 64 B", "calls/s", "wss"),
    ("flood_c1", "flood C=1", "notif/s", "wss"),
]
KEY = {"calls/s": "calls_per_sec", "notif/s": "notif_per_sec"}

def best(scenario, interface, unit):
    """The best good run (highest throughput: noise only hurts), and how many ran."""
    all_runs = runs.get((scenario, interface), [])
    good = [r for r in all_runs if r.get("ok")]
    return (max(good, key=lambda r: r[KEY[unit]]) if good else None), len(all_runs)

def cell(r, n, unit):
    if r is None:
        return "FAILED" if n else "-"
    return f"{r[KEY[unit]]:,.0f}"

def p99(r, unit):
    if r is None:
        return "-"
    return f"{r['p99_us']:,.0f} us" if unit == "calls/s" else f"last {r['time_to_last_ms']:,.1f} ms"

def cpu(r, key):
    return "-" if not r or r.get(key) is None else f"{r[key]:.2f}"

head = ["scenario", "unit", "vs", "ws", "other", "ratio", "ws p99/last", "other p99/last", "p99 ratio",
        "srv cpu ws/other", "noise ws/other"]
rows = []
for scen, label, unit, other in SCEN:
    ws, nws = best(scen, "ws", unit)
    ot, n_other = best(scen, other, unit)
    if nws == 0 and n_other == 0:
        continue  # not run (ONLY)
    k = KEY[unit]
    ratio = f"{ot[k] / ws[k]:.2f}x" if ws and ot and ws[k] else "-"
    p99r = "-"
    if unit == "calls/s" and ws and ot and ws["p99_us"]:
        p99r = f"{ot['p99_us'] / ws['p99_us']:.2f}x"
    if any(r and (r.get("other_cpu") or 0) > 0.15 for r in (ws, ot)) and ratio != "-":
        ratio += "*"
    rows.append([label, unit, other, cell(ws, nws, unit), cell(ot, n_other, unit), ratio, p99(ws, unit), p99(ot, unit),
                 p99r, f"{cpu(ws, 'server_cpu')}/{cpu(ot, 'server_cpu')}",
                 f"{cpu(ws, 'other_cpu')}/{cpu(ot, 'other_cpu')}"])

widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
def line(cells):
    return "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
out = [f"Switchboard interfaces benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores; "
       "best of the good runs; ratio = other / ws (same bench_server build, same run)",
       "srv cpu: cores the server used (1.00 = saturated); noise: cores used by other processes during the run",
       line(head), line(["-" * w for w in widths])]
out.extend(line(r) for r in rows)
if any(r[5].endswith("*") for r in rows):
    out.append("* other processes used more than 0.15 cores during that run: run again on a quieter machine")
out.append(f"raw runs: {results_path}")
text = "\n".join(out)
print(text)
open(table_path, "w").write(text + "\n")
PY
ln -sfn "$(basename "$TABLE")" "$OUT_DIR/interfaces-latest.txt"
log "table written to $TABLE"
