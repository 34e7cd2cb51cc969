#!/usr/bin/env bash
# Switchboard benchmark suite: the raw tokio-tungstenite baseline,
# examples/bench_server and the same bench_server with its Prometheus metrics
# on (--metrics), each pinned to CPU 0, driven by the load generator pinned to
# CPU 1, back to back. Prints one table and writes it under target/bench-results/.
#
#   benches/run.sh              # the full suite, each scenario run REPEAT=2 times
#   QUICK=1 benches/run.sh      # a smoke run: short windows, small counts
#
# Overridable (env): REPEAT, CALLS_SECONDS, CALLS_WARMUP, FLOOD_N, FLOOD_MANY_N,
# FLOOD_ROUNDS, IDLE_C, RAW_ADDR, BENCH_ADDR, BENCH_SERVER_ARGS,
# BENCH_METRICS_ADDR, BENCH_METRICS_ARGS, METRICS=0 (skip the metrics-on
# server), SERVER_CPU, CLIENT_CPU, QUIET_WAIT, QUIET_BUSY, LOADGEN_ARGS (extra
# arguments for every loadgen run), SKIP_BUILD=1 (use what target/release
# already has), ONLY (a regex: only the scenarios whose names match, e.g.
# ONLY='calls_c64|idle').
# BENCHMARKS.md describes the scenarios and how to read the table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${QUICK:-0}" == 1 ]]; then
    : "${REPEAT:=1}" "${CALLS_SECONDS:=1}" "${CALLS_WARMUP:=0.3}"
    : "${FLOOD_N:=20000}" "${FLOOD_MANY_N:=200}" "${IDLE_C:=1000}"
fi
REPEAT="${REPEAT:-2}"
CALLS_SECONDS="${CALLS_SECONDS:-5}"
CALLS_WARMUP="${CALLS_WARMUP:-1}"
FLOOD_N="${FLOOD_N:-100000}"
FLOOD_MANY_N="${FLOOD_MANY_N:-1000}"
FLOOD_ROUNDS="${FLOOD_ROUNDS:-5}"
IDLE_C="${IDLE_C:-10000}"
RAW_ADDR="${RAW_ADDR:-127.0.0.1:9001}"
BENCH_ADDR="${BENCH_ADDR:-127.0.0.1:9000}"
BENCH_METRICS_ADDR="${BENCH_METRICS_ADDR:-127.0.0.1:9002}"
METRICS="${METRICS:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
OUT_DIR="$TARGET_DIR/bench-results"
STAMP="$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT_DIR/bench-$STAMP.jsonl"
TABLE="$OUT_DIR/bench-$STAMP.txt"
mkdir -p "$OUT_DIR"
: >"$RESULTS"

log() { printf '[run.sh] %s\n' "$*" >&2; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# ------------------------------------------------------------------ build
HAVE_BENCH=0
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building the load generator and the raw baseline (release)"
    cargo build --release -p switchboard-loadgen --bins
fi
if [[ -f "$ROOT/examples/bench_server.rs" || -d "$ROOT/examples/bench_server" ]]; then
    if [[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release --example bench_server; then
        [[ -x "$BIN/examples/bench_server" ]] && HAVE_BENCH=1
    else
        log "WARNING: examples/bench_server failed to build: measuring the raw baseline only"
    fi
else
    log "NOTE: examples/bench_server does not exist yet: measuring the raw baseline only"
fi

# ------------------------------------------------------------------ servers


# addr_of SERVER -> where that server listens.
addr_of() {
    case "$1" in
        raw) echo "$RAW_ADDR" ;;
        bench) echo "$BENCH_ADDR" ;;
        bench_metrics) echo "$BENCH_METRICS_ADDR" ;;
    esac
}

# start_server NAME -> sets SERVER_PID; the server runs pinned to SERVER_CPU.
# NAME: raw, bench (bench_server) or bench_metrics (bench_server --metrics).
# (Not called in $(...): the server must stay a child of this shell.)
SERVER_PID=""
start_server() {
    local name="$1" pid addr
    addr="$(addr_of "$name")"
    if [[ "$name" == raw ]]; then
        taskset -c "$SERVER_CPU" "$BIN/raw_baseline" --addr "$RAW_ADDR" >>"$OUT_DIR/raw_baseline.log" 2>&1 &
        pid=$!
        wait_port "$RAW_ADDR" "$pid" || { log "raw_baseline did not start (see $OUT_DIR/raw_baseline.log)"; return 1; }
    else
        # bench_server takes --addr and --max-connections (whose default,
        # 10,000, is exactly the idle run's count: leave headroom). An older
        # or newer command line is tried as --addr ADDR alone, then ADDR;
        # BENCH_SERVER_ARGS (BENCH_METRICS_ARGS for the metrics-on server)
        # overrides all of it. The metrics-on server is the same binary with
        # --metrics: an older one without the flag does not start.
        local candidates=() cand args ok=0 override="${BENCH_SERVER_ARGS:-}" extra=""
        if [[ "$name" == bench_metrics ]]; then
            override="${BENCH_METRICS_ARGS:-}"
            extra=" --metrics"
        fi
        if [[ -n "$override" ]]; then
            candidates=("$override")
        else
            candidates=("--addr $addr --max-connections $((IDLE_C + 1000))$extra" "--addr $addr$extra")
            [[ -n "$extra" ]] || candidates+=("$addr")
        fi
        for cand in "${candidates[@]}"; do
            read -r -a args <<<"$cand"
            taskset -c "$SERVER_CPU" "$BIN/examples/bench_server" "${args[@]}" >>"$OUT_DIR/$name.log" 2>&1 &
            pid=$!
            if wait_port "$addr" "$pid"; then
                ok=1
                break
            fi
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
        if [[ "$ok" != 1 ]]; then
            local hint=BENCH_SERVER_ARGS
            [[ "$name" == bench_metrics ]] && hint=BENCH_METRICS_ARGS
            log "$name did not listen on $addr (tried: ${candidates[*]}; set $hint; see $OUT_DIR/$name.log)"
            return 1
        fi
    fi
    PIDS+=("$pid")
    SERVER_PID="$pid"
}


# run_loadgen SCENARIO SERVER PID ARGS... : one run, its RESULT line appended.
run_loadgen() {
    local scenario="$1" server="$2" pid="$3" url line
    shift 3
    [[ "$QUIET_WAIT" == 0 ]] || wait_quiet
    url="ws://$(addr_of "$server")/"
    line=""
    while IFS= read -r l; do
        if [[ "$l" == "RESULT "* ]]; then line="$l"; else printf '    %s\n' "$l" >&2; fi
        # shellcheck disable=SC2086
    done < <(taskset -c "$CLIENT_CPU" "$BIN/loadgen" "$@" --url "$url" --pid "$pid" $LOADGEN_ARGS 2>&1 || true)
    if [[ -z "$line" ]]; then
        line='RESULT {"ok":false,"error":"no result line"}'
    fi
    printf '{"scenario":"%s","server":"%s","result":%s}\n' "$scenario" "$server" "${line#RESULT }" >>"$RESULTS"
    log "$scenario [$server] ${line#RESULT }"
}

SERVERS=(raw)
[[ "$HAVE_BENCH" == 1 ]] && SERVERS+=(bench)
[[ "$HAVE_BENCH" == 1 && "$METRICS" != 0 ]] && SERVERS+=(bench_metrics)

CALLS=(
    "calls_c1_k1|calls -c 1 -k 1 --bytes 64"
    "calls_c1_k64|calls -c 1 -k 64 --bytes 64"
    "calls_c64_k16|calls -c 64 -k 16 --bytes 64"
    "calls_c1_k64_16k|calls -c 1 -k 64 --bytes 16384"
    "flood_c1|flood -c 1 -n $FLOOD_N --bytes 64 --rounds $FLOOD_ROUNDS"
    "flood_c100|flood -c 100 -n $FLOOD_MANY_N --bytes 64 --rounds $FLOOD_ROUNDS"
)

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "servers on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU; repeat=$REPEAT calls=${CALLS_SECONDS}s after ${CALLS_WARMUP}s warm-up"

# Calls and floods: every server up at once (an idle server costs nothing),
# and they are measured back to back for every scenario and repeat, so that
# machine noise hits them alike.
declare -A PID_OF
STARTED=()
for s in "${SERVERS[@]}"; do
    if start_server "$s"; then
        PID_OF[$s]="$SERVER_PID"
        STARTED+=("$s")
    elif [[ "$s" == raw ]]; then
        exit 1
    elif [[ "$s" == bench ]]; then
        HAVE_BENCH=0
    else
        log "WARNING: bench_server --metrics did not start: measuring metrics off only"
    fi
done
SERVERS=()
for s in "${STARTED[@]}"; do
    [[ "$s" == bench_metrics && "$HAVE_BENCH" != 1 ]] || SERVERS+=("$s")
done
HAVE_METRICS=0
[[ " ${SERVERS[*]} " == *" bench_metrics "* ]] && HAVE_METRICS=1
for ((r = 1; r <= REPEAT; r++)); do
    for entry in "${CALLS[@]}"; do
        scenario="${entry%%|*}"
        args="${entry#*|}"
        [[ -z "${ONLY:-}" || "$scenario" =~ $ONLY ]] || continue
        for s in "${SERVERS[@]}"; do
            if ! kill -0 "${PID_OF[$s]}" 2>/dev/null; then
                # Something ended it (a crash, or another user of the machine):
                # say so, and go on with a new one.
                status=0
                wait "${PID_OF[$s]}" 2>/dev/null || status=$?
                log "WARNING: the $s server (pid ${PID_OF[$s]}) is gone (exit status $status): starting a new one"
                start_server "$s" || continue
                PID_OF[$s]="$SERVER_PID"
            fi
            if [[ "$args" == calls* ]]; then
                # shellcheck disable=SC2086
                run_loadgen "$scenario" "$s" "${PID_OF[$s]}" $args --seconds "$CALLS_SECONDS" --warmup "$CALLS_WARMUP"
            else
                # shellcheck disable=SC2086
                run_loadgen "$scenario" "$s" "${PID_OF[$s]}" $args
            fi
        done
    done
done
cleanup

# Idle memory: a fresh server for every measurement, so that memory freed by
# earlier runs cannot hide what the connections cost.
IDLE_REPEAT="$REPEAT"
[[ -z "${ONLY:-}" || idle =~ $ONLY ]] || IDLE_REPEAT=0
for ((r = 1; r <= IDLE_REPEAT; r++)); do
    for s in "${SERVERS[@]}"; do
        start_server "$s" || continue
        sleep 0.5
        run_loadgen idle "$s" "$SERVER_PID" idle -c "$IDLE_C"
        cleanup
    done
done

# ------------------------------------------------------------------ table
python3 - "$RESULTS" "$TABLE" "$HAVE_BENCH" "$HAVE_METRICS" <<'PY'
import json, sys, os, datetime

results_path, table_path = sys.argv[1], sys.argv[2]
have_bench, have_metrics = sys.argv[3] == "1", sys.argv[4] == "1"
runs = {}
for line in open(results_path):
    line = line.strip()
    if not line:
        continue
    row = json.loads(line)
    runs.setdefault((row["scenario"], row["server"]), []).append(row["result"])

SCEN = [
    ("calls_c1_k1", "calls C=1 K=1 64 B", "calls/s"),
    ("calls_c1_k64", "calls C=1 K=64 64 B", "calls/s"),
    ("calls_c64_k16", "calls C=64 K=16 64 B", "calls/s"),
    ("calls_c1_k64_16k", "calls C=1 K=64 16 KiB", "calls/s"),
    ("flood_c1", "flood C=1", "notif/s"),
    ("flood_c100", "flood C=100", "notif/s"),
    ("idle", "idle", "KiB/conn"),
]
KEY = {"calls/s": "calls_per_sec", "notif/s": "notif_per_sec", "KiB/conn": "kib_per_conn"}

def best(scenario, server, unit):
    """The best good run: highest throughput, lowest memory (noise only hurts)."""
    rs = [r for r in runs.get((scenario, server), []) if r.get("ok")]
    if not rs:
        return None, len(runs.get((scenario, server), []))
    k = KEY[unit]
    pick = min(rs, key=lambda r: r[k]) if unit == "KiB/conn" else max(rs, key=lambda r: r[k])
    return pick, len(runs[(scenario, server)])

def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "KiB/conn":
        return f"{v:.2f}"
    return f"{v:,.0f}"

def detail(r, unit):
    if r is None:
        return ""
    if unit == "calls/s":
        return f"p99 {r['p99_us']:,.0f} us"
    if unit == "notif/s":
        return f"last {r['time_to_last_ms']:,.1f} ms"
    return f"{r['connections']} conns"

def noisy(*rs):
    return any(r and (r.get("other_cpu") or 0) > 0.15 for r in rs)

def ratio(a, b, *rs):
    """a / b as "1.23x", starred when another process was busy during either run."""
    if a is None or not b:
        return "-"
    return f"{a / b:.2f}x" + ("*" if noisy(*rs) else "")

def percent(on, off, *rs):
    """on against off as a signed percent: "-2.1%" is 2.1 % fewer (or less memory)."""
    if on is None or not off:
        return "-"
    return f"{100 * (on / off - 1):+.1f}%" + ("*" if noisy(*rs) else "")

def cell(r, n, unit, measured):
    if not measured:
        return "n/a"
    if r is None and n:
        return "FAILED"
    return fmt(r[KEY[unit]] if r else None, unit)

def cpus(unit, rs, key="server_cpu"):
    if unit == "KiB/conn":
        return "-"
    return "/".join("-" if not r or r.get(key) is None else f"{r[key]:.2f}" for r in rs)

servers = ["raw", "sb"] + (["m"] if have_metrics else [])
head = ["scenario", "unit", "raw", "switchboard", "ratio"]
if have_metrics:
    head += ["metrics on", "m ratio", "metrics/off"]
head += ["raw p99/last", "sb p99/last"]
if have_metrics:
    head += ["m p99/last"]
head += ["p99 ratio", "srv cpu " + "/".join(servers), "noise " + "/".join(servers)]
rows = []
for scen, label, unit in SCEN:
    raw, nraw = best(scen, "raw", unit)
    sb, nsb = best(scen, "bench", unit)
    m, nm = best(scen, "bench_metrics", unit)
    if nraw == 0 and nsb == 0 and nm == 0:
        continue  # not run (ONLY)
    k = KEY[unit]
    rv, sv, mv = (r[k] if r else None for r in (raw, sb, m))
    row = [label, unit, cell(raw, nraw, unit, True), cell(sb, nsb, unit, have_bench), ratio(sv, rv, raw, sb)]
    if have_metrics:
        row += [cell(m, nm, unit, True), ratio(mv, rv, raw, m), percent(mv, sv, sb, m)]
    row += [detail(raw, unit), detail(sb, unit)]
    if have_metrics:
        row += [detail(m, unit)]
    p99r = "-"
    if unit == "calls/s" and raw and sb and raw["p99_us"]:
        p99r = f"{sb['p99_us'] / raw['p99_us']:.2f}x"
    measured = [raw, sb] + ([m] if have_metrics else [])
    row += [p99r, cpus(unit, measured), cpus(unit, measured, "other_cpu")]
    rows.append(row)

widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
def line(cells):
    return "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
out = []
out.append(f"Switchboard benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores; best of the good runs; ratio = switchboard / raw")
if have_metrics:
    out.append("metrics on: bench_server --metrics (Prometheus metrics kept); m ratio = metrics on / raw; metrics/off = metrics on against switchboard, in percent (idle: memory)")
out.append("srv cpu: cores the server used (1.00 = saturated); noise: cores used by other processes during the run")
out.append(line(head))
out.append(line(["-" * w for w in widths]))
out.extend(line(r) for r in rows)
if any(c.endswith("*") for r in rows for c in r):
    out.append("* other processes used more than 0.15 cores during that run: run again on a quieter machine")
if not have_bench:
    out.append("examples/bench_server was not available: the switchboard column is not measured.")
out.append(f"raw runs: {results_path}")
text = "\n".join(out)
print(text)
open(table_path, "w").write(text + "\n")
PY
ln -sfn "$(basename "$TABLE")" "$OUT_DIR/latest.txt"
log "table written to $TABLE"
