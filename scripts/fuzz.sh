#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a while, one after the other, and
# prints one summary line per target: executions, coverage (edges, libFuzzer's
# `cov`), features, and whether it found a crash (saved under
# fuzz/artifacts/TARGET/). Not part of CI.
#
#   scripts/fuzz.sh            # every target, 180 s each
#   scripts/fuzz.sh 60 origin  # only `origin`, 60 s
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly compiler, or a
# stable one with RUSTC_BOOTSTRAP=1 (which this script sets). The corpus
# grows in fuzz/corpus/TARGET/ across runs, starting from the checked-in
# fuzz/seeds/TARGET/; fuzz/dicts/TARGET.dict, if any, is libFuzzer's dictionary.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${1:-180}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
mkdir -p target/fuzz-logs
status=0
summaries=()
for target in "${targets[@]}"; do
    log="target/fuzz-logs/${target}.log"
    echo "scripts/fuzz.sh: fuzzing ${target} for ${seconds} s (log: fuzz/${log})" >&2
    # The corpus grows in corpus/TARGET; seeds/TARGET (checked in) starts it;
    # dicts/TARGET.dict, when there is one, names the tokens the input needs.
    corpus=("corpus/${target}")
    mkdir -p "corpus/${target}"
    [ -d "seeds/${target}" ] && corpus+=("seeds/${target}")
    options=(-max_total_time="$seconds" -print_final_stats=1)
    [ -f "dicts/${target}.dict" ] && options+=(-dict="dicts/${target}.dict")
    if cargo fuzz run "$target" "${corpus[@]}" -- "${options[@]}" >"$log" 2>&1; then
        outcome="no crash"
    else
        outcome="CRASH (see fuzz/${log} and fuzz/artifacts/${target}/)"
        status=1
    fi
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    summaries+=("${target}: ${runs} executions, ${cov} edges (cov), ${ft} features, ${outcome}")
done
printf '%s\n' "${summaries[@]}"
exit "$status"
