# Shared by the benchmark scripts (sourced, not run): the servers they start
# and stop, and the wait for a quiet machine. The sourcing script defines
# `log` and appends the PID of every process it starts to PIDS.

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
# Stops every process in PIDS (by PID) and waits for it.
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port HOST:PORT|PORT PID -> 0 once something listens there (10 s at
# most); 1 as soon as PID has exited.
wait_port() {
    local host=127.0.0.1 port="$1" pid="$2" i
    if [[ "$1" == *:* ]]; then host="${1%:*}" port="${1##*:}"; fi
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# The machine is shared: before each run, wait (up to QUIET_WAIT seconds)
# until less than QUIET_BUSY percent of all CPUs is busy. Every result also
# carries other_cpu, the cores used by anything but the server and the
# generator during the run; the tables show it as "noise".
QUIET_WAIT="${QUIET_WAIT:-30}"
QUIET_BUSY="${QUIET_BUSY:-15}"
machine_busy_pct() { # over 0.5 s
    local a b c d e f g h t1 i1 t2 i2
    read -r _ a b c d e f g h _ </proc/stat
    t1=$((a + b + c + d + e + f + g + h)) i1=$((d + e))
    sleep 0.5
    read -r _ a b c d e f g h _ </proc/stat
    t2=$((a + b + c + d + e + f + g + h)) i2=$((d + e))
    echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
wait_quiet() {
    local waited=0 busy
    while ((waited < QUIET_WAIT * 2)); do
        busy="$(machine_busy_pct)"
        ((busy < QUIET_BUSY)) && return 0
        ((waited == 0)) && log "machine busy (${busy}% of all CPUs): waiting up to ${QUIET_WAIT}s for quiet"
        waited=$((waited + 1))
    done
    log "still busy (${busy}%): measuring anyway, see the noise column"
}
