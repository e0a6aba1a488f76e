#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time; fails if any of them crashes.
#
#   bash fuzz/run.sh                     # 60 s per target
#   FUZZ_SECONDS=600 bash fuzz/run.sh    # longer
#   FUZZ_TARGETS="key_validation record_decoding" bash fuzz/run.sh
#   FUZZ_CMIN=1 bash fuzz/run.sh         # then shrink each corpus to commit it (seeds kept)
#   FUZZ_SECONDS=0 FUZZ_CMIN=1 bash fuzz/run.sh   # shrink only
#
# cargo-fuzz needs the nightly toolchain. Without it this says so and exits 0 (stable runs
# the same invariants as proptest properties in the test suite). cargo-fuzz itself is
# installed when missing. New inputs land in fuzz/corpus/<target>/, crashes in
# fuzz/artifacts/<target>/ (ignored by git; CI should upload them), logs in
# fuzz/target/logs/<target>.log.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-cookie_parsing key_validation signed_value_decoding record_decoding pickle_decoding django_json_parsing}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (cargo +nightly fails): skipping the fuzz targets." >&2
    echo "fuzz: install one with 'rustup toolchain install nightly' to run them." >&2
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || {
        echo "fuzz: could not install cargo-fuzz" >&2
        exit 1
    }
fi

# Build every target first, so that a build error is not mistaken for a crash.
cargo +nightly fuzz build || {
    echo "fuzz: the targets do not build" >&2
    exit 1
}

mkdir -p fuzz/target/logs
failed=()
summary=()
for target in $targets; do
    # libFuzzer reads -max_total_time=0 as "no limit": 0 here means "do not fuzz" (FUZZ_CMIN only).
    [ "$seconds" -gt 0 ] 2>/dev/null || break
    log="fuzz/target/logs/${target}.log"
    echo "fuzz: ${target} for ${seconds} s" >&2
    cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o ' cov: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    ft=$(grep -o ' ft: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    corpus=$(find "fuzz/corpus/${target}" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("${target}: FAILED (exit ${status}); see ${log} and fuzz/artifacts/${target}/")
    else
        summary+=("${target}: ok, ${runs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus} files")
    fi
done

if [ "${FUZZ_CMIN:-0}" = 1 ]; then
    # Keeps the hand-made seeds (seed-*) and adds the fewest found inputs that cover the
    # edges they miss (hit counts ignored): about two hundred files per target, not thousands.
    for target in $targets; do
        echo "fuzz: minimizing the corpus of ${target}" >&2
        corpus="fuzz/corpus/${target}"
        kept="fuzz/target/cmin/${target}"
        rm -rf "$kept" && mkdir -p "$kept"
        find "$corpus" -maxdepth 1 -type f -name 'seed-*' -exec cp {} "$kept/" \;
        if cargo +nightly fuzz run "$target" "$kept" "$corpus" -- \
            -merge=1 -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 \
            >"fuzz/target/logs/${target}.cmin.log" 2>&1; then
            find "$corpus" -maxdepth 1 -type f -delete
            cp "$kept"/* "$corpus/"
            echo "fuzz: ${target}: $(find "$corpus" -type f | wc -l) files kept" >&2
        else
            echo "fuzz: minimizing ${target} failed (corpus left as it was)" >&2
        fi
    done
fi

echo
[ "${#summary[@]}" -eq 0 ] || printf 'fuzz: %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: crashed: ${failed[*]}" >&2
    exit 1
fi
