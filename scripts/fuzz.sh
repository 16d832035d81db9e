#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (release, -sanitize=fuzzer,address) and runs each
# for SECONDS (default 60), one after the other. Exits 1 when a target crashed, trapped,
# leaked, hung or ran out of memory, after printing the input that did it.
#
#   bash scripts/fuzz.sh [SECONDS]     make fuzz: 60 s each; CI: bash scripts/fuzz.sh 30
#   Fuzz/.build/release/FuzzJWT FILE   replays one input (e.g. a crash file)
#
# Fuzz/Corpus/<Target>/ holds the seeds (kept clean, in git). Each run starts from them
# plus what earlier runs found, in Fuzz/work/<Target>/corpus/ (gitignored); crash
# files go to Fuzz/work/<Target>/crashes/, the fuzzer's output to Fuzz/work/<Target>.log.
# A crash worth keeping becomes a unit test beside the code it broke (e.g. a JWT input in
# Tests/AuthCoreTests/JWTTests.swift).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../Fuzz"

seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }
targets=(FuzzJWT FuzzBody FuzzParams FuzzFraming)

# The main package's pins, so that no dependency is resolved anew.
[[ -f Package.resolved || ! -f ../Package.resolved ]] || cp ../Package.resolved .

echo "== building fuzz targets (release, -sanitize=fuzzer,address)"
started=$SECONDS
# ld.gold warns about an ASan symbol on every link; nothing to act on.
swift build -c release --scratch-path .build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
    | { grep -v "Cannot export local symbol '__asan_extra_spill_area'" || true; }
echo "== built in $((SECONDS - started)) s"
bin=.build/release

# A trap is libFuzzer's to report (it saves the input): Swift's own crash handler would
# run first, and ASan trips over its memory reader. Symbolize with the toolchain's tool.
export SWIFT_BACKTRACE=enable=no
symbolizer=$(dirname "$(readlink -f "$(command -v swift)")")/llvm-symbolizer
[[ -x $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer

failed=()
for t in "${targets[@]}"; do
    dir=work/$t
    mkdir -p "$dir/corpus" "$dir/crashes"
    cp Corpus/"$t"/* "$dir/corpus/"
    rc=0
    # -timeout: one input taking 10 s is a hang. Leaks are reported (ASan's LeakSanitizer).
    "$bin/$t" "$dir/corpus" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$dir/crashes/" >"$dir.log" 2>&1 || rc=$?
    runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$dir.log")
    rate=$(awk '/stat::average_exec_per_sec:/ { print $2 }' "$dir.log")
    printf '%-10s %10s executions  %7s exec/s  exit %s\n' "$t" "${runs:-?}" "${rate:-?}" "$rc"
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$dir.log" | tail -n 1)
    if (( rc != 0 )) || [[ -n $crash ]]; then
        failed+=("$t")
        grep -E -m 20 'ERROR|Fatal error|invariant violated|SUMMARY|deadly signal' "$dir.log" | sed 's/^/    /' || true
        if [[ -n $crash && -f $crash ]]; then
            echo "    crash file: Fuzz/$crash (replay: Fuzz/$bin/$t Fuzz/$crash)"
            echo "    input (base64): $(base64 -w0 "$crash")"
        fi
        echo "    full output: Fuzz/$dir.log"
    fi
done

if (( ${#failed[@]} )); then
    echo "== fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "== fuzz: no crashes (${#targets[@]} targets x ${seconds} s)"
