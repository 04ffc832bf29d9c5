#!/usr/bin/env bash
# Builds every fuzz target and runs each one for a bounded time, one after another.
#
#   fuzz/run.sh [SECONDS]          # default 60 s per target
#   TARGETS="frame_decoder delta_apply" fuzz/run.sh 120
#   MERGE=1 fuzz/run.sh 300        # then fold inputs with new coverage into fuzz/corpus/
#
# Inputs the fuzzer finds go to fuzz/target/new-corpus/<target>/ (ignored by git), so a run
# never grows the committed corpus by itself; with MERGE=1, libFuzzer's -merge=1 copies into
# fuzz/corpus/<target>/ only the inputs that add coverage. Crashes, timeouts and OOMs land in
# fuzz/artifacts/<target>/ (ignored by git): see README.md for turning one into a regression
# input. Prints executions per target and any crash paths; exits 1 if any target failed.
#
# Works on a stable toolchain: RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz
# passes (sanitizer, coverage instrumentation).
set -uo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.." || exit 2
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

targets="${TARGETS:-$(cargo fuzz list)}"
echo "building fuzz targets..."
mkdir -p "$here/target"
if ! cargo fuzz build >"$here/target/build.log" 2>&1; then
    tail -n 40 "$here/target/build.log" >&2
    echo "build failed (full log: fuzz/target/build.log)" >&2
    exit 2
fi

failed=0
summary=""
for target in $targets; do
    corpus="$here/corpus/$target"
    scratch="$here/target/new-corpus/$target"
    artifacts="$here/artifacts/$target"
    log="$here/target/logs/$target.log"
    mkdir -p "$corpus" "$scratch" "$artifacts" "$(dirname "$log")"
    extra=()
    case "$target" in
        # Room for answers past the parser's 8 KiB bound on the head.
        proxy_reply) extra=(-max_len=9000) ;;
    esac
    echo "== $target: ${seconds}s"
    # The scratch dir comes first: libFuzzer writes what it finds into the first directory.
    cargo fuzz run "$target" "$scratch" "$corpus" -- \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "${extra[@]}" \
        >"$log" 2>&1
    status=$?
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)"
    crashes="$(grep -o -E '(Test unit|crash|timeout|oom|leak)[^ ]* written to [^ ]*' "$log" \
        | sed -E 's/.* written to //' | sort -u)"
    if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
        failed=1
        echo "   FAILED (exit $status), log: fuzz/target/logs/$target.log"
        grep -m 1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | sed 's/^/   /'
        for path in $crashes; do echo "   crash input: $path"; done
    fi
    if [ "${MERGE:-0}" = 1 ] && [ "$status" -eq 0 ]; then
        cargo fuzz run "$target" "$corpus" "$scratch" -- -merge=1 >>"$log" 2>&1 \
            && echo "   merged new coverage into fuzz/corpus/$target ($(ls "$corpus" | wc -l) files)"
    fi
    line="$(printf '%-18s %12s executions  %-10s %s' "$target" "${execs:-?}" "${cov:-}" \
        "$([ "$status" -eq 0 ] && [ -z "$crashes" ] && echo ok || echo CRASH)")"
    echo "   $line"
    summary+="$line"$'\n'
done

echo
echo "summary (${seconds}s per target):"
printf '%s' "$summary"
exit "$failed"
